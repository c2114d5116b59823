"""benchmarks/speed.py (issue 14): the --quick code path end to end, and the exit status.

The ratios are not asserted here (tiny sizes on a shared machine); every measurement must be
present, finite and well formed, and a missed target must make a full run exit non-zero.
"""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from benchmarks import speed  # noqa: E402
from benchmarks.provenance import check_results  # noqa: E402
from benchmarks.speed_common import (  # noqa: E402
    Measurement,
    interleaved,
    mean_of_runs,
    paired_ratio,
)

ENGINE_NAMES = {
    "train_overhead/swissroll",
    "train_overhead/heartbeat",
    "train_overhead/conv",
    "sample/swissroll",
    "sample_strided/swissroll",
    "sample/heartbeat",
    "posterior_binary/heartbeat",
    "sample/conv",
    "sample_strided/conv",
    "posterior_denoise/conv",
    "posterior_inpaint_paper/conv",
    "posterior_inpaint_repaint/conv",
    "bound_exact/swissroll",
    "bound_importance_k1/swissroll",
    "bound_exact/conv",
    "threads/share_vs_all_cores",
    # report-only reference rows of the toy nets (benchmarks/speed_floor.py)
    "train_vs_paper_loss/swissroll",
    "train_vs_paper_loss/heartbeat",
    "sample_vs_minimal/swissroll",
    "sample_strided_vs_minimal/swissroll",
    "sample_vs_minimal/heartbeat",
    "posterior_binary_vs_minimal/heartbeat",
}


def test_quick_engine_and_threads(tmp_path: Path) -> None:
    out = tmp_path / "speed.json"
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.run(
        [
            sys.executable,
            "benchmarks/speed.py",
            "--json",
            "--quick",
            "--only",
            "engine,threads",
            "--out",
            str(out),
        ],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    lines = [json.loads(line) for line in proc.stdout.splitlines() if line.strip()]
    rows, summary = lines[:-1], lines[-1]
    names = {r["name"] for r in rows}
    assert names >= ENGINE_NAMES, ENGINE_NAMES - names
    for r in rows:
        assert r["figure"] > 0 and r["baseline"] > 0, r
        assert math.isfinite(r["ratio"]) and r["ratio"] > 0, r
        assert r["op"] in (">=", "<=", "report") and isinstance(r["ok"], bool)
    assert summary["summary"] and summary["provenance"]["quick"] is True
    assert len(summary["provenance"]["commit"]) == 40
    saved = json.loads(out.read_text())
    assert [r["name"] for r in saved["rows"]] == [r["name"] for r in rows]
    assert check_results(saved) == []


def test_missed_target_exits_non_zero(
    monkeypatch: pytest.MonkeyPatch, capsys, tmp_path: Path
) -> None:
    def fake_section(name: str, quick: bool, emit, args) -> None:
        emit(Measurement("x/hit", 1.0, 1.0, 1.0, 0.95, ">="))
        emit(Measurement("x/miss", 2.0, 1.0, 2.0, 1.05, "<="))

    monkeypatch.setattr(speed, "run_section", fake_section)
    out = tmp_path / "r.json"
    assert speed.main(["--json", "--only", "engine", "--out", str(out)]) == 1
    rows = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [r["ok"] for r in rows[:2]] == [True, False]
    assert rows[-1]["missed"] == ["x/miss"]
    saved = json.loads(out.read_text())
    assert saved["provenance"]["complete"] is True and len(saved["rows"]) == 2
    assert check_results(saved) == []
    assert speed.main(["--json", "--quick", "--only", "engine"]) == 0  # quick: code path only


def test_ratio_helpers() -> None:
    assert Measurement("a", 1, 1, 0.95, 0.95, ">=").ok
    assert not Measurement("a", 1, 1, 0.949, 0.95, ">=").ok
    assert Measurement("a", 1, 1, 1.05, 1.05, "<=").ok
    assert not Measurement("a", 1, 1, 1.06, 1.05, "<=").ok
    assert Measurement("a", 1, 1, 9.0, None, "report").ok
    assert paired_ratio([2.0, 4.0, 100.0], [1.0, 2.0, 1.0]) == 2.0  # a burst in one block
    calls: list[str] = []
    times = interleaved(
        {"a": lambda: calls.append("a"), "b": lambda: calls.append("b")},
        calls=1,
        blocks=3,
        warmup=0,
    )
    assert calls == ["a", "b", "b", "a", "a", "b"]  # alternating order
    assert all(len(v) == 3 for v in times.values())


def test_repeated_runs_are_judged_on_their_mean() -> None:
    """Three runs of two rows: each row's mean (0.99, 0.93, 0.94 -> 0.9533: met, though two
    runs missed; 0.90, 0.96, 0.96 -> 0.94: missed, though two runs met), every run's ratio
    kept. Broken versions: the best run, the last run or the median reported (row b met)."""
    runs = [
        [Measurement("a", 1.0, 0.9, r1, 0.95, ">="), Measurement("b", 2.0, 1.0, r2, 0.95, ">=")]
        for r1, r2 in ((0.99, 0.90), (0.93, 0.96), (0.94, 0.96))
    ]
    a, b = mean_of_runs(runs)
    assert a.ratio == pytest.approx(0.953333) and a.ok
    assert b.ratio == pytest.approx(0.94) and not b.ok
    assert a.detail["run_ratios"] == [0.99, 0.93, 0.94] and a.detail["runs"] == 3
    assert mean_of_runs(runs[:1]) == runs[0]  # one run: as it was


def test_pages_and_rounds_are_checked(capsys) -> None:
    """--pages names dashboard pages only; --rounds is a count (0 skips the memory rounds)."""
    with pytest.raises(SystemExit):
        speed.main(["--only", "dashboard", "--pages", "runs,nope"])
    assert "unknown pages ['nope']" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        speed.main(["--only", "dashboard", "--rounds", "-1"])
    assert "--rounds must be >= 0" in capsys.readouterr().err


def test_page_scripts_timed_in_process(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """benchmarks/speed_scripts.py on a tiny seeded store: every page's script runs (a page
    that raises stops the benchmark instead of looking fast) and is reported."""
    from benchmarks.seed_team import seed
    from benchmarks.speed_scripts import SCRIPTS, script_times
    from db.store import Store

    monkeypatch.setenv("DIFFLAB_DATA_DIR", str(tmp_path))
    for name in ("DIFFLAB_DATABASE_URL", "DIFFLAB_ARTIFACT_DIR"):
        monkeypatch.delenv(name, raising=False)
    store = Store.from_env()
    store.upgrade()
    seeded = seed(store, runs=6, points=40, images=2)
    store.dispose()
    rows: list[Measurement] = []
    script_times(tmp_path, seeded, rows.append, renders=1)
    assert [m.name for m in rows] == [f"dashboard_script/{n}" for n in (*SCRIPTS, "runs_filter")]
    assert all(m.figure > 0 and m.op == "report" and m.ok for m in rows)
