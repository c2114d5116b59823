"""`table1_images.py --trial`: tuning trials of the image rows, scored on the validation
split only (the test split is never loaded), one results record per (row, trial, seed).

    python benchmarks/table1_images.py --rows cifar10,mnist --seeds 0 --budget-min 15 \\
        --trial "network.options.channels=16;network.options.groups=16" --trial "" \\
        --results benchmarks/results/tune_standard.json
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from table1_images import budget_text, row_config, run_seed


def run_trials(
    names: list[str],
    out_dir: Path,
    budget_s: float,
    seeds: list[int],
    trials: list[tuple[str, ...]],
    jobs: int = 1,
    quick: bool = False,
) -> list[dict]:
    """Tuning: every (row, trial, seed), K on the VALIDATION split only (the test split is
    not loaded). A trial is a tuple of config overrides; () is the preset as it stands."""
    from concurrent.futures import ProcessPoolExecutor

    steps = 3 if quick else 4_000
    tasks = [
        (n, out_dir / f"{n}-trial{i}-seed{s}", budget_s, steps, s, quick, None, trial)
        for n in names
        for i, trial in enumerate(trials)
        for s in seeds
    ]
    with ProcessPoolExecutor(max_workers=jobs) as pool:
        done = list(pool.map(run_seed, *zip(*tasks, strict=True)))
    split = {
        "validation": "DataBundle.holdout of each run (its data set's validation split): the "
        "only split a trial reads",
        "test": "not loaded by tuning trials",
    }
    return [
        {"row": t[0], "budget": budget_text(t[0], budget_s), "split": split, **r}
        for t, r in zip(tasks, done, strict=True)
    ]


def trials_main(
    p: argparse.ArgumentParser,
    args: argparse.Namespace,
    names: list[str],
    out: Path,
    seeds: list[int],
    run,
) -> int:
    """The --trial command: every trial checked as a config first, then trained."""
    import provenance

    trials = [tuple(o for o in t.split(";") if o.strip()) for t in args.trial]
    for trial in trials:
        for n in names:
            try:
                row_config(n, 1, 0, tune=trial)
            except Exception as exc:  # noqa: BLE001 - the config's own message
                p.error(f"trial {';'.join(trial)!r}: {exc}")
    budget = args.budget_min * 60
    records = run_trials(names, out, budget, seeds, trials, args.jobs, args.quick)
    if args.results is not None:
        split = records[0]["split"]
        provenance.write_results(args.results, run, records, seeds=seeds, split=split)
    print(json.dumps(records, indent=2))
    return 0
