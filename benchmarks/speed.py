"""Speed and scale benchmark (issue 14): what the lab costs on top of the arithmetic.

    python benchmarks/speed.py --json                 # every section, full size
    python benchmarks/speed.py --json --quick         # under a minute (the test suite runs it)
    python benchmarks/speed.py --json --only engine,queue --out results.json

Prints one JSON object per measurement (name, figure, baseline, ratio, target, op, ok, unit,
detail), then a summary line with provenance; exits 1 if a target is missed (not with
--quick, whose sizes are too small for the ratios to mean anything: it checks the code path).
`--out FILE` also writes every measurement with provenance to FILE.

Sections: engine (training, sampling, posterior and strided chains, the bound), threads
(intra-op threads against the worker's share of cores), queue (submit to RUNNING, a job
through the worker against `difflab train`, the worker's resident memory across training
steps), dashboard (pages at a team's scale, the filter, the dashboard's memory).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:  # run as a script: `python benchmarks/speed.py`
    sys.path.insert(0, str(ROOT))
SECTIONS = ("engine", "threads", "queue", "dashboard")


def row_for_results(row: dict) -> dict:
    """A measurement as a row of a results document (benchmarks/provenance.py)."""
    return {
        **row,
        "seeds": [0],
        "split": {"kind": "none: timings, no data split"},
        "train_seconds": None,
        "eval_seconds": None,
    }


def run_section(name: str, quick: bool, emit, args: argparse.Namespace) -> None:
    if name == "engine":
        from benchmarks.speed_suite import engine_section

        nets = {n.strip() for n in args.nets.split(",")} if args.nets else None
        parts = {p.strip() for p in args.parts.split(",")} if args.parts else None
        engine_section(quick, emit, nets, parts)
    elif name == "threads":
        from benchmarks.speed_suite import threads_section

        threads_section(quick, emit)
    elif name == "queue":
        from benchmarks.speed_queue import queue_section

        queue_section(quick, emit)
    elif name == "dashboard":
        from benchmarks.speed_dashboard import dashboard_section

        pages = {p.strip() for p in args.pages.split(",")} if args.pages else None
        dashboard_section(quick, emit, args.team_dir, pages, args.rounds)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--json", action="store_true", help="one JSON object per line")
    parser.add_argument("--quick", action="store_true", help="tiny sizes: the code path only")
    parser.add_argument("--only", default=",".join(SECTIONS), help="comma-separated sections")
    parser.add_argument("--out", type=Path, help="also write the results here")
    parser.add_argument(
        "--team-dir", type=Path, help="dashboard: a data folder seeded by seed_team.py (kept)"
    )
    parser.add_argument("--nets", help="engine: only these networks (swissroll,heartbeat,conv)")
    parser.add_argument("--parts", help="engine: only these figures (train,sample,bound)")
    parser.add_argument(
        "--pages", help="dashboard: only these pages (runs,runs_filter,gallery,status,...)"
    )
    parser.add_argument(
        "--rounds", type=int, help="dashboard: memory rounds over the pages (0: skip them)"
    )
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    sections = [s.strip() for s in args.only.split(",") if s.strip()]
    unknown = [s for s in sections if s not in SECTIONS]
    if unknown:
        parser.error(f"unknown sections {unknown}; choose from {', '.join(SECTIONS)}")
    if args.pages:
        from benchmarks.speed_dashboard import PAGE_NAMES

        bad = [p for p in args.pages.split(",") if p.strip() not in PAGE_NAMES]
        if bad:
            parser.error(f"unknown pages {bad}; choose from {', '.join(PAGE_NAMES)}")
    if args.parts:
        from benchmarks.speed_suite import ENGINE_PARTS

        bad = [p for p in args.parts.split(",") if p.strip() not in ENGINE_PARTS]
        if bad:
            parser.error(f"unknown engine parts {bad}; choose from {', '.join(ENGINE_PARTS)}")
    if args.rounds is not None and args.rounds < 0:
        parser.error("--rounds must be >= 0")
    from benchmarks import provenance

    # the chains as a long-lived process (a worker) runs them: compiled from the first level
    # where train.compile is set, instead of after their first seconds of eager work
    # (diffusion.settings.compile_chains_after_s); the compilation itself is not timed
    os.environ.setdefault("DIFFLAB_COMPILE_CHAINS_AFTER_S", "0")
    run = provenance.start(argv)
    import torch

    from diffusion.device import flush_denormals

    # the baseline and the lab alike: one thread (the threads section varies it) and the
    # lab's float mode, subnormals flushed to zero (diffusion.device.flush_denormals)
    flush_denormals()
    torch.set_num_threads(1)
    started = time.time()
    results: list[dict] = []

    def save(complete: bool) -> dict:
        """The results document so far (written after every measurement with --out, so that a
        long run stopped half-way keeps what it measured)."""
        missed = [r["name"] for r in results if not r["ok"]]
        extra = {
            "quick": args.quick,
            "sections": sections,
            "missed": missed,
            "complete": complete,
            "seconds": round(time.time() - started, 1),
        }
        rows = [row_for_results(r) for r in results]
        if args.out and rows:
            provenance.write_results(
                args.out, run, rows, seeds=[0], split={"kind": "none"}, extra=extra
            )
        return provenance.build(run, rows, seeds=[0], split={"kind": "none"}, extra=extra)

    def emit(measurement) -> None:
        row = measurement.to_dict()
        results.append(row)
        if args.json:
            print(json.dumps(row), flush=True)
        else:
            mark = "ok  " if row["ok"] else "MISS"
            target = "" if row["target"] is None else f" (target {row['op']} {row['target']})"
            print(f"{mark} {row['name']}: ratio {row['ratio']:.3f}{target}", flush=True)
        save(complete=False)

    for section in sections:
        run_section(section, args.quick, emit, args)
    doc = save(complete=True)
    missed = doc["provenance"]["missed"]
    summary = {"summary": True, "missed": missed, "provenance": doc["provenance"]}
    print(json.dumps(summary) if args.json else f"missed: {missed or 'none'}", flush=True)
    return 1 if missed and not args.quick else 0


if __name__ == "__main__":
    sys.exit(main())
