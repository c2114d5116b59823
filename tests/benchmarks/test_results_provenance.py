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
import readme_photos  # noqa: E402
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


def test_photo_rows_render_every_inpainting_chain(monkeypatch) -> None:
    """A photos inpainting row with the guided chain at a chosen weight: each chain that ran
    gets its own README line with its own flags, and the method names parse back."""
    import posterior_photos

    assert posterior_photos.method_spec("guided:4") == ("guided", {"guidance": 4.0})
    assert posterior_photos.method_spec("repaint") == ("repaint", {})
    one_pass = {"coarse": None, "refine_from": None}
    assert posterior_photos.method_spec("guided:8@off") == ("guided", {"guidance": 8.0, **one_pass})
    assert posterior_photos.method_spec("paper@4,800") == (
        "paper",
        {"coarse": 4, "refine_from": 800},
    )
    with pytest.raises(ValueError, match="only the guided method"):
        posterior_photos.method_spec("paper:2")
    assert posterior_photos.method_spec("guided:8@biharmonic,700") == (
        "guided",
        {"guidance": 8.0, "coarse": "biharmonic", "refine_from": 700},
    )
    assert posterior_photos.method_spec("paper@biharmonic")[1]["refine_from"] is None
    for bad in ("sometimes", "4,800,3", "biharmonic,x", "bilinear"):
        with pytest.raises(ValueError, match="auto, off, S, S,T0, biharmonic or biharmonic,T0"):
            posterior_photos.method_spec(f"guided@{bad}")
    dist = {"hist_wasserstein_grey_levels": 10.0, "spectrum_rms_log10_ratio": 1.0}
    row = {
        "row": "camera inpaint",
        "size_w_h": [512, 512],
        "plan": "160 x 160: run in tiles",
        "biharmonic": {**dist, "rmse_to_truth": 1.0, "seconds": 0.1},
        "paper": {**dist, "hist_wasserstein_grey_levels": 30.0, "rmse_to_truth": 2, "seconds": 9},
        "guided:4": {**dist, "rmse_to_truth": 2.0, "seconds": 20.0},
        "beats_biharmonic_on_spectrum": False,
        "histogram_within_10pct": False,
        "guided:4_beats_biharmonic_on_spectrum": True,
        "guided:4_histogram_within_10pct": True,
        "guided:8@off": {**dist, "rmse_to_truth": 2.0, "seconds": 20.0, "plan": "160 x 160: one"},
        "guided:8@off_beats_biharmonic_on_spectrum": True,
        "guided:8@off_histogram_within_10pct": False,
    }
    row["paper"]["plan"] = "160 x 160: coarse-to-fine at 1/4, refined from level 861 of 1000"
    assert readme_photos.inpaint_methods(row) == ["paper", "guided:4", "guided:8@off"]
    doc = {"rows": [row], "provenance": {"model": {}}, "_file": "posterior_photos.json"}
    monkeypatch.setattr(readme_photos, "provenance_line", lambda doc: "")  # not tested here
    lines = readme_photos.render_posterior_photos(doc).splitlines()
    guided = next(line for line in lines if "(guided, w = 4)" in line)
    paper = next(line for line in lines if "(paper)" in line)
    assert guided.count("**met**") == 2 and paper.count("**short**") == 2
    # each chain's window from its own plan (the row's plan only where a chain has none)
    assert "coarse-to-fine 1/4 from level 861" in paper and "coarse" not in guided
    assert readme_photos.method_label("guided:8@biharmonic,700", {"guidance": 8.0}) == (
        "guided, w = 8.0, biharmonic start from level 700"
    )
    assert readme_photos.method_label("paper@biharmonic") == "paper, biharmonic start"
    assert readme_photos.method_label("paper@4,800") == "paper, coarse-to-fine 1/4 from level 800"
    assert (
        readme_photos._coarse_words(
            "160 x 160: tiles; started from the biharmonic fill of the hole (smooth, from the "
            "pixels around it), diffused forward to level 861 of 1000 and refined by the chain"
        )
        == ", biharmonic start from level 861"
    )
    one = next(line for line in lines if "(guided, w = 8, one pass)" in line)
    assert one.count("**met**") == 1 and one.count("**short**") == 1 and "coarse" not in one
    # the model line says how many threads trained it where the results record it
    training = {"train_seconds_total": 600}
    model = {"preset": "photos-unet", "checkpoint_step": 5, "training": training}
    doc["provenance"]["model"] = model
    assert "(10 minutes of training in all)" in readme_photos.render_posterior_photos(doc)
    model["training"]["threads"] = 2
    assert "(10 minutes of training in all, on 2 CPU threads)" in (
        readme_photos.render_posterior_photos(doc)
    )


