"""bench/paper_cpu_run.sh's keeper (issue 25): what of a long run travels in the
repository between machines. A fake run directory stands in for the training; `keep`
with no trainer running copies once and exits."""

import json
import shutil
import subprocess
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[1] / "bench" / "paper_cpu_run.sh"
RUN = "hierarchical-f4-beta4-seed0"

pytestmark = pytest.mark.skipif(
    shutil.which("git") is None or shutil.which("python3") is None,
    reason="the keeper needs git and python3",
)


def _keep(root: Path, kept: Path) -> list[str]:
    env = {"PATH": "/usr/bin:/bin:/usr/local/bin", "LONG_ROOT": str(root), "LONG_KEPT": str(kept)}
    subprocess.run(["bash", str(SCRIPT), "keep"], env=env, check=True, timeout=60)
    return sorted(p.name for p in (kept / RUN / "snapshots").glob("*"))


def _score(run: Path, steps: list[int]) -> None:
    (run / "curve.json").write_text(json.dumps({"points": [{"step": s} for s in steps]}))


def test_keeper_carries_unscored_snapshots_and_the_newest(tmp_path):
    root, kept = tmp_path / "long", tmp_path / "kept"
    clone = root / "stvae"
    clone.mkdir(parents=True)
    git = ["git", "-C", str(clone), "-c", "user.name=t", "-c", "user.email=t@t"]
    subprocess.run([*git, "init", "-q"], check=True)
    subprocess.run([*git, "commit", "-q", "--allow-empty", "-m", "x"], check=True)
    run = root / "runs" / RUN
    (run / "snapshots").mkdir(parents=True)
    for name in ("config.json", "checkpoint.safetensors", "metrics.jsonl", "segments.jsonl"):
        (run / name).write_text(name)
    for step in (1500, 3000, 4500):
        (run / "snapshots" / f"step-{step:06d}.safetensors").write_text(str(step))

    # nothing scored yet: every snapshot travels
    assert _keep(root, kept) == [f"step-{s:06d}.safetensors" for s in (1500, 3000, 4500)]
    assert (kept / RUN / "checkpoint.safetensors").read_text() == "checkpoint.safetensors"
    # which machine trained which steps travels too (stvae curve's report names them)
    assert (kept / RUN / "segments.jsonl").read_text() == "segments.jsonl"
    assert (kept / RUN / "COMMIT").read_text().strip()

    # 1,500 and 3,000 scored: only 4,500 (unscored) stays
    _score(run, [1500, 3000])
    assert _keep(root, kept) == ["step-004500.safetensors"]

    # all scored: the newest still travels (its probe spread needs the weights)
    _score(run, [1500, 3000, 4500])
    assert _keep(root, kept) == ["step-004500.safetensors"]
    assert json.loads((kept / RUN / "curve.json").read_text())["points"][-1]["step"] == 4500

    # a new snapshot replaces it, and nothing temporary is left behind
    (run / "snapshots" / "step-006000.safetensors").write_text("6000")
    assert _keep(root, kept) == ["step-006000.safetensors"]
    assert not list((kept / RUN).rglob(".*.tmp"))


