"""`images.py --merge-seeds`: head-to-head runs of separate seeds pooled into one results file.

The broken versions these catch: a merge that pools points by their row name (each seed's
snapshots fall at slightly different wall times, so nothing would pool), one that keeps only
one file's seeds, a population instead of a sample standard deviation, a gap at the end that
pairs the two sides' values in sorted order rather than seed by seed, one that pools runs of
another budget, network, estimator or improved-diffusion setting, one that counts a seed twice,
a README block that shows only the first seed, and a preset card that quotes one seed's value
as the pooled one."""

from __future__ import annotations

import json
import math
import statistics
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "benchmarks"))
import images  # noqa: E402
import images_seeds  # noqa: E402
import preset_cards  # noqa: E402
import provenance  # noqa: E402
import readme_tables  # noqa: E402

SPLIT = {"train": "/d/train", "test": "/d/test", "n_test": 64}


def _row(side: str, wall: float, bpd: float, se: float, steps: int, final: bool, seed: int):
    stride, exact = (25, 10) if final else (100, 5)
    return {
        "row": f"{side} {'final' if final else round(wall)} s",
        "side": side,
        "final": final,
        "steps": steps,
        "wall_s": wall,
        "bits_per_dim": bpd,
        "bits_per_dim_stderr": se,
        "n_test": 64,
        "t_stride": stride,
        "t_exact": exact,
        "seeds": [seed],
        "split": {"test": "/d/test", "first_n_by_name": 64},
        "train_seconds": wall,
        "eval_seconds": 10.0,
    }


def _doc(seed: int, lab: list[float], other: list[float], shift: float = 0.0, **prov) -> dict:
    """One seed's file: curve points at 10 and 20 minutes (give or take `shift` s) and the end;
    `lab`, `other`: bits/dim at the three points."""
    walls = (600 + shift, 1200 + shift, 1800.0)
    rows = []
    for side, vals in (("lab", lab), ("improved-diffusion", other)):
        per = 3000 if side == "lab" else 1100
        for k, (wall, v) in enumerate(zip(walls, vals, strict=True)):
            rows.append(_row(side, wall, v, 0.06 + 0.01 * k, per * (k + 1) + seed, k == 2, seed))
    run = provenance.start(f"images.py --head-to-head --one-at-a-time --seed {seed}".split())
    extra = {
        "budget_s": 1800.0,
        "mode": "one_at_a_time",
        "threads_per_side": 2,
        "load_average_during_training": [[0.0, 0.5 + seed, 0, 0], [60.0, 2.0 + seed, 0, 0]],
        "note": "improved-diffusion trained first",
        "train": "/d/train",
        "lab_preset": "deadleaves-unet",
        "lab_config": {"network": {"channels": 16}},
        "improved_diffusion_settings": {"num_channels": 32, "seed": seed},
        "curve_stride": 100,
        "final_stride": 25,
        "curve_exact_first_steps": 5,
        "final_exact_first_steps": 10,
        **prov,
    }
    return provenance.build(run, rows, seeds=[seed], split=SPLIT, extra=extra)


LAB = {0: [3.0, 2.8, 2.7], 1: [3.2, 2.9, 2.9], 2: [3.1, 3.0, 2.6]}
OTHER = {0: [4.5, 4.0, 3.8], 1: [4.6, 4.1, 3.7], 2: [4.4, 4.0, 4.0]}


def _docs() -> list[dict]:
    return [_doc(s, LAB[s], OTHER[s], shift=7.0 * s) for s in (0, 1, 2)]


def test_points_pool_by_their_place_on_the_curve_with_mean_spread_and_each_seed() -> None:
    rows, extra = images_seeds.merge_seeds(_docs())
    assert [r["row"] for r in rows] == [
        "lab curve 1",
        "lab curve 2",
        "lab final",
        "improved-diffusion curve 1",
        "improved-diffusion curve 2",
        "improved-diffusion final",
    ]
    by = {r["row"]: r for r in rows}
    for side, vals in (("lab", LAB), ("improved-diffusion", OTHER)):
        for k, point in enumerate(("curve 1", "curve 2", "final")):
            r = by[f"{side} {point}"]
            column = [vals[s][k] for s in (0, 1, 2)]
            assert r["seeds"] == [0, 1, 2]
            assert r["bits_per_dim"] == pytest.approx(statistics.mean(column))
            assert r["bits_per_dim_seed_std"] == pytest.approx(statistics.stdev(column))
            se = 0.06 + 0.01 * k  # the same in each seed: their root mean square is itself
            assert r["bits_per_dim_stderr"] == pytest.approx(se)
            assert [rec["bits_per_dim"] for rec in r["per_seed"]] == column
            assert [rec["source"] for rec in r["per_seed"]] == [0, 1, 2]
    assert by["lab curve 1"]["wall_s"] == pytest.approx(600 + 7.0)  # mean of 600, 607, 614
    assert by["lab final"]["steps"] == 9001  # mean of 9000, 9001, 9002
    assert by["lab final"]["t_stride"] == 25 and by["lab curve 1"]["t_stride"] == 100
    assert extra["improved_diffusion_settings"] == {"num_channels": 32}  # the seed dropped
    assert [s["seeds"] for s in extra["seed_sources"]] == [[0], [1], [2]]
    # the gap at the end, seed by seed (sorted pairing would give 1.1, 1.1, 1.1)
    doc = {"provenance": {}, "rows": rows}
    gaps = images_seeds.final_gaps(doc)
    assert [s for s, _ in gaps] == [0, 1, 2]
    assert [g for _, g in gaps] == pytest.approx([1.1, 0.8, 1.4])


