"""Pins: short runs of every model kind train the same weights as when the pins were taken.

Taken before the registries of issue 27 moved the code (``tests/pins.json``). Two checks
per run: a fingerprint that any CPU must match, and, on the CPU the pins were taken on,
the SHA-256 of every trained tensor's bytes (only a bit-for-bit equal run keeps it).
The fingerprint: the first step's loss terms within 0.1% (fp32 rounding of the
convolutions; they fix the initial weights, the data, the sampling noise and the ELBO's
arithmetic, beta included), every step's learning rate and beta exactly, and the later
steps' losses within 2% (Adam turns a CPU's rounding into steps of the learning rate's
size on weights whose gradient is near zero, so later steps differ between CPUs and
thread counts by about 0.2%).

Regenerate (only when a change is meant to change what runs learn, and say so in
CHANGELOG.md): ``STVAE_WRITE_PINS=1 pytest tests/test_pinned.py``.
"""

import hashlib
import json
import os
import platform
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from stvae.data import DataConfig
from stvae.model import ModelConfig
from stvae.train import RUN_FILES, TrainConfig, train

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


def fingerprint(run: Path) -> dict:
    tensors = load_file(run / RUN_FILES["weights"])
    digest = hashlib.sha256()
    for name in sorted(tensors):
        digest.update(name.encode())
        digest.update(tensors[name].contiguous().numpy().tobytes())
    records = [json.loads(line) for line in (run / RUN_FILES["metrics"]).read_text().splitlines()]
    return {
        "sha256": digest.hexdigest(),
        "first": {
            k: v for k, v in records[0].items() if k == "loss" or k.startswith(("rec", "kl"))
        },
        "schedule": [[r["lr"], r["beta"]] for r in records],
        "losses": [r["loss"] for r in records],
    }


@pytest.mark.parametrize("name", list(RUNS))
def test_a_short_run_trains_the_pinned_weights(tmp_path, name):
    got = fingerprint(Path(train(_config(name), tmp_path / name)["run_dir"]))
    pins = json.loads(PINS.read_text()) if PINS.exists() else {}
    if os.environ.get("STVAE_WRITE_PINS"):
        pins.setdefault("runs", {})[name] = {k: v for k, v in got.items() if k != "sha256"}
        pins.setdefault("sha256", {}).setdefault(machine(), {})[name] = got["sha256"]
        PINS.write_text(json.dumps(pins, indent=1, sort_keys=True) + "\n")
    want = pins["runs"][name]
    assert got["first"] == pytest.approx(want["first"], rel=1e-3, abs=1e-4)
    assert got["schedule"] == want["schedule"]
    assert got["losses"] == pytest.approx(want["losses"], rel=0.02)
    exact = pins["sha256"].get(machine(), {})
    if name in exact:
        assert got["sha256"] == exact[name], f"bit-for-bit change on {machine()}"
