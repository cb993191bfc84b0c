"""Run-directory files: atomic writes, safetensors weights, checkpoints that load no code.

A training checkpoint is one safetensors file: model tensors under ``model/``, Adam's
moment tensors under ``optim/<param>/<key>``, the torch RNG state under ``rng/``, and
the rest (step, optimiser hyper-parameters, config) as JSON strings in the file's
metadata. Nothing is pickled, so loading cannot run code.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import socket
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import save_file
from torch import nn

from stvae.errors import StvaeError

__all__ = [
    "atomic_write",
    "clear_temporaries",
    "is_temporary",
    "make_folder",
    "write_json",
    "read_json",
    "save_weights",
    "load_weights",
    "save_checkpoint",
    "load_checkpoint",
    "CHECKPOINT_FORMAT",
    "RunLock",
    "FileLock",
]

CHECKPOINT_FORMAT = "stvae-checkpoint-1"


def atomic_write(
    path: Path, write: Callable[[Path], None], before_replace: Callable[[], None] | None = None
) -> None:
    """Calls ``write(tmp)`` on a temporary file beside ``path``, flushes it to the disk,
    calls ``before_replace()`` (if given), renames it into place and flushes the folder.

    The file gets the mode a plain ``open`` would give it (0666 less the umask), not the
    0600 of a temporary file, whatever ``write`` does to the temporary file (safetensors'
    ``save_file`` writes its own temporary file and renames it over ours). A write that
    fails (a full disk, a read-only folder) leaves ``path`` as it was and raises
    :class:`StvaeError` naming the file and the reason.
    """
    path = Path(path)
    tmp_path = None
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
        os.close(fd)
        tmp_path = Path(tmp)
        write(tmp_path)
        os.chmod(tmp_path, 0o666 & ~_umask())  # after writing: the writer may replace the file
        with open(tmp_path, "rb+") as f:
            os.fsync(f.fileno())
        if before_replace is not None:
            before_replace()
        os.replace(tmp_path, path)
        _fsync_folder(path.parent)
    except BaseException as e:
        if tmp_path is not None:
            tmp_path.unlink(missing_ok=True)
        if isinstance(e, OSError) or _io_error(e):
            reason = e.strerror if isinstance(e, OSError) and e.strerror else str(e)
            raise StvaeError(f"{path}: could not be written ({reason}); it is unchanged") from None
        raise


def is_temporary(name: str) -> bool:
    """A file an interrupted write leaves behind: :func:`atomic_write`'s
    ``.<name>.<random>.tmp``, or safetensors' own ``.tmp<random>`` beside it."""
    return name.startswith(".") and (name.endswith(".tmp") or name.startswith(".tmp"))


def clear_temporaries(*folders: Path) -> None:
    """Removes the temporaries of interrupted writes (:func:`is_temporary`) in ``folders``.
    Only the holder of a folder's :class:`RunLock` may call it: no other writer of ours is
    then at work there."""
    for folder in map(Path, folders):
        if folder.is_dir():
            for p in folder.iterdir():
                if is_temporary(p.name) and p.is_file():
                    p.unlink(missing_ok=True)


def make_folder(path: Path) -> None:
    """``mkdir -p``, a failure (a read-only file system, no permission) said in one line."""
    try:
        Path(path).mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise StvaeError(f"{path}: could not be created ({e.strerror or e})") from None


def _umask() -> int:
    """The process's umask, read without changing it where Linux shows it."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("Umask:"):
                return int(line.split()[1], 8)
    except (OSError, ValueError):
        pass
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def _fsync_folder(folder: Path) -> None:
    """Makes a rename in ``folder`` durable (a no-op where folders cannot be opened)."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def _io_error(e: BaseException) -> bool:
    """safetensors reports a failed write as its own error, carrying the OS's message."""
    return type(e).__name__ == "SafetensorError" and "os error" in str(e).lower()


def write_json(path: Path, obj: Any) -> None:
    atomic_write(path, lambda p: p.write_text(json.dumps(obj, indent=2, sort_keys=True) + "\n"))


def read_json(path: Path) -> Any:
    try:
        return json.loads(Path(path).read_text())
    except FileNotFoundError:
        raise StvaeError(f"{path}: no such file") from None
    except (OSError, ValueError) as e:
        raise StvaeError(f"{path}: not valid JSON ({e})") from None


COVERS = "tensors+metadata"  # what "sha256" covers in files of stvae 0.5 on


