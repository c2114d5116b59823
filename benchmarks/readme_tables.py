"""Generate the README's (and docs/model-notes.md's) result tables from
benchmarks/results/*.json.

Each table sits between two marker comments in README.md or docs/model-notes.md:

    <!-- generated: table1 (benchmarks/readme_tables.py; do not edit) -->
    ...
    <!-- end generated: table1 -->

    python benchmarks/readme_tables.py           # rewrite the blocks in both documents
    python benchmarks/readme_tables.py --check   # exit 1 (and say which) if any block differs

The renderers, one per results file, are in benchmarks/readme_renderers.py.

tests/test_results_provenance.py fails when the README and the results disagree.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import provenance  # noqa: E402
from readme_gpu import render_gpu_check  # noqa: E402
from readme_photos import render_inpaint_validation, render_posterior_photos  # noqa: E402
from readme_renderers import (  # noqa: E402
    provenance_line,
    render_images,
    render_posterior,
    render_preset_card,
    render_speed,
    render_table1,
    render_table1_images,
    render_table1_long,
    render_trials,
)
from readme_steps import render_image_steps  # noqa: E402

__all__ = ["provenance_line", "render_speed", "render_table1_long"]  # used by the tests

README = provenance.ROOT / "README.md"
DOCUMENTS = (README, provenance.ROOT / "docs" / "model-notes.md")  # the files with blocks
BEGIN = "<!-- generated: {name} (benchmarks/readme_tables.py; do not edit) -->"
END = "<!-- end generated: {name} -->"


TABLES: dict[str, tuple[str, Callable[[dict], str]]] = {
    "speed_engine_toy": ("speed_engine_toy.json", render_speed),
    "speed_dashboard": ("speed_dashboard.json", render_speed),
    "speed_queue": ("speed_queue.json", render_speed),
    "images": ("images.json", render_images),
    "images_alone": ("images_alone.json", render_images),
    "table1": ("table1.json", render_table1),
    "table1_images": ("table1_images.json", render_table1_images),
    "table1_long": ("table1_long.json", render_table1_long),
    "tune_standard": ("tune_standard.json", render_trials),
    "table1_standard": ("table1_standard.json", render_table1_long),
    "preset_card": ("table1_standard.json", render_preset_card),
    "posterior_photos": ("posterior_photos.json", render_posterior_photos),
    "posterior": ("posterior.json", render_posterior),
    "inpaint_validation": ("inpaint_validation.json", render_inpaint_validation),
    "inpaint_validation_64": ("inpaint_validation_64.json", render_inpaint_validation),
    "inpaint_validation_biharmonic": (
        "inpaint_validation_biharmonic.json",
        render_inpaint_validation,
    ),
    "gpu_check": ("gpu_check.json", render_gpu_check),
    "image_steps": ("image_steps.json", render_image_steps),
}
UNTIL_RUN = {"gpu_check"}  # blocks that say what to run while their results file is absent


def render(name: str, results_dir: Path = provenance.RESULTS) -> str:
    file, fn = TABLES[name]
    if name in UNTIL_RUN and not (results_dir / file).exists():
        return fn(None)
    doc = json.loads((results_dir / file).read_text())
    problems = provenance.check_results(doc)
    if problems:
        raise ValueError(f"{file}: " + "; ".join(problems))
    return fn({**doc, "_file": file})


def block_pattern(name: str) -> re.Pattern[str]:
    return re.compile(
        re.escape(BEGIN.format(name=name)) + r"\n(.*?)\n?" + re.escape(END.format(name=name)),
        re.S,
    )


def blocks_in(text: str) -> list[str]:
    """Names of the generated blocks the text holds."""
    return re.findall(r"<!-- generated: (\S+) \(benchmarks/readme_tables.py", text)


def update(text: str, results_dir: Path = provenance.RESULTS) -> tuple[str, list[str]]:
    """(text with every generated block re-rendered, names of the blocks that changed)."""
    changed = []
    for name in blocks_in(text):
        if name not in TABLES:
            raise ValueError(f"README block {name!r} has no renderer; known: {', '.join(TABLES)}")
        pat = block_pattern(name)
        m = pat.search(text)
        if m is None:
            raise ValueError(f"README block {name!r} has no end marker {END.format(name=name)!r}")
        new = render(name, results_dir)
        if m.group(1) != new:
            changed.append(name)
            block = f"{BEGIN.format(name=name)}\n{new}\n{END.format(name=name)}"
            text = text[: m.start()] + block + text[m.end() :]
    return text, changed


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--check", action="store_true", help="only compare; exit 1 on a difference")
    p.add_argument(
        "--readme", type=Path, default=None, help="one document (default: README and the notes)"
    )
    args = p.parse_args(argv)
    status = 0
    for path in [args.readme] if args.readme else DOCUMENTS:
        text = path.read_text()
        new, changed = update(text)
        name = path.name
        if args.check:
            if changed:
                print(f"{name} out of date with the results: {', '.join(changed)}")
                status = 1
            else:
                print(f"{name} tables match the results ({', '.join(blocks_in(text)) or 'none'})")
            continue
        if changed:
            path.write_text(new)
        print(f"{name} updated: {', '.join(changed) or 'nothing'}")
    return status


if __name__ == "__main__":
    sys.exit(main())
