"""Provenance for benchmark results: every results JSON says where its numbers came from.

A benchmark script calls `start()` once, before any work (it records the commit and whether
the tree was dirty at that moment, the exact command line and the start time), and
`write_results(...)` at the end. The file it writes is

    {"provenance": {commit, dirty, dirty_paths, command, machine, started_at, finished_at,
                    seeds, split, train_seconds, eval_seconds},
     "rows": [{... one row's numbers ..., "seeds": [...], "split": {...},
               "train_seconds": s, "eval_seconds": s}, ...]}

`check_results(doc)` says what is missing; tests/test_results_provenance.py runs it on every
file in benchmarks/results/. Results are written by scripts only, never by hand.
"""

from __future__ import annotations

import json
import os
import platform
import shlex
import subprocess
import sys
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"
# What the scripts write; a change there does not make the source tree dirty.
OUTPUT_PATHS = (
    "benchmarks/results/",
    "docs/figures/",
    "README.md",
    "dashboard/eval_rates.json",
    "diffusion/preset_cards.json",
)
PROVENANCE_KEYS = (
    "commit",
    "dirty",
    "command",
    "machine",
    "started_at",
    "finished_at",
    "seeds",
    "split",
    "train_seconds",
    "eval_seconds",
)
ROW_KEYS = ("seeds", "split", "train_seconds", "eval_seconds")
# what a file pooled from several commands keeps of each (`seed_sources`, one per command)
SEED_SOURCE_KEYS = (
    "commit",
    "dirty",
    "dirty_paths",
    "command",
    "machine",
    "started_at",
    "finished_at",
    "seeds",
)
MACHINE_KEYS = ("cpu_count", "torch", "torch_threads", "device")


