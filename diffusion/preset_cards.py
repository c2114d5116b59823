"""Preset cards: what each preset's network is, how its settings were chosen and what it
reaches, as short lines for the New run page and `difflab presets`.

The measured part comes from diffusion/preset_cards.json, which benchmarks/preset_cards.py
writes from the results files of benchmarks/results/ (a test holds the two in step); the
network line is read off the preset's config. Standard library only.
"""

from __future__ import annotations

import functools
import json
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from diffusion.config import RunConfig

CARDS_FILE = Path(__file__).with_name("preset_cards.json")


@functools.cache
def _cards() -> dict:
    return json.loads(CARDS_FILE.read_text())["cards"]


def card(name: str) -> dict | None:
    """The measured card of preset `name` (parameters, tuned, reaches), or None."""
    return _cards().get(name)


def network_line(cfg: RunConfig) -> str:
    """The network and the diffusion a config trains, in one line."""
    net = cfg.network
    if net.kind == "unet":
        mults = ", ".join(str(m) for m in net.option("mults", (1, 2, 2)))
        attention = net.option("attention", ()) or ()
        what = (
            f"UNet, {net.option('channels', 32)} channels x ({mults}), "
            f"{net.option('res_blocks', 1)} residual block(s) per level, "
            + (f"attention at {', '.join(map(str, attention))} px" if attention else "no attention")
        )
    elif net.kind == "conv":
        what = "the paper's multi-scale convolutional network"
    elif net.kind == "rbf":
        what = f"normalized radial-basis network ({net.n_rbf} units)"
    else:
        hidden = " x ".join(map(str, net.hidden)) or "no hidden layers"
        what = f"{net.kind} network ({hidden}, {net.activation})"
    d = cfg.diffusion
    return f"{what}; {d.kind} diffusion, T = {d.T}, {d.schedule} schedule"


def _measure_line(m: dict) -> str:
    value = f"{m['value']:.3f} {m['unit']}" if m["unit"] != "dB" else f"{m['value']:.2f} dB"
    if m.get("seed_std") is not None and len(m["seeds"]) > 1:
        value += f" ± {m['seed_std']:.3f} across seeds {', '.join(map(str, m['seeds']))}"
    elif m.get("stderr") is not None:
        value += f" ± {m['stderr']:.3f} (stderr)"
    if m.get("bits_per_dim") is not None and m["unit"] != "bits/dim":
        value += f" ({m['bits_per_dim']:.2f} bits/dim)"
    parts = [f"{m['what']}: {value}", m["budget"]]
    parts += [m[key] for key in ("target", "truth") if m.get(key)]
    if m.get("paper"):
        parts.append(f"paper {m['paper']}")
    if m.get("baseline"):
        parts.append(m["baseline"])
    return "; ".join(parts) + f" ({m['source']}, commit {m['commit']})"


def card_lines(name: str, cfg: RunConfig) -> list[str]:
    """The card of preset `name` (config `cfg`) as lines: network, tuning, each measurement."""
    measured = card(name)
    lines = [f"Network: {network_line(cfg)}"]
    if measured is None:
        return [*lines, "Tuned and measured: no record (a quick check or a custom config)."]
    lines[0] += f"; {measured['parameters']:,} parameters"
    lines.append(f"Tuned: {measured['tuned'] or 'not tuned: the settings as written'}")
    if not measured["reaches"]:
        lines.append("Reaches: not measured yet (no results file holds a run of this preset).")
    lines += [f"Reaches: {_measure_line(m)}" for m in measured["reaches"]]
    return lines
