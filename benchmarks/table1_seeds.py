"""`table1_images.py --merge-seeds`: seeds of a Table 1 image row trained by separate commands
(a long row's seeds, one session at a time) pooled into one results file, each row summarized
again over all of its seeds (`table1_images.summarize`).

The files must agree on each row's budget, estimator and test split, a seed may appear once
per row, and every seed keeps the provenance of the command that trained it
(`provenance.seed_sources`, which the README's provenance line names)."""

from __future__ import annotations

import argparse
import json

from table1_images import ROWS, row_config, summarize

from diffusion.data.splits import train_description

# what must agree between two results files before their seeds are pooled into one row
SAME_ACROSS_FILES = ("budget", "test_K", "unit", "paper_K_bits")
SAME_TEST_SPLIT = ("test", "n_test", "test_seed")


def merge_seeds(docs: list[dict]) -> tuple[list[dict], list[dict]]:
    """Pool the seeds of several results files of this script into one row per row name,
    summarized again over all of them (mean, spread across seeds, standard error).

    Returns (rows, sources): `sources` holds each contributing command's provenance, and every
    per-seed record names its own (`source`, an index into it). Files must agree on each row's
    budget, estimator and test split, and a seed may appear once per row: anything else is a
    ValueError, since a mean over unlike runs would be no row of this table."""
    import provenance

    sources: list[dict] = []
    first: dict[str, dict] = {}
    pooled: dict[str, dict[int, dict]] = {}
    for i, doc in enumerate(docs):
        problems = provenance.check_results(doc)
        if problems:
            raise ValueError(f"file {i + 1}: " + "; ".join(problems))
        prov = doc["provenance"]
        # a file that is itself a merge brings its own sources along
        keys = provenance.SEED_SOURCE_KEYS
        own = prov.get("seed_sources") or [{k: prov.get(k) for k in keys}]
        offset = len(sources)
        sources += own
        for r in doc["rows"]:
            name = r["row"]
            if name not in ROWS:
                raise ValueError(f"file {i + 1}: unknown row {name!r}; rows: {', '.join(ROWS)}")
            ref = first.setdefault(name, r)
            for key in SAME_ACROSS_FILES:
                if r.get(key) != ref.get(key):
                    raise ValueError(
                        f"row {name}: files disagree on {key} ({ref.get(key)!r} against "
                        f"{r.get(key)!r}); only runs of the same setting pool into one row"
                    )
            for key in SAME_TEST_SPLIT:
                if r["split"].get(key) != ref["split"].get(key):
                    raise ValueError(
                        f"row {name}: files were evaluated on different test splits ({key})"
                    )
            seeds = pooled.setdefault(name, {})
            for rec in r["per_seed"]:
                if rec["seed"] in seeds:
                    raise ValueError(
                        f"row {name}: seed {rec['seed']} appears in more than one file"
                    )
                seeds[rec["seed"]] = {**rec, "source": offset + rec.get("source", 0)}
    rows = []
    for name, by_seed in pooled.items():
        ref, seeds = first[name], sorted(by_seed)
        data_name = row_config(name, 1).data.name
        split = {**ref["split"], "train": train_description(data_name, seeds)}
        per_seed = [by_seed[s] for s in seeds]
        rows.append(summarize(name, per_seed, seeds, ref["budget"], split))
    return rows, sources


def merge_main(p: argparse.ArgumentParser, args: argparse.Namespace, run) -> int:
    import provenance

    if args.results is None:
        p.error("--merge-seeds needs --results (the merged file to write)")
    docs = []
    for path in args.merge_seeds:
        try:
            docs.append(json.loads(path.read_text()))
        except (OSError, ValueError) as e:
            p.error(f"cannot read results file {path}: {e}")
    try:
        rows, sources = merge_seeds(docs)
    except ValueError as e:
        p.error(str(e))
    seeds = sorted({s for r in rows for s in r["seeds"]})
    splits = {r["row"]: r["split"] for r in rows}
    provenance.write_results(
        args.results, run, rows, seeds=seeds, split=splits, extra={"seed_sources": sources}
    )
    if args.json:
        print(json.dumps(rows, indent=2))
    return 0
