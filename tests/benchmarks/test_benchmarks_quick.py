"""Every benchmark script runs end to end in --quick mode and writes a results file with
full provenance (so a change that breaks a benchmark fails the suite)."""

from __future__ import annotations

import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "benchmarks"))
import provenance  # noqa: E402
import readme_tables  # noqa: E402
import table1  # noqa: E402
import table1_images  # noqa: E402


def test_table1_quick(tmp_path: Path, capsys) -> None:
    out = tmp_path / "t1.json"
    argv = ["--quick", "--seeds", "1,2", "--results", str(out), "--out", str(tmp_path / "runs")]
    assert table1.main(argv) == 0
    doc = json.loads(out.read_text())
    assert provenance.check_results(doc) == []
    rows = {r["row"]: r for r in doc["rows"]}
    assert set(rows) == {"swissroll", "swissroll-thin", "heartbeat"}
    for r in rows.values():
        ks = [s["K_bits"] for s in r["per_seed"]]
        assert [s["seed"] for s in r["per_seed"]] == [1, 2] and len(set(ks)) == 2
        assert abs(r["K_bits"] - sum(ks) / 2) < 1e-12
        assert abs(r["K_seed_std_bits"] - abs(ks[0] - ks[1]) / 2**0.5) < 1e-12
        assert r["split"]["test_seed"] is not None and r["split"]["n_test"] == table1.N_TEST_QUICK
        assert r["target_met_by_mean"] is False  # 30 steps meet no target
        assert r["target_met"] is None  # and 2 seeds establish nothing
    assert doc["provenance"]["seeds"] == [1, 2]
    assert "--quick" in doc["provenance"]["command"]
    assert "| swissroll-thin | learned |" in capsys.readouterr().out


def test_table1_images_quick(tmp_path: Path) -> None:
    out = tmp_path / "t1i.json"
    argv = ["--quick", "--seeds", "0", "--results", str(out), "--out", str(tmp_path / "runs")]
    assert table1_images.main(argv) == 0
    doc = json.loads(out.read_text())
    assert provenance.check_results(doc) == []
    assert [r["row"] for r in doc["rows"]] == ["deadleaves", "bark"]
    for r in doc["rows"]:
        assert r["split"]["n_test"] == table1_images.N_TEST_QUICK and r["steps"] == 3


def test_posterior_quick(tmp_path: Path) -> None:
    import posterior

    out = tmp_path / "post.json"
    argv = ["--quick", "--results", str(out), "--runs", str(tmp_path / "runs")]
    assert posterior.main(argv) == 0
    doc = json.loads(out.read_text())
    assert provenance.check_results(doc) == []
    assert [r["part"] for r in doc["rows"]] == ["a_denoise", "c_strided", "b_inpaint"]
    assert "TEST_SEED" in doc["rows"][0]["split"]["test"]  # digits: the fixed test split
    assert "test band" in doc["rows"][2]["split"]["test"]  # gravel: the bottom rows
    assert (tmp_path / "runs" / "figures" / "posterior_denoise.png").exists()


def test_table1_long_row_quick(tmp_path: Path) -> None:
    """A longer-budget row: trained on a budget (not cut off by it), test K sampled in t, and
    the README renderer states both. Catches the row falling back to the exact sum or to the
    step-count path (its record would say 'exact in t' or lose the fitted learning rate)."""
    out = tmp_path / "t1l.json"
    argv = ["--quick", "--rows", "bark-64", "--seeds", "0", "--results", str(out)]
    assert table1_images.main([*argv, "--out", str(tmp_path / "runs")]) == 0
    doc = json.loads(out.read_text())
    assert provenance.check_results(doc) == []
    (r,) = doc["rows"]
    assert r["test_K"] == "estimated from 50 values of t per example (unbiased)"
    assert "64 x 64" in r["budget"] and "fitted to the budget" in r["budget"]
    cfg = json.loads((tmp_path / "runs" / "bark-64-seed0" / "config.json").read_text())
    assert cfg["data"]["options"]["patch"] == 64 and cfg["network"]["kind"] == "unet"
    text = readme_tables.render_table1_long({**doc, "_file": "t1l.json"})
    assert "`bark-64`: " in text and "50 values of t" in text


def test_table1_trials_read_the_validation_split_only(tmp_path: Path, monkeypatch) -> None:
    """`--trial` (tuning) trains each variant and reports K on the validation split; it must
    never load the test split (broken version caught: trials scored on the test files), and
    each trial's overrides must reach its run (caught: every trial running the preset)."""
    import struct

    import numpy as np

    from diffusion.data import splits

    images = np.random.default_rng(0).integers(0, 256, (60, 28, 28), dtype=np.uint8)
    (tmp_path / "mnist").mkdir()
    (tmp_path / "mnist" / "train-images-idx3-ubyte").write_bytes(
        struct.pack(">HBB3I", 0, 0x08, 3, 60, 28, 28) + images.tobytes()
    )
    monkeypatch.setenv("DIFFLAB_DATASETS", str(tmp_path))  # no t10k file: a test read fails

    def no_test_split(*a, **k):
        raise AssertionError("a tuning trial loaded the test split")

    monkeypatch.setattr(splits, "load_test_split", no_test_split)
    out = tmp_path / "trials.json"
    argv = ["--quick", "--rows", "mnist", "--results", str(out), "--out", str(tmp_path / "runs")]
    trial = "network.options.channels=8;network.options.groups=8"
    assert table1_images.main([*argv, "--trial", trial, "--trial", ""]) == 0
    doc = json.loads(out.read_text())
    assert provenance.check_results(doc) == []
    assert [r["tune"] for r in doc["rows"]] == [trial.split(";"), []]
    assert all("K_bits" not in r and r["K_validation_bits"] < 0 for r in doc["rows"])
    widths = [
        json.loads((tmp_path / "runs" / f"mnist-trial{i}-seed0" / "config.json").read_text())[
            "network"
        ]["options"]["channels"]
        for i in (0, 1)
    ]
    assert widths == [8, 16]
    text = readme_tables.render_trials({**doc, "_file": "trials.json"})
    assert text.count("**") == 2 and "| mnist | the preset | 0 |" in text