def test_validation_chooses_the_lowest_mean_log_ratio() -> None:
    """coarse_validation.choose: the lowest mean log(W1 / biharmonic W1), every hole weighted
    alike; a chooser by mean W1 (which one bad hole dominates: picks "paper") or by the count
    of holes within 10% first (picks "off; guided:8", the one-pass chain that fails on flat
    regions) fails this. Equal means go to the larger count."""
    import coarse_validation

    summary = {
        "paper": {"w1_within_10pct": 1, "mean_log_w1_ratio": 2.0, "mean_w1": 5.0},
        "off; guided:8": {"w1_within_10pct": 4, "mean_log_w1_ratio": 1.53, "mean_w1": 34.3},
        "1/4; guided:8": {"w1_within_10pct": 3, "mean_log_w1_ratio": 0.60, "mean_w1": 40.0},
    }
    assert coarse_validation.choose(summary) == "1/4; guided:8"
    summary["1/4; guided:4"] = {"w1_within_10pct": 4, "mean_log_w1_ratio": 0.60, "mean_w1": 9.0}
    assert coarse_validation.choose(summary) == "1/4; guided:4"


def test_photo_runs_name_their_held_out_photos() -> None:
    """The photos benchmark holds the validation photos out with the test photos, and an older
    run without the option is read as holding out the test photos only."""
    from types import SimpleNamespace

    import posterior_photos

    def run(options):
        return SimpleNamespace(config=SimpleNamespace(data=SimpleNamespace(options=options)))

    assert posterior_photos.held_out_photos(run((("patch", 32),))) == posterior_photos.TEST_PHOTOS
    both = (*posterior_photos.TEST_PHOTOS, *posterior_photos.VALIDATION_PHOTOS)
    assert posterior_photos.held_out_photos(run((("holdout", both),))) == both
    assert not set(posterior_photos.TEST_PHOTOS) & set(posterior_photos.VALIDATION_PHOTOS)


def test_validation_merge_needs_every_chain_on_every_hole(tmp_path) -> None:
    """coarse_validation.merge: rows of two side-by-side outputs summed into one summary
    (means over both photos' holes; seeds by the run's rule), and an output cut short (a
    chain missing on a hole) refused rather than summarized on fewer holes."""
    import coarse_validation

    def row(photo, at, method, w1):
        return {
            "photo": photo,
            "at_y_x": at,
            "setting": "off",
            "method": method,
            "w1": w1,
            "spectrum": 1.0,
            "w1_biharmonic": 10.0,
            "spectrum_biharmonic": 5.0,
            "seconds": 1.0,
        }

    a, b = tmp_path / "a.out", tmp_path / "b.out"
    a.write_text(
        "\n".join(
            json.dumps(r)
            for r in [
                row("chelsea", [1, 2], "paper", 40.0),
                row("chelsea", [1, 2], "guided:8", 10.0),
                row("chelsea", [3, 4], "paper", 20.0),
                row("chelsea", [3, 4], "guided:8", 11.0),
            ]
        )
        + '\n{\n  "options": {"seed": 5}\n}\n'
    )
    b.write_text(json.dumps(row("rocket", [5, 6], "paper", 5.0)) + "\n")
    with pytest.raises(SystemExit, match="did not finish"):
        coarse_validation.merge([a, b])
    b.write_text(b.read_text() + json.dumps(row("rocket", [5, 6], "guided:8", 80.0)) + "\n")
    rows, out = coarse_validation.merge([a, b])
    assert out["summary"]["off; guided:8"]["mean_w1"] == pytest.approx(101.0 / 3)
    assert out["summary"]["off; paper"]["w1_within_10pct"] == 1
    # mean log ratios: paper (1.39 + 0.69 - 0.69) / 3 = 0.46, guided (0 + 0.10 + 2.08) / 3
    assert out["chosen"] == "off; paper"
    assert [r["seed"] for r in rows] == [5, 5, 6, 6, 100, 100]  # rocket: photo 1, hole 0