def _sha256(tensors: dict[str, torch.Tensor], metadata: dict[str, str] | None = None) -> str:
    """Digest of the tensors (names, dtypes, bytes) and, given ``metadata``, of every
    metadata entry but the digest itself."""
    digest = hashlib.sha256()
    for name in sorted(tensors):
        t = tensors[name].detach().cpu().contiguous()
        digest.update(name.encode())
        digest.update(str(t.dtype).encode())
        digest.update(t.reshape(-1).view(torch.uint8).numpy().tobytes())
    if metadata is not None:
        kept = {k: v for k, v in metadata.items() if k != "sha256"}
        digest.update(json.dumps(kept, sort_keys=True).encode())
    return digest.hexdigest()


def _save(
    path: Path,
    tensors: dict[str, torch.Tensor],
    metadata: dict[str, str],
    before_replace: Callable[[], None] | None = None,
) -> None:
    tensors = {k: v.detach().cpu().contiguous() for k, v in tensors.items()}
    metadata = {**metadata, "covers": COVERS}
    metadata["sha256"] = _sha256(tensors, metadata)
    atomic_write(path, lambda p: save_file(tensors, str(p), metadata=metadata), before_replace)


def _load(path: Path) -> tuple[dict[str, torch.Tensor], dict[str, str]]:
    """A file's tensors and metadata, its checksum verified: over tensors and metadata
    (``covers`` = :data:`COVERS`), or, in files of stvae before 0.5, over the tensors."""
    if not path.is_file():
        raise StvaeError(f"{path}: no such file")
    try:
        with safe_open(str(path), framework="pt") as f:
            metadata = f.metadata() or {}
            tensors = {name: f.get_tensor(name) for name in f.keys()}  # noqa: SIM118
    except (SafetensorError, OSError, ValueError) as e:
        raise StvaeError(f"{path}: corrupt or truncated safetensors file ({e})") from None
    covered = metadata if metadata.get("covers") == COVERS else None
    if metadata.get("sha256") != _sha256(tensors, covered):
        raise StvaeError(f"{path}: checksum mismatch; the file was altered or damaged")
    return tensors, metadata


def _intact(path: Path) -> bool:
    try:
        _load(path)
    except StvaeError:
        return False
    return True


def save_weights(path: Path, model: nn.Module, config: dict) -> None:
    """The model's parameters and buffers, with its config as JSON metadata."""
    _save(path, dict(model.state_dict()), {"config": json.dumps(config)})


def load_weights(path: Path, model: nn.Module) -> None:
    tensors, _ = _load(path)
    _load_state(model, tensors, path)


def _load_state(model: nn.Module, tensors: dict[str, torch.Tensor], path: Path) -> None:
    try:
        model.load_state_dict(tensors)
    except RuntimeError as e:
        first = str(e).splitlines()[1].strip() if "\n" in str(e) else str(e)
        raise StvaeError(f"{path}: weights do not fit this model ({first})") from None


def previous(path: Path) -> Path:
    """Where the checkpoint before ``path`` is kept: ``checkpoint.prev.safetensors``."""
    return path.with_name(path.stem + ".prev" + path.suffix)


def save_checkpoint(
    path: Path, model: nn.Module, optimizer: torch.optim.Optimizer, step: int, config: dict
) -> None:
    """Everything needed to continue training bit for bit (data batches derive from the step).

    The new file is written and flushed to the disk first; only then is the checkpoint it
    replaces kept as :func:`previous` (when it passes its checksum: a damaged file never
    replaces a good previous one) and the new one renamed into place. A kill or a full
    disk at any point leaves an intact checkpoint to resume from."""

    def rotate() -> None:
        if path.exists() and _intact(path):
            os.replace(path, previous(path))

    tensors = {f"model/{k}": v for k, v in model.state_dict().items()}
    state = optimizer.state_dict()
    for idx, slots in state["state"].items():
        for key, value in slots.items():
            tensors[f"optim/{idx}/{key}"] = torch.as_tensor(value)
    tensors["rng/torch"] = torch.get_rng_state()
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        tensors["rng/cuda"] = torch.cuda.get_rng_state()
    metadata = {
        "format": CHECKPOINT_FORMAT,
        "step": str(step),
        "param_groups": json.dumps(state["param_groups"]),
        "config": json.dumps(config),
    }
    _save(path, tensors, metadata, before_replace=rotate)


