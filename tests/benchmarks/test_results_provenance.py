"""Results files carry their provenance, and the README's tables are the results files'.

benchmarks/provenance.py writes {"provenance": ..., "rows": ...}; benchmarks/readme_tables.py
renders the README blocks between marker comments from those files.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "benchmarks"))
import provenance  # noqa: E402
import readme_tables  # noqa: E402

# Files written before provenance was recorded (none left: every file has it now). A file
# listed here must still lack provenance, so the list can only shrink.
LEGACY: dict[str, str] = {}


def _results() -> list[Path]:
    return sorted(provenance.RESULTS.glob("*.json"))


@pytest.mark.parametrize("path", _results(), ids=lambda p: p.name)
def test_every_results_file_has_provenance(path: Path) -> None:
    problems = provenance.check_results(json.loads(path.read_text()))
    if path.name in LEGACY:
        assert problems, f"{path.name} has provenance now: remove it from LEGACY"
    else:
        assert problems == [], f"{path.name}: {problems}"


def test_readme_tables_match_the_results() -> None:
    blocks = []
    for path in readme_tables.DOCUMENTS:
        text = path.read_text()
        _, changed = readme_tables.update(text)
        assert changed == [], f"run python benchmarks/readme_tables.py: {path.name} {changed}"
        blocks += readme_tables.blocks_in(text)
    with_provenance = {p.name for p in _results() if p.name not in LEGACY}
    for name, (file, _) in readme_tables.TABLES.items():
        if file in with_provenance:
            assert name in blocks, f"neither README nor the notes have a block for {name}"


def _doc(k: float) -> dict:
    run = provenance.Run("abc", False, [], "python benchmarks/x.py", [], "t0")
    row = {
        "note": "toy",
        "K_bits": k,
        "K_seed_std_bits": 0.1,
        "K_stderr_bits": 0.01,
        "K_minus_Lnull_bits": 1.0,
        "bits_per_dim": 2.0,
        "seeds": [1, 2],
        "steps": 10,
        "per_seed": [
            {"seed": 1, "K_bits": k - 0.05, "steps": 10},
            {"seed": 2, "K_bits": k + 0.05, "steps": 10},
        ],
        "paper_K_bits": 1,
        "paper_K_minus_Lnull_bits": 2,
        "split": {"test": "t"},
        "train_seconds": 1.0,
        "eval_seconds": 0.5,
    }
    return provenance.build(run, [row], seeds=[1, 2], split={"toy": "t"})


def test_a_changed_number_is_caught(tmp_path: Path) -> None:
    """The README block is re-rendered from the file: a number edited in the results (or in
    the README) makes `update` report the block."""
    (tmp_path / "table1_images.json").write_text(json.dumps(_doc(-1.25)))
    begin = readme_tables.BEGIN.format(name="table1_images")
    end = readme_tables.END.format(name="table1_images")
    block = readme_tables.render("table1_images", tmp_path)
    assert "-1.250" in block and "commit `abc`" in block
    text = f"intro\n{begin}\n{block}\n{end}\noutro\n"
    assert readme_tables.update(text, tmp_path) == (text, [])
    (tmp_path / "table1_images.json").write_text(json.dumps(_doc(-1.26)))
    new, changed = readme_tables.update(text, tmp_path)
    assert changed == ["table1_images"] and "-1.260" in new and new.endswith("outro\n")
    hand_edit = text.replace("-1.250", "-1.150")
    assert readme_tables.update(hand_edit, tmp_path)[1] == ["table1_images"]
    empty = f"intro\n{begin}\n{end}\n"  # a new block is filled in
    assert (
        readme_tables.update(empty, tmp_path)[0]
        == f"intro\n{begin}\n{new_block(tmp_path)}\n{end}\n"
    )


def new_block(results_dir: Path) -> str:
    return readme_tables.render("table1_images", results_dir)


def test_build_records_commit_command_machine_and_times() -> None:
    run = provenance.start(["--rows", "x"])
    head = subprocess.run(
        ["git", "rev-parse", "HEAD"], cwd=ROOT, capture_output=True, text=True
    ).stdout.strip()
    assert run.commit == head and isinstance(run.dirty, bool)
    assert run.command.endswith("--rows x")
    rows = [{"row": "a", "seeds": [1], "split": "s", "train_seconds": 2.0, "eval_seconds": 1.0}]
    rows.append({**rows[0], "train_seconds": 3.0})
    doc = provenance.build(run, rows, seeds=[1], split={"a": "s"})
    assert provenance.check_results(doc) == []
    p = doc["provenance"]
    assert (p["train_seconds"], p["eval_seconds"]) == (5.0, 2.0)
    assert {"cpu_count", "torch", "torch_threads", "device"} <= set(p["machine"])
    with pytest.raises(ValueError, match="has no 'split'"):
        provenance.build(run, [{"row": "b", "seeds": [1]}], seeds=[1], split={})


def test_check_results_names_what_is_missing() -> None:
    assert provenance.check_results([{"K_bits": 1}]) == [
        "not a results document: needs 'provenance' and 'rows'"
    ]
    doc = _doc(1.0)
    del doc["provenance"]["commit"], doc["rows"][0]["seeds"]
    assert provenance.check_results(doc) == ["provenance has no 'commit'", "row 0 has no 'seeds'"]


def test_dirty_ignores_outputs_only(monkeypatch: pytest.MonkeyPatch) -> None:
    outputs = " M benchmarks/results/table1.json\n M README.md\n?? docs/figures/a.png\n"
    monkeypatch.setattr(provenance, "_git", lambda *a: "abc\n" if a[0] == "rev-parse" else outputs)
    assert provenance.git_state() == ("abc", False, [])
    source = outputs + " M diffusion/training/train.py\n"
    monkeypatch.setattr(provenance, "_git", lambda *a: "abc\n" if a[0] == "rev-parse" else source)
    assert provenance.git_state() == ("abc", True, ["diffusion/training/train.py"])


def test_merge_keeps_each_rows_own_provenance() -> None:
    """A row rerun alone (table1.py --merge) replaces only itself; the rows it did not rerun
    keep the commit and command that made them, and the README names both commands. Broken
    versions this catches: the new command's provenance stamped on every row (old rows would
    claim a commit that never ran them), or the old row kept beside its replacement."""

    def doc(commit: str, rows: list[tuple[str, float]]) -> dict:
        run = provenance.Run(commit, False, [], f"python table1.py # {commit}", [], "t0")
        rows_ = [
            {"row": r, "schedule": "learned", "K_bits": k, "seeds": [1, 2, 3], "split": {}}
            | {"train_seconds": 1.0, "eval_seconds": 1.0}
            for r, k in rows
        ]
        return provenance.build(run, rows_, seeds=[1, 2, 3], split={})

    old = doc("old1", [("swissroll", 1.0), ("swissroll-thin", 2.0), ("heartbeat", 3.0)])
    new = doc("new2", [("swissroll-thin", 2.5)])
    merged = provenance.merge(old, new, ("row", "schedule"))
    assert [(r["row"], r["K_bits"]) for r in merged["rows"]] == [
        ("swissroll", 1.0),
        ("swissroll-thin", 2.5),
        ("heartbeat", 3.0),
    ]
    assert [r["provenance"]["commit"] for r in merged["rows"]] == ["old1", "new2", "old1"]
    assert merged["provenance"]["commit"] == "new2" and merged["provenance"]["merged"]
    again = provenance.merge(merged, doc("new3", [("heartbeat", 3.5)]), ("row", "schedule"))
    assert [r["provenance"]["commit"] for r in again["rows"]] == ["old1", "new2", "new3"]
    line = readme_tables.provenance_line({**again, "_file": "table1.json"})
    assert "Rows swissroll: " in line and "`old1`" in line
    assert "Rows swissroll-thin: " in line and "`new2`" in line
    assert "Rows heartbeat: " in line and "`new3`" in line


def test_speed_floor_rows_are_explained() -> None:
    """The report-only reference rows of the speed benchmark (benchmarks/speed_floor.py) show
    the minimal chain's and the paper-loss loop's own ratio against the bare baseline."""
    run = provenance.Run("abc", False, [], "python benchmarks/speed.py", [], "t0")
    base = {"seeds": [0], "split": {"kind": "none"}, "train_seconds": None, "eval_seconds": None}
    rows = [
        {
            **base,
            "name": "sample_vs_minimal/swissroll",
            "figure": 0.3,
            "baseline": 0.25,
            "ratio": 1.2,
            "target": None,
            "op": "report",
            "ok": True,
            "unit": "s/chain",
            "detail": {"minimal_over_bare": 1.0412, "ratio": "chain / minimal"},
        },
        {
            **base,
            "name": "train_vs_paper_loss/heartbeat",
            "figure": 0.01,
            "baseline": 0.008,
            "ratio": 1.25,
            "target": None,
            "op": "report",
            "ok": True,
            "unit": "s/step",
            "detail": {"engine_over_bare": 1.4, "paper_over_bare": 1.12, "ratio": "engine / paper"},
        },
    ]
    doc = provenance.build(run, rows, seeds=[0], split={"k": "n"})
    text = readme_tables.render_speed({**doc, "_file": "speed_x.json"})
    assert "| sample_vs_minimal/swissroll | 0.300 s/chain | 0.250 s/chain | 1.200 | - | - |" in text
    assert "minimal chain took 1.041 of the bare forwards" in text
    assert "paper's loss took 1.120 of the bare loop's time, the engine 1.400" in text


def test_the_load_average_is_the_one_at_the_start(monkeypatch) -> None:
    """A results file says how busy the machine was when the run began and when it ended.
    The broken version this catches: the 'start' load read when the file is written."""
    monkeypatch.setattr(provenance, "load_average", lambda: [1.0, 2.0, 3.0])
    run = provenance.start(["--json"])
    monkeypatch.setattr(provenance, "load_average", lambda: [9.0, 8.0, 7.0])
    doc = provenance.build(run, [], seeds=[0], split={"toy": "t"})
    assert doc["provenance"]["machine"]["load_average_at_start"] == [1.0, 2.0, 3.0]
    assert doc["provenance"]["machine"]["load_average_at_end"] == [9.0, 8.0, 7.0]


def test_the_forms_evaluation_rates_are_the_measured_ones() -> None:
    """dashboard/eval_rates.json (the New run form's time estimate) is what
    benchmarks/eval_speed.py measured: a rate edited by hand, or results rerun without the
    rates, fail here."""
    import eval_speed

    results = json.loads((ROOT / "benchmarks" / "results" / "eval_speed.json").read_text())
    shipped = json.loads((ROOT / "dashboard" / "eval_rates.json").read_text())
    assert shipped == eval_speed.rates_doc(results)
    assert set(shipped["pairs_per_s"]) == set(eval_speed.DATA_PRESETS)


def test_the_forms_estimate_is_pairs_over_the_measured_rate() -> None:
    from dashboard import forms

    rates = forms.EVAL_PAIRS_PER_S
    values = {"diffusion.T": 1000, "train.eval_examples": 500, "train.eval_timesteps": 10}
    pairs, seconds = forms.eval_estimate({**values, "data.name": "deadleaves"})
    assert pairs == 2 * 500 * 10
    assert seconds == pytest.approx(pairs / rates["deadleaves"])
    pairs, seconds = forms.eval_estimate({**values, "train.eval_timesteps": 0, "data.name": "x"})
    assert pairs == 2 * 500 * 999  # every t; an unknown image set at the slowest image rate
    slowest = min(v for k, v in rates.items() if k not in ("swissroll", "heartbeat"))
    assert seconds == pytest.approx(pairs / slowest)
