"""What each preset is, how it was tuned and what it reaches, from the results files:
writes diffusion/preset_cards.json, which the New run page and `difflab presets` show.

    python benchmarks/preset_cards.py            # rewrite diffusion/preset_cards.json
    python benchmarks/preset_cards.py --check    # exit 1 when the shipped file is stale

Every number in a card is read from a file of benchmarks/results/ (written by the benchmark
scripts with their provenance); only the sentences that say how a preset was tuned are written
here, with the document that holds the tuning runs. tests/benchmarks/test_preset_cards.py
holds the shipped file to `cards_doc` of the shipped results.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
for p in (ROOT, ROOT / "benchmarks"):
    if str(p) not in sys.path:
        sys.path.insert(0, str(p))

RESULTS = ROOT / "benchmarks" / "results"
CARDS = ROOT / "diffusion" / "preset_cards.json"

_NOTES = "docs/model-notes.md"
_TOY_TUNING = (
    f"settings chosen on seed 0's validation split at 15 minutes on one thread ({_NOTES}, "
    "'Table 1 settings and results' and 'Networks')"
)
# How each preset's settings were chosen (the runs are in the named documents); presets not
# named here were not tuned: the card says so.
TUNING: dict[str, str] = {
    "swissroll": _TOY_TUNING,
    "swissroll-thin": _TOY_TUNING,
    "heartbeat": _TOY_TUNING,
    "deadleaves": (
        "the official code's network widths, not tuned here; learning rate fitted to the "
        "wall-clock budget (README, 'Reproducing Table 1')"
    ),
    "bark": "the same settings as deadleaves (README, 'Reproducing Table 1')",
    "deadleaves-unet": (
        "schedule, width and mean form chosen on the validation split (dead leaves at seed "
        f"[1, 1]) in 8-minute runs on one thread ({_NOTES}, 'Image networks')"
    ),
    "bark-unet": "the deadleaves-unet settings, not retuned",
    "photos-unet": (
        "the deadleaves-unet network; the posterior chains' settings chosen on validation holes "
        f"in chelsea and rocket ({_NOTES}, 'Guided inpainting', 'The biharmonic start')"
    ),
    "photos-unet-64": (
        "validated against photos-unet on the same holes and not adopted "
        f"({_NOTES}, 'The biharmonic start')"
    ),
}
# The standard data sets' width was chosen by --trial runs (tune_standard.json).
TUNED_BY_TRIALS = {"mnist-unet": "mnist", "cifar10-unet": "cifar10"}

# preset -> (results file, row) of Table 1-style rows (test K across seeds)
K_ROWS: dict[str, list[tuple[str, str]]] = {
    "swissroll": [("table1.json", "swissroll")],
    "swissroll-thin": [("table1.json", "swissroll-thin")],
    "heartbeat": [("table1.json", "heartbeat")],
    "deadleaves": [("table1_images.json", "deadleaves")],
    "bark": [("table1_images.json", "bark")],
    "deadleaves-unet": [("table1_long.json", "deadleaves-64")],
    "bark-unet": [("table1_long.json", "bark-64")],
    "mnist-unet": [("table1_standard.json", "mnist")],
    "cifar10-unet": [("table1_standard.json", "cifar10")],
}
# the head to head against improved-diffusion (the lab's side trains this preset)
HEAD_TO_HEAD = ("images.json", "images_alone.json")
PHOTOS = "posterior_photos.json"


def _load(results_dir: Path, name: str) -> dict | None:
    path = results_dir / name
    return json.loads(path.read_text()) if path.is_file() else None


def _source(name: str, doc: dict) -> dict:
    prov = doc["provenance"]
    return {"source": f"benchmarks/results/{name}", "commit": str(prov.get("commit", ""))[:10]}


def _budget(row: dict) -> str:
    if row.get("budget"):
        return row["budget"]
    steps = {p.get("steps") for p in row.get("per_seed", [])} or {row.get("steps")}
    minutes = [p["train_seconds"] / 60 for p in row.get("per_seed", []) if p.get("train_seconds")]
    text = ", ".join(f"{s:,}" for s in sorted(s for s in steps if s)) + " steps per seed"
    if minutes:
        lo, hi = f"{min(minutes):.0f}", f"{max(minutes):.0f}"
        text += f" ({lo if lo == hi else f'{lo} to {hi}'} min on one thread)"
    return text


def _k_measure(name: str, doc: dict, row: dict) -> dict:
    paper = row.get("paper_K_bits")
    measure = {
        "what": f"test K ({row.get('note') or row['row']})",
        "value": row["K_bits"],
        "seed_std": row.get("K_seed_std_bits"),
        "unit": row["unit"],
        "seeds": row["seeds"],
        "budget": _budget(row),
        "paper": None if paper is None else f"{paper} {row['unit']}",
        **_source(name, doc),
    }
    if row.get("bits_per_dim") is not None:
        measure["bits_per_dim"] = row["bits_per_dim"]
    if row.get("true_ll_bits") is not None:
        measure["truth"] = f"true log-likelihood {row['true_ll_bits']:.3f} {row['unit']}"
    if row.get("target"):
        met = "met" if row.get("target_met_by_mean") else "short"
        measure["target"] = f"target {row['target']}: {met} on the mean of the seeds"
    return measure


def _h2h_measure(name: str, doc: dict) -> dict | None:
    prov = doc["provenance"]
    finals = {r["side"]: r for r in doc["rows"] if r["final"]}
    lab, other = finals.get("lab"), finals.get("improved-diffusion")
    if lab is None:
        return None
    threads = prov.get("threads_per_side", 1)
    how = (
        "each side alone on the machine, improved-diffusion first"
        if prov.get("mode") == "one_at_a_time"
        else "side by side with improved-diffusion"
    )
    seeds = len(lab["seeds"]) > 1  # pooled over seeds (images.py --merge-seeds): the means
    return {
        "what": f"test bits/dim, 32 x 32 dead leaves (first {lab['n_test']} test images)",
        "value": lab["bits_per_dim"],
        "stderr": lab["bits_per_dim_stderr"],
        "seed_std": lab.get("bits_per_dim_seed_std"),
        "unit": "bits/dim",
        "seeds": lab["seeds"],
        "budget": (
            f"{prov['budget_s'] / 60:.0f} min wall on {threads} thread(s), {how}; "
            f"{_steps(lab)} steps" + (" per seed" if seeds else "")
        ),
        "baseline": (
            f"improved-diffusion {other['bits_per_dim']:.3f} bits/dim"
            + (" (mean of seeds; " if seeds else " (")
            + f"{_steps(other)} steps)"
            if other
            else None
        ),
        **_source(name, doc),
    }


def _steps(row: dict) -> str:
    """A final row's step count, or the range of its seeds' where it was pooled."""
    per = [rec["steps"] for rec in row.get("per_seed", [])]
    if len(per) > 1 and min(per) != max(per):
        return f"{min(per):,} to {max(per):,}"
    return f"{row['steps']:,}"


def _photo_measures(doc: dict) -> list[dict]:
    out = []
    for r in doc["rows"]:
        if not r["row"].endswith(" denoise"):
            continue
        w, h = r["size_w_h"]
        out.append(
            {
                "what": f"denoising {r['row'].split()[0]} ({w} x {h}) at sigma {r['sigma']:g}: "
                "PSNR of the posterior mean",
                "value": r["psnr_posterior_mean"],
                "unit": "dB",
                "seeds": r["seeds"],
                "budget": f"{doc['provenance']['train_seconds'] / 60:.0f} min of training",
                "baseline": f"Wiener {r['psnr_wiener']:.2f} dB, non-local means "
                f"{r['psnr_nl_means']:.2f} dB, noisy {r['psnr_noisy']:.2f} dB",
                **_source(PHOTOS, doc),
            }
        )
    return out


def _trials_tuning(doc: dict, row_name: str) -> str:
    """The --trial runs of one row (tune_standard.json): each trial's overrides and its
    validation K; the rule was the higher K."""
    rows = [r for r in doc["rows"] if r["row"] == row_name]
    parts = [
        f"{', '.join(r['tune']) or 'the preset'}: {r['K_validation_bits']:.3f} "
        f"({r['steps']:,} steps)"
        for r in rows
    ]
    first = rows[0]
    return (
        f"by validation K ({first['unit']}, seed {first['seed']}, the higher wins; "
        f"{first['budget']}): {' against '.join(parts)}"
    )


def example_shape(cfg) -> tuple[tuple[int, ...], str]:
    """One example's model-space shape and kind, from the config alone (no data loaded)."""
    name, opts = cfg.data.name, cfg.data.options_dict
    if name == "swissroll":
        return (2,), "points"
    if name == "heartbeat":
        return (20,), "binary"
    size = {"digits": 8, "mnist": 28}.get(name, opts.get("size", opts.get("patch", 32)))
    return (3 if name == "cifar10" else 1, int(size), int(size)), "images"


