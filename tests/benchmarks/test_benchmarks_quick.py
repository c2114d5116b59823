"""Every benchmark script runs end to end in --quick mode and writes a results file with
full provenance (so a change that breaks a benchmark fails the suite)."""

from __future__ import annotations

import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "benchmarks"))
import provenance  # noqa: E402
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
