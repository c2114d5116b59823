"""`images.py --merge-seeds`: head-to-head runs of separate seeds pooled into one results file.

One seed of the one-at-a-time head to head holds the whole machine for an hour, so its seeds are
trained by separate commands (`--seed S --results SEED_S.json`, one session each) and pooled
here. For each side and each point of the curve (the k-th snapshot by wall time, and the final
one) the pooled row holds the mean over seeds, the spread across seeds (sample standard
deviation), the within-run standard error (root mean square over seeds), and every seed's own
value with the provenance of the command that trained it (`seed_sources`, which the README's
provenance line names, machine included).

Files must agree on everything but the seed: the mode, budget, threads, the lab's preset and
config, improved-diffusion's settings, the data, the test split and the estimator. Each seed may
appear once. Anything else is a ValueError: a mean over unlike runs would be no row of the
table. A pooled file may itself be pooled again with a further seed.
"""

from __future__ import annotations

import math
import statistics
from collections import defaultdict

# what must agree between two files (provenance keys) before their seeds are pooled
SAME_ACROSS_FILES = (
    "mode",
    "budget_s",
    "threads_per_side",
    "lab_preset",
    "lab_config",
    "train",
    "split",
    "curve_stride",
    "final_stride",
    "curve_exact_first_steps",
    "final_exact_first_steps",
)
PER_SEED_KEYS = ("bits_per_dim", "bits_per_dim_stderr", "steps", "wall_s", "eval_seconds")
SAME_PER_POINT = ("n_test", "t_stride", "t_exact")  # the estimator of one point


def _id_settings(prov: dict) -> dict:
    """improved-diffusion's settings without the seed (the one thing that may differ)."""
    return {k: v for k, v in (prov.get("improved_diffusion_settings") or {}).items() if k != "seed"}


def _records(doc: dict, offset: int) -> dict[tuple[str, str], list[dict]]:
    """(side, point) -> per-seed records of one file; point: "curve 1", "curve 2", ..., "final"
    (curve snapshots numbered by wall time, per side). `source` indexes the pooled sources."""
    out: dict[tuple[str, str], list[dict]] = {}
    if doc["provenance"].get("seed_sources"):  # already pooled: its records as they are
        for r in doc["rows"]:
            recs = [{**rec, "source": offset + rec["source"]} for rec in r["per_seed"]]
            out[(r["side"], r["point"])] = [{**rec, **_point(r)} for rec in recs]
        return out
    (seed,) = doc["provenance"]["seeds"]
    by_side: dict[str, list[dict]] = defaultdict(list)
    for r in doc["rows"]:
        by_side[r["side"]].append(r)
    for side, rows in by_side.items():
        curve = sorted((r for r in rows if not r["final"]), key=lambda r: r["wall_s"])
        finals = [r for r in rows if r["final"]]
        if len(finals) != 1:
            raise ValueError(f"seed {seed}: {len(finals)} final rows for {side}, not 1")
        named = [(f"curve {k + 1}", r) for k, r in enumerate(curve)] + [("final", finals[0])]
        for point, r in named:
            rec = {"seed": seed, "source": offset, **{k: r.get(k) for k in PER_SEED_KEYS}}
            out[(side, point)] = [{**rec, **_point(r)}]
    return out


def _point(r: dict) -> dict:
    return {k: r.get(k) for k in SAME_PER_POINT}


def _summarize(side: str, point: str, recs: list[dict], split: dict) -> dict:
    recs = sorted(recs, key=lambda rec: rec["seed"])
    vals = [rec["bits_per_dim"] for rec in recs]
    n = len(vals)
    return {
        "row": f"{side} {point}",
        "side": side,
        "point": point,
        "final": point == "final",
        "seeds": [rec["seed"] for rec in recs],
        "bits_per_dim": statistics.fmean(vals),
        "bits_per_dim_seed_std": statistics.stdev(vals) if n > 1 else None,
        "bits_per_dim_stderr": math.sqrt(sum(rec["bits_per_dim_stderr"] ** 2 for rec in recs) / n),
        "steps": round(sum(rec["steps"] for rec in recs) / n),
        "wall_s": sum(rec["wall_s"] for rec in recs) / n,
        **_point(recs[0]),
        "split": split,
        "train_seconds": sum(rec["wall_s"] for rec in recs),
        "eval_seconds": sum(rec.get("eval_seconds") or 0.0 for rec in recs),
        "per_seed": [
            {k: rec[k] for k in ("seed", "source", *PER_SEED_KEYS) if k in rec} for rec in recs
        ],
    }


