"""Write the head-to-head's results: benchmarks/results/images.json (with provenance) and one
figure of bits/dim against training wall time for both sides (images_curves.png)."""

from __future__ import annotations

import json
import os
import platform
import subprocess
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def provenance(command: str) -> dict:
    """Commit, dirty flag, command, machine; benchmarks/provenance.py's when it exists."""
    try:
        from provenance import provenance as shared  # type: ignore[import-not-found]

        return shared(command)
    except Exception:  # noqa: BLE001 - the shared helper is optional
        pass

    def git(*a: str) -> str:
        return subprocess.run(["git", *a], cwd=ROOT, capture_output=True, text=True).stdout.strip()

    return {
        "commit": git("rev-parse", "HEAD"),
        "dirty": bool(git("status", "--porcelain", "--untracked-files=no")),
        "command": command,
        "machine": f"{platform.node()} {platform.machine()} {os.cpu_count()} CPUs",
        "python": platform.python_version(),
        "utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }


def curve_points(curve: list[dict]) -> list[tuple[float, float, float]]:
    pts = sorted((c["wall_s"], c["bits_per_dim"], c["stderr"]) for c in curve)
    return pts


def plot(result: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 4))
    for key, label in (
        ("lab", f"lab: {result['lab']['preset']}"),
        ("improved_diffusion", "improved-diffusion (L_hybrid, 32 ch)"),
    ):
        pts = curve_points(result[key]["curve"])
        if pts:
            x, y, e = zip(*pts, strict=True)
            ax.errorbar([v / 60 for v in x], y, yerr=e, marker="o", capsize=3, label=label)
    ax.set_xlabel("training wall time (min, one thread each, side by side)")
    ax.set_ylabel("test bits/dim")
    ax.set_title("32 x 32 dead leaves, test bits/dim against training time")
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def write_results(result: dict, out_dir: Path, command: str) -> None:
    out_dir.mkdir(parents=True, exist_ok=True)
    result["provenance"] = provenance(command)
    (out_dir / "images.json").write_text(json.dumps(result, indent=2))
    plot(result, out_dir / "images_curves.png")
