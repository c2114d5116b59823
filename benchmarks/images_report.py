"""The head to head's figure: test bits/dim against training wall time, both sides, with
standard errors (Pillow only, like diffusion.images.plots)."""

from __future__ import annotations

from pathlib import Path

from PIL import Image, ImageDraw

W, H, LEFT, RIGHT, TOP, BOTTOM = 720, 460, 70, 20, 40, 60
COLOURS = {"lab": (31, 119, 180), "improved-diffusion": (214, 39, 40)}


def _ticks(lo: float, hi: float, n: int = 5) -> list[float]:
    step = (hi - lo) / n
    return [lo + i * step for i in range(n + 1)]


def _bar(r: dict) -> float:
    """The error bar: the spread across seeds where there are several, else the standard
    error of the one run."""
    std = r.get("bits_per_dim_seed_std")
    return std if std is not None else r["bits_per_dim_stderr"]


def plot(
    rows: list[dict], preset: str, path: Path, how: str = "one thread each, side by side"
) -> None:
    """One line per side: (wall minutes, bits/dim +- standard error); `how` the sides shared
    the machine. Rows pooled over seeds (`per_seed`) plot their mean +- the spread across
    seeds, and each seed's own value as a hollow circle."""
    pts = [(r["side"], r["wall_s"] / 60, r["bits_per_dim"], _bar(r)) for r in rows]
    seeds = [
        (r["side"], rec["wall_s"] / 60, rec["bits_per_dim"])
        for r in rows
        for rec in r.get("per_seed", [])
    ]
    xmax = max([p[1] for p in pts] + [p[1] for p in seeds]) * 1.05
    ylo = min([p[2] - p[3] for p in pts] + [p[2] for p in seeds])
    yhi = max([p[2] + p[3] for p in pts] + [p[2] for p in seeds])
    pad = 0.1 * (yhi - ylo or 1.0)
    ylo, yhi = ylo - pad, yhi + pad
    img = Image.new("RGB", (W, H), "white")
    d = ImageDraw.Draw(img)

    def xy(x: float, y: float) -> tuple[float, float]:
        return (
            LEFT + x / xmax * (W - LEFT - RIGHT),
            TOP + (yhi - y) / (yhi - ylo) * (H - TOP - BOTTOM),
        )

    d.rectangle([LEFT, TOP, W - RIGHT, H - BOTTOM], outline="black")
    for x in _ticks(0, xmax):
        px, py = xy(x, ylo)
        d.line([px, py, px, py + 5], fill="black")
        d.text((px - 10, py + 8), f"{x:.0f}", fill="black")
    for y in _ticks(ylo, yhi):
        px, py = xy(0, y)
        d.line([px - 5, py, px, py], fill="black")
        d.text((px - 45, py - 6), f"{y:.2f}", fill="black")
    d.text((LEFT, H - 42), "training wall time (min)", fill="black")
    d.text((LEFT, H - 26), how, fill="black")
    d.text((5, TOP - 30), "test bits/dim, 32 x 32 dead leaves (lower is better)", fill="black")
    for k, side in enumerate(("lab", "improved-diffusion")):
        mine = sorted((p for p in pts if p[0] == side), key=lambda p: p[1])
        c = COLOURS[side]
        line = [xy(p[1], p[2]) for p in mine]
        if len(line) > 1:
            d.line(line, fill=c, width=2)
        for p in mine:
            x0, y0 = xy(p[1], p[2] - p[3])
            _, y1 = xy(p[1], p[2] + p[3])
            d.line([x0, y0, x0, y1], fill=c, width=1)
            cx, cy = xy(p[1], p[2])
            d.ellipse([cx - 4, cy - 4, cx + 4, cy + 4], fill=c)
        for p in seeds:
            if p[0] == side:
                cx, cy = xy(p[1], p[2])
                d.ellipse([cx - 3, cy - 3, cx + 3, cy + 3], outline=c)
        label = f"lab: {preset}" if side == "lab" else "improved-diffusion (L_hybrid, 32 ch)"
        d.text((W - 300, TOP + 10 + 16 * k), "---- " + label, fill=c)
    path.parent.mkdir(parents=True, exist_ok=True)
    img.save(path)
