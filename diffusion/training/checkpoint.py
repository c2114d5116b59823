"""Checkpoints that survive a full disk and a torn write, and say so when they cannot.

`save_checkpoint` writes to a temporary file in the same folder, fsyncs it, keeps the current
checkpoint as `checkpoint.prev.pt`, renames the new one into place and fsyncs the folder: the
last two good checkpoints are always on disk, and a failed write (ENOSPC, EIO) leaves them as
they were and raises CheckpointError. `load_checkpoint` loads safely
(torch.load(weights_only=True): tensors, numbers, strings, lists and dicts only) and turns a
truncated or corrupt file into CheckpointError naming the file; `load_latest` falls back to the
previous checkpoint, with a warning, when the newest one is bad.
"""

from __future__ import annotations

import dataclasses
import json
import os
import secrets
from pathlib import Path
from typing import Any

import torch

from diffusion.training.events import BoundEstimate, EvalEvent

CHECKPOINT = "checkpoint.pt"
PREVIOUS = "checkpoint.prev.pt"
FINAL_EVAL = "final_eval.json"


class CheckpointError(RuntimeError):
    """A checkpoint could not be written or read; the message names the file and the reason."""

    one_line = True  # the command line prints it as one line, without a traceback


def _reason(exc: BaseException) -> str:
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror
    text = str(exc).strip().splitlines()
    return text[0][:200] if text else type(exc).__name__


def _fsync_dir(folder: Path) -> None:
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


def save_checkpoint(path: Path, state: dict[str, Any]) -> None:
    """Write `state` to `path` atomically and durably; the old checkpoint becomes the previous."""
    path = Path(path)
    tmp = path.with_name(f".tmp-{path.name}-{secrets.token_hex(4)}")
    try:
        with open(tmp, "wb") as fh:
            torch.save(state, fh)
            fh.flush()
            os.fsync(fh.fileno())
        if path.exists():
            os.replace(path, path.with_name(PREVIOUS if path.name == CHECKPOINT else path.name))
        os.replace(tmp, path)
        _fsync_dir(path.parent)
    except (OSError, RuntimeError) as exc:
        tmp.unlink(missing_ok=True)
        raise CheckpointError(
            f"could not write the checkpoint {path}: {_reason(exc)}; "
            "training stopped (the previous checkpoint is kept)"
        ) from exc


def load_checkpoint(path: Path, map_location: str | torch.device = "cpu") -> dict[str, Any]:
    """A checkpoint, or CheckpointError (one line naming the file) if it is truncated or corrupt."""
    path = Path(path)
    try:
        state = torch.load(path, map_location=map_location, weights_only=True)
    except FileNotFoundError:
        raise CheckpointError(f"{path}: no such checkpoint") from None
    except Exception as exc:  # torch.load fails on bad bytes in many ways (EOF, magic, pickle)
        raise CheckpointError(
            f"{path}: the checkpoint is truncated or corrupt ({_reason(exc)})"
        ) from None
    if not isinstance(state, dict) or "step" not in state:
        raise CheckpointError(f"{path}: not a Diffusion Lab checkpoint")
    return state


def load_latest(
    out_dir: Path, map_location: str | torch.device = "cpu"
) -> tuple[dict[str, Any] | None, str | None]:
    """The newest good checkpoint of a run folder (or None) and a warning if one was skipped.

    Raises CheckpointError when checkpoints exist but none can be read.
    """
    out_dir = Path(out_dir)
    newest, previous = out_dir / CHECKPOINT, out_dir / PREVIOUS
    if not newest.exists():
        if not previous.exists():
            return None, None
        return load_checkpoint(previous, map_location), None
    try:
        return load_checkpoint(newest, map_location), None
    except CheckpointError as exc:
        if not previous.exists():
            raise
        state = load_checkpoint(previous, map_location)
        return state, f"{exc}; resuming from the previous checkpoint (step {state['step']})"


def write_final_eval(out_dir: Path, final: EvalEvent) -> None:
    """final_eval.json, written atomically (a temporary file renamed into place)."""
    path = Path(out_dir) / FINAL_EVAL
    tmp = path.with_name(f".tmp-{FINAL_EVAL}")
    try:
        tmp.write_text(json.dumps(dataclasses.asdict(final)))
        os.replace(tmp, path)
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        raise CheckpointError(f"could not write {path}: {exc.strerror or exc}") from exc


def load_final_eval(out_dir: Path) -> EvalEvent | None:
    path = Path(out_dir) / FINAL_EVAL
    if not path.exists():
        return None
    try:
        raw = json.loads(path.read_text())
        for key in ("k_train", "k_holdout"):
            raw[key] = BoundEstimate(**raw[key])
        return EvalEvent(**raw)
    except (OSError, ValueError, TypeError, KeyError) as exc:
        raise CheckpointError(f"{path}: corrupt or unreadable ({_reason(exc)})") from None