def merge_seeds(docs: list[dict]) -> tuple[list[dict], dict]:
    """Pool head-to-head files of single seeds (or already pooled ones) into summary rows.

    Returns (rows, extra): one row per (side, point of the curve), and the provenance fields
    shared by every file plus `seed_sources`, the provenance of each contributing command."""
    import provenance

    if len(docs) < 2:
        raise ValueError("--merge-seeds needs at least two results files")
    sources: list[dict] = []
    pooled: dict[tuple[str, str], list[dict]] = {}
    ref = docs[0]["provenance"]
    for i, doc in enumerate(docs):
        problems = provenance.check_results(doc)
        if problems:
            raise ValueError(f"file {i + 1}: " + "; ".join(problems))
        prov = doc["provenance"]
        for key in SAME_ACROSS_FILES:
            if prov.get(key) != ref.get(key):
                raise ValueError(
                    f"file {i + 1} disagrees with file 1 on {key} ({ref.get(key)!r} against "
                    f"{prov.get(key)!r}); only runs of the same setting pool into one table"
                )
        if _id_settings(prov) != _id_settings(ref):
            raise ValueError(f"file {i + 1}: improved-diffusion's settings differ from file 1's")
        if not prov.get("seed_sources") and len(prov.get("seeds") or []) != 1:
            raise ValueError(f"file {i + 1}: a head-to-head file of one seed, got {prov['seeds']}")
        keys = (*provenance.SEED_SOURCE_KEYS, "load_average_during_training")
        own = prov.get("seed_sources") or [{k: prov.get(k) for k in keys}]
        records = _records(doc, len(sources))
        sources += own
        if pooled and set(records) != set(pooled):
            raise ValueError(
                f"file {i + 1} has the points {sorted(records)}, file 1 {sorted(pooled)}"
            )
        for key, recs in records.items():
            have = pooled.setdefault(key, [])
            seen = {rec["seed"] for rec in have}
            for rec in recs:
                if rec["seed"] in seen:
                    raise ValueError(f"seed {rec['seed']} appears in more than one file")
                if have and _point(rec) != _point(have[0]):
                    raise ValueError(
                        f"{key[0]} {key[1]}: the estimator differs between files "
                        f"({_point(have[0])} against {_point(rec)})"
                    )
                have.append(rec)
    order = {"lab": 0, "improved-diffusion": 1}
    rows = [_summarize(side, point, recs, ref["split"]) for (side, point), recs in pooled.items()]
    rows.sort(key=lambda r: (order.get(r["side"], 2), r["final"], r["wall_s"]))
    shared = {k: ref.get(k) for k in (*SAME_ACROSS_FILES, "note")}
    extra = {
        **shared,
        "improved_diffusion_settings": _id_settings(ref),
        "seed_sources": sources,
    }
    extra.pop("split")  # write_results takes it as its own argument
    return rows, extra


def final_gaps(doc: dict) -> list[tuple[int, float]]:
    """(seed, improved-diffusion's final bits/dim minus the lab's) for each seed both sides
    ran: a paired difference, both sides of a seed trained on the same machine."""
    finals = {r["side"]: r for r in doc["rows"] if r["final"]}
    if "lab" not in finals or "improved-diffusion" not in finals:
        return []
    lab = {rec["seed"]: rec["bits_per_dim"] for rec in finals["lab"].get("per_seed", [])}
    other = {
        rec["seed"]: rec["bits_per_dim"] for rec in finals["improved-diffusion"].get("per_seed", [])
    }
    return [(s, other[s] - lab[s]) for s in sorted(lab) if s in other]


def merge_main(p, args, run) -> int:
    """The --merge-seeds command: read, pool, write the file and its figure."""
    import json
    from pathlib import Path

    import provenance
    from images_h2h import figure_for, how_sides
    from images_report import plot

    if args.results is None:
        p.error("--merge-seeds needs --results (the pooled file to write)")
    docs = []
    for path in args.merge_seeds:
        try:
            docs.append(json.loads(Path(path).read_text()))
        except (OSError, ValueError) as e:
            p.error(f"cannot read results file {path}: {e}")
    try:
        rows, extra = merge_seeds(docs)
    except (ValueError, KeyError) as e:
        p.error(str(e))
    seeds = sorted({s for r in rows for s in r["seeds"]})
    doc = provenance.write_results(
        args.results, run, rows, seeds=seeds, split=docs[0]["provenance"]["split"], extra=extra
    )
    results = Path(args.results)
    how = how_sides(extra["mode"], extra["threads_per_side"])
    figure = figure_for(results)
    plot(rows, extra["lab_preset"], figure, f"{how}; mean of seeds {', '.join(map(str, seeds))}")
    if args.json:
        print(json.dumps(doc, indent=1))
    return 0
