"""`difflab train | bound | sample` end to end on the smoke preset."""

from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image

from difflab.cli import main


def test_train_bound_sample(tmp_path, capsys):
    out = tmp_path / "run"
    args = [
        "train",
        "swissroll-smoke",
        "--set",
        "train.steps=12",
        "--set",
        "train.eval_examples=50",
        "--out",
        str(out),
        "--quiet",
    ]
    assert main(args) == 0
    first = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert first["status"] == "done" and first["step"] == 12
    assert main(args) == 0  # same command again: already finished, returns at once
    assert json.loads(capsys.readouterr().out.strip().splitlines()[-1])["step"] == 12

    assert main(["bound", str(out), "--k", "2", "--n", "40"]) == 0
    rep = json.loads(capsys.readouterr().out)
    assert rep["k"] == 2 and rep["n_examples"] == 40 and rep["unit"] == "bits/example"
    assert {"K_bits", "K_stderr_bits", "K_minus_Lnull_bits", "true_ll_bits"} <= rep.keys()

    assert main(["sample", str(out), "-n", "30", "--out", str(tmp_path / "s.csv")]) == 0
    assert np.loadtxt(tmp_path / "s.csv", delimiter=",").shape == (30, 2)
    assert main(["sample", str(out), "-n", "30", "--out", str(tmp_path / "s.png")]) == 0
    assert Image.open(tmp_path / "s.png").size == (512, 512)


def test_bad_config_fails_before_work(tmp_path, capsys):
    code = main(
        [
            "train",
            "swissroll-smoke",
            "--set",
            "diffusion.T=0",
            "--out",
            str(tmp_path / "x"),
            "--quiet",
        ]
    )
    assert code == 2
    err = capsys.readouterr().err
    assert "diffusion.T" in err and "[2, 100000]" in err
    assert not (tmp_path / "x").exists()
    code = main(
        [
            "train",
            "swissroll-smoke",
            "--set",
            "data.options.sigma=-1",
            "--out",
            str(tmp_path / "y"),
            "--quiet",
        ]
    )
    assert code == 2 and "data.options.sigma" in capsys.readouterr().err
    assert not (tmp_path / "y").exists()  # the builder's check ran before anything was written
    assert main(["bound", str(tmp_path / "missing")]) == 2
    assert "no checkpoint" in capsys.readouterr().err


def test_samples_need_no_data_set(tmp_path, monkeypatch, capsys):
    """Sampling a trained run reads the checkpoint only: rebuilding a run's data set can take
    minutes (64 x 64 dead leaves: 4 minutes for 5,000 images). Catches a sampler that goes
    through `Trained.bundle`, and one that shows digits with 256 grey levels instead of 17
    (its samples would differ from the training gallery's conversion above level 16)."""
    import torch

    import diffusion.inference as inference
    from diffusion.data import build_dataset
    from diffusion.data.display import to_data_array

    out = tmp_path / "run"
    args = ["train", "digits-smoke", "--set", "train.steps=2", "--out", str(out), "--quiet"]
    assert main(args) == 0
    capsys.readouterr()

    def refuse(*a, **k):
        raise AssertionError("sampling rebuilt the data set")

    monkeypatch.setattr(inference, "build_dataset", refuse)
    trained = inference.load_trained(out, device="cpu")
    got = trained.sample(64, generator=torch.Generator().manual_seed(0))
    assert main(["sample", str(out), "-n", "4", "--out", str(tmp_path / "d.png")]) == 0
    monkeypatch.undo()

    want = to_data_array(build_dataset(trained.config.data, trained.config.train.seed), got.x0)
    assert got.kind == "images" and got.samples.dtype == np.uint8
    assert np.array_equal(got.samples, want) and got.samples.max() == 16  # clipped at 16


@pytest.mark.timeout(180)
def test_train_on_a_wall_clock_budget(tmp_path, capsys):
    """`--budget-min` ends the run when the budget is spent, far short of train.steps, and a
    rerun returns the finished run. Catches a flag that is parsed but not passed to train()
    (the run would go on to 10^6 steps, and the timeout fails it) and budgets that are not
    positive numbers."""
    import time

    out = tmp_path / "run"
    base = ["train", "swissroll-smoke", "--set", "train.steps=1000000", "--quiet"]
    args = [*base, "--set", "train.eval_examples=50", "--out", str(out), "--budget-min", "0.03"]
    t0 = time.monotonic()
    assert main(args) == 0
    wall = time.monotonic() - t0
    done = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert done["status"] == "done" and 10 < done["step"] < 1_000_000
    assert wall < 60
    assert main(args) == 0  # spent: the same command returns the finished run
    assert json.loads(capsys.readouterr().out.strip().splitlines()[-1])["step"] == done["step"]
    for bad in ("0", "-1", "nan", "inf"):
        assert main([*base, "--out", str(tmp_path / "x"), "--budget-min", bad]) == 2
        assert "--budget-min must be a positive number" in capsys.readouterr().err
    assert not (tmp_path / "x").exists()


def test_train_says_its_warnings(tmp_path, capsys):
    """A run's warnings reach the terminal, also with --quiet: here a step that torch.compile
    cannot take (the full-covariance kernel branches on a value), so the run trains eagerly.
    The CLI once dropped every warning event, and the fallback went unseen."""
    args = ["train", "swissroll-thin", "--out", str(tmp_path / "run"), "--quiet"]
    for override in (
        "train.steps=2",
        "data.n_train=100",
        "data.n_holdout=20",
        "train.batch_size=16",
        "network.n_rbf=8",
        "network.options.dense=8",
        "train.eval_examples=8",
        "train.gallery_size=4",
        "train.compile=true",
    ):
        args += ["--set", override]
    assert main(args) == 0
    captured = capsys.readouterr()
    assert json.loads(captured.out.strip().splitlines()[-1])["status"] == "done"
    assert "warning at step 0: train.compile:" in captured.err
    assert "training runs eagerly" in captured.err