def parameters(name: str) -> int:
    """The number of trainable parameters of a preset's model (network and learned schedule)."""
    import torch

    from diffusion.model import DiffusionModel
    from diffusion.presets import PRESETS

    cfg = PRESETS[name]
    torch.manual_seed(0)
    model = DiffusionModel(cfg, *example_shape(cfg))
    return sum(p.numel() for p in model.parameters() if p.requires_grad)


def _channels_last_note(doc: dict) -> str | None:
    """The channels-last memory format, which the UNet presets took on after their results
    were measured: what it changes (the speed, from image_steps.json), and what it does not."""
    rows = [r for r in doc["rows"] if r.get("measure") == "channels_last"]
    if not rows:
        return None
    ups = [r["step_speedup"] for r in rows]
    return (
        "the network runs in the channels-last memory format, taken on after the results "
        f"below were measured: the same arithmetic, training steps {min(ups):.2f} to "
        f"{max(ups):.2f} times as fast on the CPU (benchmarks/results/image_steps.json, "
        f"commit {str(doc['provenance'].get('commit', ''))[:10]})"
    )


def cards_doc(results_dir: Path = RESULTS) -> dict:
    """Every non-smoke preset's card: parameters, how it was tuned, what it reaches."""
    from diffusion.presets import PRESETS

    cards = {}
    steps = _load(results_dir, "image_steps.json")
    steps_note = _channels_last_note(steps) if steps else None
    for name in sorted(n for n in PRESETS if not n.endswith("-smoke")):
        reaches = []
        for file, row_name in K_ROWS.get(name, []):
            doc = _load(results_dir, file)
            row = next((r for r in doc["rows"] if r["row"] == row_name), None) if doc else None
            if row is not None:
                reaches.append(_k_measure(file, doc, row))
        if name == "deadleaves-unet":
            for file in HEAD_TO_HEAD:
                doc = _load(results_dir, file)
                measure = _h2h_measure(file, doc) if doc else None
                if measure:
                    reaches.append(measure)
        if name == "photos-unet" and (doc := _load(results_dir, PHOTOS)):
            reaches += _photo_measures(doc)
        tuned = TUNING.get(name)
        if name in TUNED_BY_TRIALS and (doc := _load(results_dir, "tune_standard.json")):
            tuned = _trials_tuning(doc, TUNED_BY_TRIALS[name])
        if dict(PRESETS[name].network.options).get("channels_last") and steps_note:
            tuned = "; ".join(t for t in (tuned, steps_note) if t)
        cards[name] = {"parameters": parameters(name), "tuned": tuned, "reaches": reaches}
    return {"generated_by": "benchmarks/preset_cards.py", "cards": cards}


def _text(doc: dict) -> str:
    return json.dumps(doc, indent=1, sort_keys=True) + "\n"


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--check", action="store_true", help="exit 1 if the shipped file is stale")
    args = p.parse_args(argv)
    text = _text(cards_doc())
    if args.check:
        if not CARDS.is_file() or CARDS.read_text() != text:
            print(f"{CARDS.relative_to(ROOT)} is stale: run benchmarks/preset_cards.py")
            return 1
        print(f"{CARDS.relative_to(ROOT)} matches the results")
        return 0
    CARDS.write_text(text)
    print(f"wrote {CARDS.relative_to(ROOT)} ({len(json.loads(text)['cards'])} presets)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
