"""Pins: short runs of every model kind train the same weights as when the pins were taken
(``tests/pins.json``).

Three checks per run. What every CPU reproduces bit for bit, pinned by SHA-256: the
initial weights (the seed's draws) and the batches of its steps (the data stream). A
fingerprint of training that any CPU must match: the first step's loss terms within
0.1% (fp32 rounding of the convolutions; they fix the initial weights, the data, the
sampling noise and the ELBO's arithmetic, beta included), every step's learning rate
and beta exactly, and the later steps' losses within 2% (Adam turns a CPU's rounding
into steps of the learning rate's size on weights whose gradient is near zero, so later
steps differ between CPUs and thread counts by about 0.2%). And, on each machine a pin
was taken on (CPU model, ISA, threads, torch), the SHA-256 of every trained tensor's
bytes: only a bit-for-bit equal run keeps it; elsewhere that test says it is skipped,
and why.

Regenerate (only when a change is meant to change what runs learn, and say so in
CHANGELOG.md): ``STVAE_WRITE_PINS=1 pytest tests/test_pinned.py``; on a machine of its
own it adds that machine's trained-weights pins and leaves the others'. To pin a new
machine and nothing else (the fingerprint kept as it is): ``STVAE_WRITE_PINS=machine``.
"""

import hashlib
import json
import os
import platform
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

from stvae.data import DataConfig, open_source
from stvae.model import ModelConfig
from stvae.prefetch import make_batch
from stvae.train import RUN_FILES, TrainConfig, build_model, train

PINS = Path(__file__).with_name("pins.json")

RUNS = {
    "hierarchical": ModelConfig(kind="hierarchical", features=4, beta=2.0),
    "slow": ModelConfig(kind="slow", features=4),
    "vae": ModelConfig(kind="vae", features=4),
    "dsvae-factorized": ModelConfig(kind="dsvae", features=4),
    "dsvae-full": ModelConfig(kind="dsvae", features=5, static_features=2, posterior="full"),
    "hierarchical-sprites": ModelConfig(kind="hierarchical", features=6),
}


def _config(name: str) -> TrainConfig:
    data = DataConfig(source="sprites" if name.endswith("sprites") else "bouncing-mnist", frames=4)
    return TrainConfig(
        model=RUNS[name],
        data=data,
        steps=3,
        batch_videos=2,
        lr_decay_every=2,
        beta_warmup=2,
        log_every=1,
        checkpoint_every=3,
        precision="fp32",
        compile=False,
        data_workers=0,
        device="cpu",
        seed=7,
    )


def machine() -> str:
    """What decides fp32 kernels' rounding: CPU model, ISA, threads, torch."""
    model = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    cap = torch.backends.cpu.get_cpu_capability()
    return f"{model} | {cap} | {torch.get_num_threads()} threads | torch {torch.__version__}"


def _sha256(tensors: dict[str, torch.Tensor] | list[np.ndarray]) -> str:
    digest = hashlib.sha256()
    if isinstance(tensors, dict):
        for name in sorted(tensors):
            digest.update(name.encode())
            digest.update(tensors[name].contiguous().numpy().tobytes())
    else:
        for array in tensors:
            digest.update(np.ascontiguousarray(array).tobytes())
    return digest.hexdigest()


def fingerprint(run: Path, config: TrainConfig) -> dict:
    records = [json.loads(line) for line in (run / RUN_FILES["metrics"]).read_text().splitlines()]
    source = open_source(config.data)
    batches = range(config.batch_videos)
    return {
        "sha256": _sha256(load_file(run / RUN_FILES["weights"])),
        "start": _sha256(build_model(config, torch.device("cpu")).state_dict()),
        "data": _sha256([make_batch(source, config.seed, s, batches) for s in range(4)]),
        "first": {
            k: v for k, v in records[0].items() if k == "loss" or k.startswith(("rec", "kl"))
        },
        "schedule": [[r["lr"], r["beta"]] for r in records],
        "losses": [r["loss"] for r in records],
    }


@pytest.fixture(scope="module")
def trained(tmp_path_factory) -> dict[str, dict]:
    """Each pinned run trained once, by name: its fingerprint (written to the pins with
    STVAE_WRITE_PINS)."""
    root = tmp_path_factory.mktemp("pinned")
    got = {}
    for name in RUNS:
        config = _config(name)
        got[name] = fingerprint(Path(train(config, root / name)["run_dir"]), config)
    if os.environ.get("STVAE_WRITE_PINS"):
        pins = json.loads(PINS.read_text()) if PINS.exists() else {}
        for name, fp in got.items():
            if os.environ["STVAE_WRITE_PINS"] != "machine":
                pins.setdefault("runs", {})[name] = {k: v for k, v in fp.items() if k != "sha256"}
            pins.setdefault("sha256", {}).setdefault(machine(), {})[name] = fp["sha256"]
        PINS.write_text(json.dumps(pins, indent=1, sort_keys=True) + "\n")
    return got


@pytest.mark.parametrize("name", list(RUNS))
def test_a_short_run_starts_from_the_pinned_weights_and_data_and_trains_as_pinned(trained, name):
    got, want = trained[name], json.loads(PINS.read_text())["runs"][name]
    assert got["start"] == want["start"], "the initial weights changed"
    assert got["data"] == want["data"], "the data stream changed"
    assert got["first"] == pytest.approx(want["first"], rel=1e-3, abs=1e-4)
    assert got["schedule"] == want["schedule"]
    assert got["losses"] == pytest.approx(want["losses"], rel=0.02)


@pytest.mark.parametrize("name", list(RUNS))
def test_on_a_pinned_machine_the_trained_weights_are_bit_for_bit_the_pinned(trained, name):
    pinned = json.loads(PINS.read_text())["sha256"]
    if name not in pinned.get(machine(), {}):
        pytest.skip(f"no bit-for-bit pin for {machine()} (pinned: {'; '.join(pinned)})")
    assert trained[name]["sha256"] == pinned[machine()][name], f"bit-for-bit change on {machine()}"