def load_checkpoint(
    path: Path, model: nn.Module, optimizer: torch.optim.Optimizer | None = None
) -> int:
    """Restores the model from ``path`` and, given an optimiser, the optimiser and RNG state.

    When ``path`` is missing or damaged and the previous checkpoint is intact, that one is
    used, with a warning on stderr. Returns the step the checkpoint was taken at.
    """
    try:
        tensors, metadata = _load(path)
    except StvaeError as e:
        if not previous(path).is_file():
            raise StvaeError(f"{e}; no previous checkpoint to fall back to") from None
        print(f"stvae: {e}; resuming from {previous(path).name}", file=sys.stderr)
        tensors, metadata = _load(previous(path))
    if metadata.get("format") != CHECKPOINT_FORMAT:
        raise StvaeError(f"{path}: not an {CHECKPOINT_FORMAT} file")
    model_state = {k[len("model/") :]: v for k, v in tensors.items() if k.startswith("model/")}
    _load_state(model, model_state, path)
    if optimizer is None:
        return int(metadata["step"])
    optim_state: dict[int, dict[str, torch.Tensor]] = {}
    for name, value in tensors.items():
        if name.startswith("optim/"):
            _, idx, key = name.split("/", 2)
            optim_state.setdefault(int(idx), {})[key] = value
    optimizer.load_state_dict(
        {"state": optim_state, "param_groups": json.loads(metadata["param_groups"])}
    )
    # Moments come back contiguous; give them their parameter's strides (channels-last
    # convs), since fused Adam walks parameter and moments in memory order.
    for group in optimizer.param_groups:
        for param in group["params"]:
            for key, value in optimizer.state.get(param, {}).items():
                if torch.is_tensor(value) and value.shape == param.shape:
                    optimizer.state[param][key] = torch.empty_like(param).copy_(value)
    torch.set_rng_state(tensors["rng/torch"])
    if "rng/cuda" in tensors and torch.cuda.is_available():
        torch.cuda.set_rng_state(tensors["rng/cuda"])
    return int(metadata["step"])


class FileLock:
    """An OS lock (``flock``) on the file ``path``, held until :meth:`release`.

    The kernel drops the lock when its process ends in any way (``kill -9`` included), so
    a dead owner's lock is free to the next process; of two processes that try at once,
    exactly one gets it. ``blocking``: wait for the owner to release it, else refuse at
    once. The file's content (pid, host, start time) serves only the refusal's message;
    the file is removed on release.
    """

    def __init__(self, path: Path, blocking: bool = False):
        self.path = Path(path)
        self.blocking = blocking
        self.fd: int | None = None

    @property
    def held(self) -> bool:
        return self.fd is not None

    def _owner(self) -> str:
        try:
            owner = json.loads(self.path.read_text())
            return f"process {owner['pid']} on {owner['host']} (since {owner['since']})"
        except (OSError, ValueError, KeyError, TypeError):
            return "another process"

    def _refuse(self) -> StvaeError:
        return StvaeError(f"{self.path}: held by {self._owner()}")

    def acquire(self):
        flags = fcntl.LOCK_EX | (0 if self.blocking else fcntl.LOCK_NB)
        for _ in range(100):  # a lock file removed by its releasing owner: open it anew
            try:
                fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o666)
            except OSError as e:
                raise StvaeError(f"{self.path}: could not be created ({e.strerror})") from None
            try:
                fcntl.flock(fd, flags)
            except OSError:
                os.close(fd)
                raise self._refuse() from None
            try:
                same = os.fstat(fd).st_ino == os.stat(self.path).st_ino
            except FileNotFoundError:
                same = False
            if not same:  # its owner removed the file between our open and our lock
                os.close(fd)
                continue
            me = {"pid": os.getpid(), "host": socket.gethostname(), "since": time.ctime()}
            os.ftruncate(fd, 0)
            os.write(fd, json.dumps(me).encode())
            self.fd = fd
            return self
        raise StvaeError(f"{self.path}: could not be taken (it keeps being replaced)")

    def release(self) -> None:
        if self.fd is None:
            return
        self.path.unlink(missing_ok=True)  # while still held: no one locks a removed file
        os.close(self.fd)  # drops the lock
        self.fd = None

    def __enter__(self):
        return self.acquire()

    def __exit__(self, *exc) -> None:
        self.release()


class RunLock(FileLock):
    """One writer per folder: a :class:`FileLock` on ``<folder>/.lock``, refused at once
    while another process holds it, for the writer's life."""

    NAME = ".lock"

    def __init__(self, folder: Path):
        super().__init__(Path(folder) / self.NAME)

    @classmethod
    def leftover(cls, name: str) -> bool:
        """What a writer killed before its folder held anything leaves there: its lock
        file and the temporaries of its writes. A folder of only these is empty."""
        return name == cls.NAME or is_temporary(name)

    def _refuse(self) -> StvaeError:
        return StvaeError(
            f"{self.path.parent}: in use by {self._owner()}; wait for it or stop it "
            f"(the lock ends with its process; if no process of this run is alive, "
            f"the folder is on a file system without locks: delete {self.path})"
        )