def test_a_pooled_file_pools_again_with_a_further_seed() -> None:
    docs = _docs()
    rows01, extra01 = images_seeds.merge_seeds(docs[:2])
    run = provenance.start(["images.py", "--merge-seeds"])
    pooled = provenance.build(run, rows01, seeds=[0, 1], split=SPLIT, extra=extra01)
    again, extra = images_seeds.merge_seeds([pooled, docs[2]])
    at_once, _ = images_seeds.merge_seeds(docs)
    assert again == at_once
    assert [s["seeds"] for s in extra["seed_sources"]] == [[0], [1], [2]]


@pytest.mark.parametrize(
    ("change", "says"),
    [
        ({"budget_s": 900.0}, "budget_s"),
        ({"lab_config": {"network": {"channels": 32}}}, "lab_config"),
        ({"mode": "side_by_side"}, "mode"),
        ({"improved_diffusion_settings": {"num_channels": 64, "seed": 3}}, "improved-diffusion"),
    ],
)
def test_unlike_runs_are_refused(change: dict, says: str) -> None:
    docs = _docs()
    odd = _doc(3, LAB[0], OTHER[0], **change)
    with pytest.raises(ValueError, match=says):
        images_seeds.merge_seeds([docs[0], odd])


def test_a_seed_twice_another_estimator_or_one_file_is_refused() -> None:
    docs = _docs()
    with pytest.raises(ValueError, match="seed 1 appears in more than one file"):
        images_seeds.merge_seeds([docs[0], docs[1], _doc(1, LAB[1], OTHER[1])])
    exact = _doc(3, LAB[0], OTHER[0])
    for r in exact["rows"]:
        if r["final"]:
            r["t_stride"] = 1
    with pytest.raises(ValueError, match="estimator differs"):
        images_seeds.merge_seeds([docs[0], exact])
    with pytest.raises(ValueError, match="at least two"):
        images_seeds.merge_seeds(docs[:1])


def test_merge_command_readme_block_and_preset_card(tmp_path: Path, capsys) -> None:
    paths = []
    for s, doc in enumerate(_docs()):
        paths.append(tmp_path / f"seed{s}.json")
        paths[-1].write_text(json.dumps(doc))
    out = tmp_path / "images_alone.json"
    args = ["--merge-seeds", *map(str, paths), "--results", str(out)]
    assert images.main(args) == 0
    assert (tmp_path / "images_alone_curves.png").stat().st_size > 0  # beside it, not in docs/
    doc = json.loads(out.read_text())
    assert provenance.check_results(doc) == []
    assert doc["provenance"]["seeds"] == [0, 1, 2]
    text = readme_tables.render_images({**doc, "_file": "images_alone.json"})
    end = statistics.mean(LAB[s][2] for s in (0, 1, 2))
    std = statistics.stdev(LAB[s][2] for s in (0, 1, 2))
    assert f"| lab | 30 min (end) | 9,001 | **{end:.3f}** | {std:.3f} | 0.080 |" in text
    assert "| 0: 2.700 (9,000), 1: 2.900 (9,001), 2: 2.600 (9,002) |" in text
    assert "seed 0: 1.100, seed 1: 0.800, seed 2: 1.400 (mean 1.100 ± 0.300" in text
    assert "the lab lower in 3 of 3 seeds" in text
    assert "seed 2 2.5 to 4.0" in text  # each session's own load
    for s in (0, 1, 2):
        assert f"Seed {s} trained at commit" in text and f"--seed {s}`" in text
    assert "Pooled into `benchmarks/results/images_alone.json` by " in text

    (m,) = preset_cards.cards_doc(tmp_path)["cards"]["deadleaves-unet"]["reaches"]
    assert m["value"] == pytest.approx(end) and m["seed_std"] == pytest.approx(std)
    assert m["seeds"] == [0, 1, 2]
    assert m["budget"].endswith("9,000 to 9,002 steps per seed")
    other = statistics.mean(OTHER[s][2] for s in (0, 1, 2))
    assert (
        m["baseline"]
        == f"improved-diffusion {other:.3f} bits/dim (mean of seeds; 3,300 to 3,302 steps)"
    )
    assert math.isfinite(m["stderr"])

    # no --results, or a file that is not there: a clear error, nothing written
    with pytest.raises(SystemExit):
        images.main(["--merge-seeds", *map(str, paths)])
    assert "needs --results" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        images.main(
            [
                "--merge-seeds",
                str(tmp_path / "nope.json"),
                str(paths[0]),
                "--results",
                str(tmp_path / "x.json"),
            ]
        )
    assert "cannot read results file" in capsys.readouterr().err
    assert not (tmp_path / "x.json").exists()
