"""`table1_images.py --merge-seeds`: seeds trained by separate commands pooled into one row.

The broken versions these catch: a merge that keeps only the last file's seeds (the mean and
the spread would be those of two seeds, not three), one that pools runs of different budgets
or test splits, one that counts a seed twice, and a README line that loses which command
trained which seed."""

from __future__ import annotations

import json
import statistics
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "benchmarks"))
import provenance  # noqa: E402
import readme_tables  # noqa: E402
import table1_images  # noqa: E402
import table1_seeds  # noqa: E402

ROW = "bark-64"
SPLIT = {
    "train": "texture training data drawn from each run's own seed",
    "validation": "DataBundle.holdout",
    "test": "100 64 x 64 patches of gravel rows 416..511",
    "n_test": 100,
    "test_seed": 7,
}


def _seed(seed: int, k: float, stderr: float, steps: int) -> dict:
    return {
        "seed": seed,
        "steps": steps,
        "K_bits": k,
        "K_stderr_bits": stderr,
        "K_minus_Lnull_bits": k + 2.0,
        "Lnull_bits": -2.0,
        "bits_per_dim": 5.0 - k,
        "unit": "bits/pixel",
        "train_seconds": 3600.0,
        "eval_seconds": 200.0,
    }


def _doc(records: list[dict], command: str, budget_min: float = 60) -> dict:
    seeds = [r["seed"] for r in records]
    budget = table1_images.budget_text(ROW, budget_min * 60)
    row = table1_images.summarize(ROW, records, seeds, budget, SPLIT)
    run = provenance.start(command.split())
    return provenance.build(run, [row], seeds=seeds, split={ROW: SPLIT})


def test_pooled_seeds_are_summarized_again_over_all_of_them(tmp_path: Path) -> None:
    a = _doc([_seed(1, 5.0, 0.03, 1800)], "t1 --seeds 1")
    b = _doc([_seed(0, 2.0, 0.04, 1900), _seed(2, 4.0, 0.05, 2000)], "t1 --seeds 0,2")
    (row,), sources = table1_seeds.merge_seeds([a, b])
    assert row["seeds"] == [0, 1, 2]
    assert row["K_bits"] == pytest.approx(11 / 3, abs=1e-12)
    assert row["K_seed_std_bits"] == pytest.approx(statistics.stdev([5.0, 2.0, 4.0]), abs=1e-12)
    assert row["K_stderr_bits"] == pytest.approx(((0.03**2 + 0.04**2 + 0.05**2) / 3) ** 0.5)
    assert row["steps"] == 1900 and row["train_seconds"] == 3 * 3600.0
    assert row["split"]["train"].endswith("seed (0, 1, 2)")
    assert [r["source"] for r in row["per_seed"]] == [1, 0, 1]
    assert [s["command"].split()[-1] for s in sources] == ["1", "0,2"]

    # a merged file merged again keeps every seed's own command
    c = _doc([_seed(3, 3.0, 0.02, 1700)], "t1 --seeds 3")
    ab = provenance.build(provenance.start(["merge"]), [row], seeds=[0, 1, 2], split={ROW: SPLIT})
    ab["provenance"]["seed_sources"] = sources
    (row2,), sources2 = table1_seeds.merge_seeds([ab, c])
    # (a command is recorded after the program's name)
    by_seed = {
        r["seed"]: sources2[r["source"]]["command"].split(" ", 1)[1] for r in row2["per_seed"]
    }
    assert by_seed == {
        0: "t1 --seeds 0,2",
        1: "t1 --seeds 1",
        2: "t1 --seeds 0,2",
        3: "t1 --seeds 3",
    }


def test_unlike_runs_are_refused() -> None:
    a = _doc([_seed(1, 5.0, 0.03, 1800)], "t1 --seeds 1")
    with pytest.raises(ValueError, match="seed 1 appears in more than one file"):
        table1_seeds.merge_seeds([a, _doc([_seed(1, 4.0, 0.03, 1800)], "again")])
    with pytest.raises(ValueError, match="disagree on budget"):
        table1_seeds.merge_seeds([a, _doc([_seed(2, 4.0, 0.03, 900)], "x", budget_min=30)])
    other = _doc([_seed(2, 4.0, 0.03, 1800)], "x")
    other["rows"][0]["split"] = {**SPLIT, "test_seed": 8}
    with pytest.raises(ValueError, match="different test splits"):
        table1_seeds.merge_seeds([a, other])
    with pytest.raises(ValueError, match="file 2: not a results document"):
        table1_seeds.merge_seeds([a, {"rows": []}])


def test_merge_command_writes_a_checked_file_and_the_readme_names_each_command(
    tmp_path: Path, capsys
) -> None:
    a, b = tmp_path / "a.json", tmp_path / "b.json"
    a.write_text(json.dumps(_doc([_seed(1, 5.0, 0.03, 1800)], "t1 --seeds 1")))
    b.write_text(
        json.dumps(_doc([_seed(0, 2.0, 0.04, 1900), _seed(2, 4.0, 0.05, 2000)], "t1 --seeds 0,2"))
    )
    out = tmp_path / "long.json"
    assert table1_images.main(["--merge-seeds", str(a), str(b), "--results", str(out)]) == 0
    doc = json.loads(out.read_text())
    assert provenance.check_results(doc) == []
    assert doc["provenance"]["seeds"] == [0, 1, 2]
    text = readme_tables.render_table1_long({**doc, "_file": "long.json"})
    assert "| 3.667 | 1.528 |" in text
    assert "| 0: 2.000 (1,900), 1: 5.000 (1,800), 2: 4.000 (2,000) |" in text  # each seed's own
    assert "Seed 1 trained at commit" in text and " t1 --seeds 1`" in text
    assert "Seeds 0, 2 trained at commit" in text and " t1 --seeds 0,2`" in text
    assert "Pooled into `benchmarks/results/long.json` by " in text

    # a missing file or no --results: a clear error, nothing written
    with pytest.raises(SystemExit):
        table1_images.main(["--merge-seeds", str(tmp_path / "nope.json"), "--results", str(out)])
    assert "cannot read results file" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        table1_images.main(["--merge-seeds", str(a)])
    assert "needs --results" in capsys.readouterr().err
