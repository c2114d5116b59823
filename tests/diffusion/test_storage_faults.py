"""Storage faults: a full disk stops training loudly and loses nothing; a truncated or corrupt
checkpoint is one line naming the file, or a fall-back to the previous checkpoint."""

from __future__ import annotations

import errno

import pytest
import torch

from difflab.cli import main
from diffusion.presets import PRESETS
from diffusion.training import checkpoint as ck
from diffusion.training.checkpoint import (
    CheckpointError,
    load_checkpoint,
    load_latest,
    save_checkpoint,
)
from diffusion.training.events import WarningEvent
from diffusion.training.train import train

SMOKE = PRESETS["swissroll-smoke"].with_overrides(
    [
        "train.steps=8",
        "train.log_every=4",
        "train.eval_every=0",
        "train.eval_examples=32",
        "train.gallery_size=8",
        "data.n_train=200",
        "data.n_holdout=32",
    ]
)
TRAIN_ARGS = [
    "train",
    "swissroll-smoke",
    "--set",
    "train.steps=8",
    "--set",
    "train.eval_examples=32",
    "--quiet",
]


def full_disk(monkeypatch, after: int = 0) -> list[int]:
    """torch.save writes part of the file, then fails with ENOSPC (from call `after` on)."""
    calls = [0]
    real = torch.save

    def save(obj, fh, *args, **kwargs):
        calls[0] += 1
        if calls[0] > after:
            fh.write(b"PK\x03\x04 partial")
            raise OSError(errno.ENOSPC, "No space left on device")
        return real(obj, fh, *args, **kwargs)

    monkeypatch.setattr(ck.torch, "save", save)
    return calls


def test_a_failed_write_keeps_the_previous_checkpoint_and_leaves_no_temp(tmp_path, monkeypatch):
    path = tmp_path / ck.CHECKPOINT
    save_checkpoint(path, {"step": 1})
    save_checkpoint(path, {"step": 2})
    assert load_checkpoint(path)["step"] == 2
    assert load_checkpoint(tmp_path / ck.PREVIOUS)["step"] == 1  # the last two are kept
    full_disk(monkeypatch)
    with pytest.raises(CheckpointError, match=r"checkpoint\.pt: No space left on device"):
        save_checkpoint(path, {"step": 3})
    assert load_checkpoint(path)["step"] == 2
    assert sorted(p.name for p in tmp_path.iterdir()) == [ck.PREVIOUS, ck.CHECKPOINT]


def test_full_disk_stops_training_and_writes_no_final_eval(tmp_path, monkeypatch):
    full_disk(monkeypatch)
    out = tmp_path / "run"
    with pytest.raises(CheckpointError, match="No space left on device"):
        train(SMOKE, out)
    assert not (out / ck.FINAL_EVAL).exists() and not (out / ck.CHECKPOINT).exists()


def test_the_cli_says_one_line_on_a_full_disk(tmp_path, monkeypatch, capsys):
    full_disk(monkeypatch)
    assert main([*TRAIN_ARGS, "--out", str(tmp_path / "run")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "checkpoint.pt" in err[0] and "No space left" in err[0], err


@pytest.mark.parametrize("damage", ["truncate", "garbage", "empty"])
def test_every_cli_command_names_a_corrupt_checkpoint(tmp_path, capsys, damage):
    out = tmp_path / "run"
    assert main([*TRAIN_ARGS, "--out", str(out)]) == 0
    path = out / ck.CHECKPOINT
    data = path.read_bytes()
    (out / ck.PREVIOUS).unlink(missing_ok=True)
    path.write_bytes(
        {"truncate": data[: len(data) // 2], "garbage": b"\x00" * 999, "empty": b""}[damage]
    )
    capsys.readouterr()
    for argv in (
        ["sample", str(out), "-n", "4", "--out", str(tmp_path / "s.csv")],
        ["bound", str(out), "--n", "8"],
        [*TRAIN_ARGS, "--out", str(out)],
    ):
        assert main(argv) == 2, argv
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and str(path) in err[0] and "corrupt" in err[0], (argv, err)


def test_a_corrupt_newest_checkpoint_falls_back_to_the_previous(tmp_path):
    out = tmp_path / "run"
    first = SMOKE.with_overrides(["train.steps=4"])
    train(first, out)  # checkpoint at step 4 (done)
    resumed = SMOKE.with_overrides(["train.steps=8"])
    ck.save_checkpoint(out / ck.CHECKPOINT, {**load_checkpoint(out / ck.CHECKPOINT)})
    (out / ck.CHECKPOINT).write_bytes(b"torn")
    state, warning = load_latest(out)
    assert state["step"] == 4 and "truncated or corrupt" in warning and "step 4" in warning
    events = []
    result = train(resumed, out, on_event=events.append)
    warnings = [e for e in events if isinstance(e, WarningEvent)]
    assert result.status == "done" and result.step == 8
    assert len(warnings) == 1 and str(out / ck.CHECKPOINT) in warnings[0].message


def test_a_corrupt_final_eval_or_config_is_one_line_too(tmp_path, capsys):
    out = tmp_path / "run"
    assert main([*TRAIN_ARGS, "--out", str(out)]) == 0
    for name in (ck.FINAL_EVAL, "config.json"):
        good = (out / name).read_text()
        (out / name).write_text('{"k_train": 1')
        capsys.readouterr()
        assert main([*TRAIN_ARGS, "--out", str(out)]) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and str(out / name) in err[0], err
        (out / name).write_text(good)