@pytest.mark.parametrize("command", ["score", "finish"])
def test_score_without_a_run_is_one_line_and_exit_2(tmp_path, command):
    env = {"PATH": "/usr/bin:/bin:/usr/local/bin", "LONG_ROOT": str(tmp_path)}
    done = subprocess.run(
        ["bash", str(SCRIPT), command, "slow"], env=env, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 2
    assert done.stderr.strip().splitlines() == [
        f"no run at {tmp_path}/runs/slow-f4-beta4-seed0 (start or restore it first)"
    ]


LONG_RUNS = ["hierarchical", "slow", "sprites-dsvae", "sprites-hierarchical", "chairs-hierarchical"]


def _spec(tmp_path, name: str, array: str) -> list[str]:
    """One array (TRAIN, CURVE) that `run_spec NAME` sets, item by item."""
    spec = f"ROOT={tmp_path}; REPO={SCRIPT.parents[1]}; "
    spec += f'eval "$(sed -n "/^run_spec() {{/,/^}}/p" {SCRIPT})"; run_spec {name}; '
    spec += f'printf "%s\\n" "${{{array}[@]}}"'
    return subprocess.run(
        ["bash", "-c", spec], capture_output=True, text=True, check=True, timeout=60
    ).stdout.split("\n")[:-1]


@pytest.mark.parametrize("name", LONG_RUNS)
def test_each_long_runs_first_command_trains(tmp_path, name):
    """The flags `run_spec` gives each long run's first start make a run that trains (one
    step of one video here, eager: the flags given last win), so a run never fails at
    its start in the session that begins it; a grid report or another run's curve its
    curve sets beside it is in the repository, on the run's data."""
    flags = _spec(tmp_path, name, "TRAIN")
    from stvae.cli import main
    from stvae.curve import read_grid

    curve = _spec(tmp_path, name, "CURVE")
    if "--beside" in curve:
        assert read_grid(SCRIPT.parents[1] / curve[curve.index("--beside") + 1])

    out = tmp_path / "run"
    tiny = ["--steps", "1", "--batch-videos", "1", "--no-compile", "--precision", "fp32"]
    assert main(["train", *flags, *tiny, "--no-check", "--out", str(out)]) == 0
    config = json.loads((out / "config.json").read_text())
    assert config["steps"] == 1 and (out / "model.safetensors").is_file()
    if "--against" in curve:  # the slow run's: the hierarchical run's curve, on its data
        from stvae.config import TrainConfig
        from stvae.curve import against_curve

        path = SCRIPT.parents[1] / curve[curve.index("--against") + 1]
        assert against_curve(path, TrainConfig.from_dict(config))["points"]
    if name.startswith("sprites"):
        assert config["data"]["source"] == "sprites-field" and config["data"]["frames"] == 8
        assert config["model"]["features"] == 288 and config["model"]["static_features"] == 256
    if name.startswith("chairs"):
        from stvae.config import TrainConfig

        trained = TrainConfig.from_dict(config)
        assert trained.data.source == "chairs" and trained.model.n_static == 4
        assert (trained.model.beta, trained.lr_decay_every) == (4.0, 3500)


def test_the_second_sprites_run_has_a_clone_of_its_own(tmp_path):
    """The dsvae run trains in a clone from before segments.jsonl; the hierarchical run
    gets its own clone (at the work tree's HEAD when it starts), never the first's."""
    clones = {name: _spec(tmp_path, name, "CLONE") for name in LONG_RUNS}
    assert clones["sprites-dsvae"] == [f"{tmp_path}/stvae-sprites"]
    assert clones["sprites-hierarchical"] == [f"{tmp_path}/stvae-sprites-hierarchical"]
    assert clones["hierarchical"] == clones["slow"]  # both at 56f7840


def test_an_unknown_long_run_is_one_line_and_exit_2(tmp_path):
    env = {"PATH": "/usr/bin:/bin:/usr/local/bin", "LONG_ROOT": str(tmp_path)}
    done = subprocess.run(
        ["bash", str(SCRIPT), "score", "fast"], env=env, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 2
    assert done.stderr.strip() == (
        "unknown long run fast: hierarchical, slow, sprites-dsvae, sprites-hierarchical "
        "or chairs-hierarchical"
    )


def test_a_finished_runs_published_folder_keeps_its_segments(tmp_path):
    """`finish` copies a Bouncing MNIST run's final weights into pretrained/: with them
    its segments.jsonl (which machines trained which steps), when the run has one; no
    checkpoint or snapshot goes with them."""
    run = tmp_path / "run"
    (run / "snapshots").mkdir(parents=True)
    names = ("config.json", "model.safetensors", "metrics.jsonl", "segments.jsonl")
    for name in (*names, "checkpoint.safetensors", "snapshots/step-000001.safetensors"):
        (run / name).write_text(name)
    script = f'eval "$(sed -n "/^publish() {{/,/^}}/p" {SCRIPT})"; publish "$1" "$2"'
    subprocess.run(["bash", "-c", script, "-", str(run), str(tmp_path / "pub")], check=True)
    assert sorted(p.name for p in (tmp_path / "pub").iterdir()) == sorted(names)
    assert (tmp_path / "pub" / "segments.jsonl").read_text() == "segments.jsonl"
    (run / "segments.jsonl").unlink()  # a run from before segments.jsonl: the rest still
    subprocess.run(["bash", "-c", script, "-", str(run), str(tmp_path / "old")], check=True)
    assert sorted(p.name for p in (tmp_path / "old").iterdir()) == sorted(names[:3])