def test_validation_table_stars_the_holes_within_10pct_and_bolds_the_chosen(monkeypatch) -> None:
    """The notes' validation table: a fill is starred when its W1 is within 10% of biharmonic's
    (10.9 against 10 is, 11.1 is not: the rule of `within_histogram_target`, the row's verdict)
    and the chosen (setting, chain) is the bold column.
    A table that starred by the spectrum, or bolded another column, fails."""
    monkeypatch.setattr(readme_photos, "provenance_line", lambda doc: "")
    base = {"photo": "rocket", "at_y_x": [1, 2], "w1_biharmonic": 10.0}
    base |= {"spectrum_biharmonic": 5.0, "seconds": 3.0}
    rows = [
        {**base, "setting": "off", "method": "paper", "w1": 11.1, "spectrum": 1.0},
        {
            **base,
            "setting": "1/4, noise 0.5 (t0=861)",
            "method": "guided:8",
            "w1": 10.9,
            "spectrum": 9.0,
        },
    ]
    import posterior_photos

    for r in rows:  # each hole row's verdict, as coarse_validation writes it
        r["w1_within_10pct"] = posterior_photos.within_histogram_target(r["w1"], r["w1_biharmonic"])
    summary = {
        f"{r['setting']}; {r['method']}": {
            "mean_w1": r["w1"],
            "mean_spectrum": r["spectrum"],
            "mean_log_w1_ratio": 0.1,
            "w1_within_10pct": int(r["w1"] <= 11),
            "holes": 1,
            "mean_seconds": 3.0,
        }
        for r in rows
    }
    chosen = "1/4, noise 0.5 (t0=861); guided:8"
    p = {"summary": summary, "chosen": chosen, "biharmonic": {"mean_w1": 10, "mean_spectrum": 5}}
    lines = readme_photos.render_inpaint_validation({"rows": rows, "provenance": p}).splitlines()
    header = next(line for line in lines if line.startswith("| hole"))
    assert "**1/4, guided, w = 8**" in header and "**one pass" not in header
    hole = next(line for line in lines if line.startswith("| rocket (1, 2)"))
    assert hole.split(" | ")[2:] == ["11.1 / 1.00", "10.9* / 9.00 |"]
    # the biharmonic start's columns differ by their start step, which the header keeps
    rows[0]["setting"] = "biharmonic start, noise 0.25 (t0=755)"
    rows[1]["setting"] = "biharmonic start, noise 0.5 (t0=861)"
    p["summary"] = {
        f"{r['setting']}; {r['method']}": v for r, v in zip(rows, summary.values(), strict=True)
    }
    p["chosen"] = "biharmonic start, noise 0.5 (t0=861); guided:8"
    lines = readme_photos.render_inpaint_validation({"rows": rows, "provenance": p}).splitlines()
    header = next(line for line in lines if line.startswith("| hole"))
    assert "| biharmonic start, t0 = 755, paper |" in header
    assert "| **biharmonic start, t0 = 861, guided, w = 8** |" in header


def test_validation_settings_name_their_start_step() -> None:
    """coarse_validation's settings: a scale or the biharmonic start, at the first step whose
    noise reaches R data sd (`refine_step`): abar <= 1 / (1 + R^2)."""
    import coarse_validation
    import torch

    abar = torch.tensor([1.0, 0.95, 0.81, 0.79, 0.5, 0.49, 0.1])
    assert coarse_validation.setting("off", abar) == ("off", None, None)
    assert coarse_validation.setting("4,0.5", abar) == ("1/4, noise 0.5 (t0=3)", 4, 3)
    assert coarse_validation.setting("biharmonic,1", abar) == (
        "biharmonic start, noise 1 (t0=4)",
        "biharmonic",
        4,
    )


def test_validation_options_are_written_as_json(tmp_path) -> None:
    """coarse_validation's run with --results wrote its summary with the options as given:
    a Path (--results, --run) is not JSON, and the run died after its last hole, with the
    rows printed but no results file (found with photos-unet-64's validation). The options
    must survive json.dumps and a results file round trip."""
    import argparse

    import coarse_validation

    args = argparse.Namespace(
        run=tmp_path / "run", results=tmp_path / "r.json", merge=[tmp_path / "a.out"], seed=0
    )
    opts = coarse_validation.plain_options(args)
    assert json.loads(json.dumps(opts)) == {
        "run": str(tmp_path / "run"),
        "results": str(tmp_path / "r.json"),
        "merge": [str(tmp_path / "a.out")],
        "seed": 0,
    }
