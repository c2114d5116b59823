"""Preset cards (diffusion/preset_cards.json): each preset's network, tuning and results, as
the results files say, shown by `difflab presets` and the New run page."""

from __future__ import annotations

import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "benchmarks"))
import preset_cards  # noqa: E402

from difflab.cli import main  # noqa: E402
from diffusion import preset_cards as cards  # noqa: E402
from diffusion.presets import PRESETS  # noqa: E402


def _doc(rows: list[dict], **prov) -> dict:
    return {"provenance": {"commit": "abcdef0123456789", **prov}, "rows": rows}


def _k_row(row: str, k: float, **extra) -> dict:
    return {
        "row": row,
        "note": f"{row} note",
        "K_bits": k,
        "K_seed_std_bits": 0.05,
        "unit": "bits/pixel",
        "seeds": [1, 2, 3],
        "budget": "15 min",
        "paper_K_bits": 5.4,
        "bits_per_dim": 3.9,
        **extra,
    }


def test_the_shipped_cards_are_the_results_files() -> None:
    """A number edited by hand in diffusion/preset_cards.json, or results rerun without
    rewriting the cards, fails here (run benchmarks/preset_cards.py)."""
    shipped = json.loads(cards.CARDS_FILE.read_text())
    assert shipped == json.loads(preset_cards._text(preset_cards.cards_doc()))
    assert set(shipped["cards"]) == {n for n in PRESETS if not n.endswith("-smoke")}


def test_a_card_quotes_its_own_row_of_the_results(tmp_path: Path) -> None:
    """The broken versions this catches: the first row of a file taken for every preset (MNIST
    would show CIFAR-10's K), and the tuning read from the wrong data set's trials."""
    (tmp_path / "table1_standard.json").write_text(
        json.dumps(
            _doc(
                [
                    _k_row("cifar10", 6.111, target=">= 6", target_met_by_mean=True),
                    _k_row("mnist", 4.222, target=">= 4.5", target_met_by_mean=False),
                ]
            )
        )
    )
    trials = [
        {"row": r, "tune": [f"w={w}"], "K_validation_bits": k, "steps": 10, "seed": 0}
        | {"unit": "bits/pixel", "budget": "15 min"}
        for r, w, k in (("cifar10", 16, 5.9), ("mnist", 16, 4.61), ("mnist", 32, 4.55))
    ]
    (tmp_path / "tune_standard.json").write_text(json.dumps(_doc(trials)))
    doc = preset_cards.cards_doc(tmp_path)["cards"]
    mnist = doc["mnist-unet"]
    assert [m["value"] for m in mnist["reaches"]] == [4.222]
    assert mnist["reaches"][0]["source"] == "benchmarks/results/table1_standard.json"
    assert mnist["reaches"][0]["commit"] == "abcdef0123"
    assert mnist["reaches"][0]["target"] == "target >= 4.5: short on the mean of the seeds"
    assert doc["cifar10-unet"]["reaches"][0]["target"].endswith(": met on the mean of the seeds")
    assert "w=16: 4.610" in mnist["tuned"] and "w=32: 4.550" in mnist["tuned"]
    assert "5.900" not in mnist["tuned"]
    assert [m["value"] for m in doc["cifar10-unet"]["reaches"]] == [6.111]
    assert doc["deadleaves"]["reaches"] == []  # its file is absent here: nothing made up


def test_the_head_to_head_card_says_how_the_sides_shared_the_machine(tmp_path: Path) -> None:
    def side(name: str, bpd: float, steps: int, final: bool = True) -> dict:
        return {"side": name, "final": final, "steps": steps, "bits_per_dim": bpd}

    rows = [side("lab", 3.4, 1000) | {"bits_per_dim_stderr": 0.07, "n_test": 64, "seeds": [0]}]
    rows += [side("lab", 9.0, 10, final=False), side("improved-diffusion", 5.0, 2000)]
    prov = {"budget_s": 1800, "mode": "one_at_a_time", "threads_per_side": 2}
    (tmp_path / "images_alone.json").write_text(json.dumps(_doc(rows, **prov)))
    (m,) = preset_cards.cards_doc(tmp_path)["cards"]["deadleaves-unet"]["reaches"]
    assert m["value"] == 3.4 and m["stderr"] == 0.07  # the final snapshot, not a curve point
    assert "30 min wall on 2 thread(s), each side alone on the machine" in m["budget"]
    assert m["baseline"] == "improved-diffusion 5.000 bits/dim (2,000 steps)"


def test_parameters_are_the_models_own() -> None:
    """The paper's multi-scale network at 32 x 32 has 45,500 parameters (the paper and the
    issue both quote it): the dead-leaves card must say so."""
    assert preset_cards.parameters("deadleaves") == 45_500
    assert cards.card("deadleaves")["parameters"] == 45_500


def test_card_lines(monkeypatch) -> None:
    fake = {
        "x": {
            "parameters": 1234,
            "tuned": None,
            "reaches": [
                {
                    "what": "test K (row)",
                    "value": 6.3561,
                    "seed_std": 0.0641,
                    "unit": "bits/pixel",
                    "seeds": [1, 2, 3],
                    "bits_per_dim": 3.886,
                    "budget": "15 min",
                    "paper": "5.4 bits/pixel",
                    "source": "benchmarks/results/t.json",
                    "commit": "abc",
                }
            ],
        },
        "y": {"parameters": 5, "tuned": "by hand", "reaches": []},
    }
    monkeypatch.setattr(cards, "_cards", lambda: fake)
    cfg = PRESETS["cifar10-unet"]
    lines = cards.card_lines("x", cfg)
    assert lines[0].startswith("Network: UNet, 16 channels x (1, 2, 2)")
    assert lines[0].endswith("; 1,234 parameters")
    assert lines[1] == "Tuned: not tuned: the settings as written"
    assert lines[2] == (
        "Reaches: test K (row): 6.356 bits/pixel ± 0.064 across seeds 1, 2, 3 (3.89 bits/dim); "
        "15 min; paper 5.4 bits/pixel (benchmarks/results/t.json, commit abc)"
    )
    assert cards.card_lines("y", cfg)[2].startswith("Reaches: not measured yet")
    assert cards.card_lines("nope", cfg)[1].startswith("Tuned and measured: no record")


def test_difflab_presets(capsys) -> None:
    assert main(["presets"]) == 0
    listing = capsys.readouterr().out.splitlines()
    assert len(listing) == len(PRESETS)
    assert any(line.startswith("heartbeat ") and "binomial" in line for line in listing)
    assert main(["presets", "cifar10-unet"]) == 0
    out = capsys.readouterr().out
    row = next(
        r
        for r in json.loads((ROOT / "benchmarks/results/table1_standard.json").read_text())["rows"]
        if r["row"] == "cifar10"
    )
    assert f"{row['K_bits']:.3f} bits/pixel" in out
    assert main(["presets", "cifar11"]) == 2
    assert "no preset 'cifar11'" in capsys.readouterr().err