def _git(*args: str) -> str | None:
    try:
        out = subprocess.run(
            ["git", *args], cwd=ROOT, capture_output=True, text=True, timeout=30, check=True
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout


def git_state() -> tuple[str | None, bool | None, list[str]]:
    """(commit, dirty, dirty paths): dirty = tracked or untracked (not ignored) files differ
    from the commit, outside the benchmark outputs (OUTPUT_PATHS). None where git is absent."""
    commit = _git("rev-parse", "HEAD")
    status = _git("status", "--porcelain", "--untracked-files=all")
    if commit is None or status is None:
        return None, None, []
    paths = [line[3:] for line in status.splitlines() if line.strip()]
    dirty = [p for p in paths if not p.startswith(OUTPUT_PATHS)]
    return commit.strip(), bool(dirty), dirty[:20]


def _cpu_model() -> str | None:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or None


def load_average() -> list[float] | None:
    """The 1, 5 and 15 minute load averages now (None where the system has none)."""
    return list(os.getloadavg()) if hasattr(os, "getloadavg") else None


def machine(device: str = "cpu", load_at_start: list[float] | None = None) -> dict[str, Any]:
    """Cores, CPU model, torch version and threads, the device the numbers were computed on,
    and the load averages when the run started (`load_at_start`, taken by `start`) and now."""
    import torch

    info: dict[str, Any] = {
        "cpu_count": os.cpu_count(),
        "cpu_model": _cpu_model(),
        "platform": platform.platform(),
        "python": platform.python_version(),
        "torch": torch.__version__,
        "torch_threads": torch.get_num_threads(),
        "device": device,
        "load_average_at_start": load_at_start,
        "load_average_at_end": load_average(),
    }
    if device.startswith("cuda") and torch.cuda.is_available():
        info["gpu"] = torch.cuda.get_device_name(torch.device(device))
    return info


@dataclass
class Run:
    """What is known when a benchmark starts; `write_results` completes it."""

    commit: str | None
    dirty: bool | None
    dirty_paths: list[str]
    command: str
    argv: list[str]
    started_at: str
    extra: dict[str, Any] = field(default_factory=dict)
    load_at_start: list[float] | None = None


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def start(argv: list[str] | None = None) -> Run:
    """Call before any work. `argv`: the script's arguments when called as a function (tests);
    by default the process's own command line, exactly as typed (sys.orig_argv)."""
    commit, dirty, paths = git_state()
    if argv is None:
        full = list(getattr(sys, "orig_argv", [sys.executable, *sys.argv]))
    else:
        full = [Path(sys.argv[0]).name if sys.argv else "python", *argv]
    return Run(commit, dirty, paths, shlex.join(full), full, _now(), load_at_start=load_average())


def _sum(rows: list[dict], key: str) -> float | None:
    vals = [r[key] for r in rows if isinstance(r.get(key), (int, float))]
    return round(sum(vals), 1) if vals else None


def build(
    run: Run,
    rows: list[dict],
    *,
    seeds: list[int],
    split: dict[str, Any],
    device: str = "cpu",
    extra: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """The results document: provenance (train and eval seconds summed over the rows) + rows."""
    missing = [(i, k) for i, r in enumerate(rows) for k in ROW_KEYS if k not in r]
    if missing:
        i, k = missing[0]
        raise ValueError(f"row {i} ({rows[i].get('row', '?')}) has no {k!r}; rows need {ROW_KEYS}")
    prov = {
        "commit": run.commit,
        "dirty": run.dirty,
        "dirty_paths": run.dirty_paths,
        "command": run.command,
        "machine": machine(device, run.load_at_start),
        "started_at": run.started_at,
        "finished_at": _now(),
        "seeds": sorted({int(s) for s in seeds}),
        "split": split,
        "train_seconds": _sum(rows, "train_seconds"),
        "eval_seconds": _sum(rows, "eval_seconds"),
        **(extra or {}),
    }
    return {"provenance": prov, "rows": rows}


def write_results(path: Path | str, run: Run, rows: list[dict], **kwargs: Any) -> dict[str, Any]:
    """Build the document (see `build`) and write it to `path` atomically (tmp + rename)."""
    return write_doc(path, build(run, rows, **kwargs))


def merge(old: dict[str, Any], new: dict[str, Any], key: tuple[str, ...]) -> dict[str, Any]:
    """`new` with the rows of `old` that it does not replace (same values of `key`) kept in
    their old order. Every row of the result carries the provenance of the command that made
    it (`row["provenance"]`), so a file rerun row by row still says where each number came
    from; the document's own provenance is that of the latest command."""

    def ident(r: dict) -> tuple:
        return tuple(r.get(k) for k in key)

    fresh = {ident(r): {**r, "provenance": new["provenance"]} for r in new["rows"]}
    rows = []
    for r in old.get("rows", []):
        if ident(r) in fresh:
            rows.append(fresh.pop(ident(r)))
        else:
            rows.append({**r, "provenance": r.get("provenance", old["provenance"])})
    rows += fresh.values()
    return {"provenance": {**new["provenance"], "merged": True}, "rows": rows}


def write_doc(path: Path | str, doc: dict[str, Any]) -> dict[str, Any]:
    """Write a results document atomically (tmp + rename)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(json.dumps(doc, indent=1, sort_keys=False) + "\n")
    os.replace(tmp, path)
    return doc


def check_results(doc: Any) -> list[str]:
    """What a results document lacks (empty when it has full provenance)."""
    if not isinstance(doc, dict) or "provenance" not in doc or "rows" not in doc:
        return ["not a results document: needs 'provenance' and 'rows'"]
    prov, rows = doc["provenance"], doc["rows"]
    problems = [f"provenance has no {k!r}" for k in PROVENANCE_KEYS if k not in prov]
    mach = prov.get("machine") or {}
    problems += [f"provenance.machine has no {k!r}" for k in MACHINE_KEYS if k not in mach]
    if not isinstance(rows, list) or not rows:
        return [*problems, "no rows"]
    for i, r in enumerate(rows):
        problems += [f"row {i} has no {k!r}" for k in ROW_KEYS if k not in r]
    if not str(prov.get("command", "")).strip():
        problems.append("empty command")
    return problems


def load_results(name: str) -> dict[str, Any]:
    """benchmarks/results/NAME(.json), checked."""
    path = RESULTS / (name if name.endswith(".json") else f"{name}.json")
    doc = json.loads(path.read_text())
    problems = check_results(doc)
    if problems:
        raise ValueError(f"{path}: " + "; ".join(problems))
    return doc
