"""The sprites judge: it reads real held-out clips, and judges an oracle's swaps as real."""

from pathlib import Path

import numpy as np
import pytest
import torch

from stvae.data import generate
from stvae.data import sprites as sp
from stvae.judge import JUDGE_FRAMES, judge_accuracy, judge_codes, train_judge


def _oracle_decode(codes: torch.Tensor) -> torch.Tensor:
    """Codes [V, N, 3] = (character, action class, pose) -> logits of the drawn clip
    [V, N, 3, 64, 64] (+-20 for on/off pixels): a perfect decoder."""
    c = codes.numpy().round().astype(int)
    ids, action, pose = c[..., 0], c[..., 1], c[..., 2]
    style_of = np.array([sp.HAIR_STYLES.index(sp.HAIR_OPTIONS[h][0]) for h in range(sp.OPTIONS)])
    style = style_of[sp.character_attributes(ids)[..., 1]]
    labels = sp.pose_labels()[style, action // 3, action % 3, pose]  # [V, N, 64, 64]
    rgb = sp._palettes()[ids[..., None, None], labels]  # [V, N, 64, 64, 3]
    x = torch.from_numpy(rgb).float().div(255).permute(0, 1, 4, 2, 3)
    return torch.logit(x.clamp(1e-9, 1 - 1e-9))


def oracle_codes(data: dict) -> np.ndarray:
    """The true factors of sprites clips as codes [V, N, 3] for :func:`_oracle_decode`:
    static = the character, temporal = action class and pose."""
    frames = data["temporal_labels"].shape[1]
    return np.stack(
        [np.repeat(data["image_ids"][:, None], frames, 1), data["temporal_labels"], data["phases"]],
        -1,
    ).astype(np.float32)


@pytest.mark.slow
@pytest.mark.xdist_group("judge")  # one worker trains the judge, then reuses it
def test_judge_reads_held_out_characters_and_an_oracles_swaps():
    judge = train_judge()
    assert train_judge(0) is judge  # one judge per process, however the call is spelled
    acc = judge_accuracy(judge)
    assert min(acc.values()) >= 0.99, acc  # every attribute and the action, new characters
    data = generate("sprites", 64, JUDGE_FRAMES, [5], "test-score")
    codes = oracle_codes(data)
    found = judge_codes(_oracle_decode, codes, 1, data, judge)
    for key in ("action", *sp.ATTRIBUTES):
        assert found[f"reconstruction_{key}"] > 0.85, found
        assert found[key] > 0.85, found  # a perfect swap is judged like a real clip
    # a decoder that ignores the static code cannot move appearance across videos
    frozen = codes.copy()
    found = judge_codes(lambda h: _oracle_decode(torch.from_numpy(frozen)), codes, 1, data, judge)
    assert np.mean([found[a] for a in sp.ATTRIBUTES]) < 0.5


@pytest.mark.slow
def test_the_field_designs_judge_is_trained_on_its_own_clips_and_reads_them():
    judge = train_judge(0, data="sprites-field")
    assert judge is not train_judge(0)  # each design its own judge
    acc = judge_accuracy(judge, data="sprites-field")
    assert min(acc.values()) >= 0.99, acc
    earlier = judge_accuracy(train_judge(0), data="sprites-field")  # white-ground judge
    assert min(earlier.values()) < 0.9, earlier  # does not read black-ground clips


def test_a_judge_exists_only_for_sprites_data(small_probe_sets):
    from stvae.errors import StvaeError
    from stvae.judge import field_set

    with pytest.raises(StvaeError, match="no judge for data 'chairs'; judges exist for sprites"):
        train_judge(0, data="chairs")
    clips = field_set(0, 4, "sprites-field")  # the field design's balanced set
    assert (clips["videos"][:, :, 0, 0] == sp.BLACK).all()
    assert np.array_equal(np.bincount(clips["temporal_labels"][:, 0]), np.full(9, 8))


def test_drawing_the_next_batch_ahead_trains_the_judge_a_sequential_loop_trains():
    """The judge's batches are drawn in a thread one step ahead of training: the weights
    are those of the plain loop (each batch drawn, then trained on), bit for bit."""
    import torch.nn.functional as F

    from stvae.data import to_tensor
    from stvae.judge import Judge, _trained_judge

    steps, batch, frames = 8, 2, 4
    got = _trained_judge.__wrapped__(5, frames, steps, batch)  # not the process's copy
    torch.manual_seed(5)
    want = Judge()
    opt = torch.optim.Adam(want.parameters(), lr=3e-3)
    decay = torch.optim.lr_scheduler.MultiStepLR(opt, [steps * 3 // 4], 0.1)
    for step in range(steps):
        data = generate("sprites", batch, frames, [5, 7, frames, step], "train")
        a, act = want(to_tensor(data["videos"]))
        attrs = torch.from_numpy(data["attributes"])
        loss = F.cross_entropy(a.flatten(0, 1), attrs.flatten())
        loss = loss + F.cross_entropy(act, torch.from_numpy(data["temporal_labels"][:, 0]))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        decay.step()
    for (name, g), w in zip(got.state_dict().items(), want.state_dict().values(), strict=True):
        assert torch.equal(g, w), name


def _digest(judge) -> str:
    import hashlib

    state = judge.state_dict()
    return hashlib.sha256(b"".join(state[k].numpy().tobytes() for k in sorted(state))).hexdigest()


ASK = """
from stvae.judge import _trained_judge
from tests.test_judge import _digest
print("asking", flush=True)
print(_digest(_trained_judge(5, 4, 8, 2)))
"""


def test_a_process_asking_for_the_judge_while_another_makes_it_waits_and_reads_it(
    tmp_path, monkeypatch
):
    """Parallel runs evaluating on sprites train the judge once: a process that asks for
    it while another holds its entry waits, then reads what the other made (here: a judge
    that was never trained, which no training gives)."""
    import os
    import subprocess
    import sys
    import time

    from stvae import judge as judge_module
    from stvae.cache import cache_dir, one_maker
    from stvae.checkpoint import save_weights

    monkeypatch.setenv("STVAE_CACHE", str(tmp_path))
    folder = cache_dir("judge", judge_module.__file__, sp.__file__)
    name = judge_module._cached_as(5, 4, 8, 2)
    torch.manual_seed(123)
    made = judge_module.Judge()
    with one_maker(folder, name):
        asker = subprocess.Popen(
            [sys.executable, "-c", ASK],
            cwd=Path(__file__).resolve().parents[1],
            env={**os.environ, "OMP_NUM_THREADS": "1"},
            stdout=subprocess.PIPE,
            text=True,
        )
        assert asker.stdout.readline().strip() == "asking"
        time.sleep(1.0)  # unlocked, it would find nothing now and train (8 tiny steps)
        save_weights(folder / name, made, {"seed": 5})
    out, _ = asker.communicate(timeout=120)
    assert asker.returncode == 0
    assert out.strip() == _digest(made)


def test_without_a_writable_cache_there_is_no_lock_and_no_error(tmp_path):
    from stvae.cache import one_maker

    blocked = tmp_path / "a-file"
    blocked.write_text("")
    for folder in (None, blocked / "judge"):  # off; a folder that cannot be made
        with one_maker(folder, "x.safetensors"):
            pass
    assert blocked.read_text() == ""
