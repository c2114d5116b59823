"""The README's and docs' generated tables of the photos benchmarks: the photos part of
benchmarks/posterior.py (posterior_photos.json) and the choice of the inpainting chain on the
validation photos (benchmarks/coarse_validation.py, inpaint_validation.json).

benchmarks/readme_tables.py maps the blocks to these; the other renderers are in
benchmarks/readme_renderers.py.
"""

from __future__ import annotations

import re

from readme_renderers import num, provenance_line


def _training_threads(train: dict) -> str:
    """', on N CPU threads' where the results record it (older ones trained on one)."""
    n = train.get("threads")
    return f", on {n} CPU thread{'s' if n != 1 else ''}" if n else ""


def render_posterior_photos(doc: dict) -> str:
    yes = {True: "**met**", False: "**short**"}
    den = [
        "| photo (W x H) | noisy | posterior mean (one read-out) | mean of chain samples "
        "| one sample | Wiener (window) | non-local means | beats Wiener | kept steps "
        "| seconds (read-out, chain) |",
        "|---" * 10 + "|",
    ]
    inp = [
        "| photo (chain) | spectrum: model | spectrum: biharmonic | hist W1: model "
        "| hist W1: biharmonic | spectrum beats | W1 within 10% | window | seconds |",
        "|---" * 9 + "|",
    ]
    for r in doc["rows"]:
        name = r["row"].split()[0]
        size = " x ".join(map(str, r["size_w_h"]))
        if r["row"].endswith("denoise"):
            if "psnr_samples_mean" in r:  # the read-out and the samples' average
                means = (r["psnr_posterior_mean"], r["psnr_samples_mean"])
                secs = f"{r['posterior_mean_seconds']:.0f}, {r['seconds']:.0f}"
            else:  # older files: the samples' average only
                means, secs = (None, r["psnr_posterior_mean"]), f"-, {r['seconds']:.0f}"
            den.append(
                f"| {name} ({size}) | {num(r['psnr_noisy'], 2)} "
                f"| {num(means[0], 2)} | {num(means[1], 2)} "
                f"| {num(r['psnr_posterior_sample'], 2)} | {num(r['psnr_wiener'], 2)} "
                f"({r['wiener_window']}) | {num(r['psnr_nl_means'], 2)} "
                f"| {yes[r['posterior_mean_beats_wiener']]} | {r['steps_run']} "
                f"| {secs} |"
            )
        else:
            b = r["biharmonic"]
            for method in inpaint_methods(r):
                m, pre = r[method], "" if method == "paper" else f"{method}_"
                label = method_label(method, m)
                plan = m.get("plan", r["plan"])  # each chain's own (older rows: one per row)
                inp.append(
                    f"| {name} ({label}) | {num(m['spectrum_rms_log10_ratio'], 2)} "
                    f"| {num(b['spectrum_rms_log10_ratio'], 2)} "
                    f"| {num(m['hist_wasserstein_grey_levels'], 1)} "
                    f"| {num(b['hist_wasserstein_grey_levels'], 1)} "
                    f"| {yes[r[pre + 'beats_biharmonic_on_spectrum']]} "
                    f"| {yes[r[pre + 'histogram_within_10pct']]} "
                    f"| {plan.split(':')[0]}{_coarse_words(plan)} "
                    f"| {m['seconds']:.0f} |"
                )
    model = doc["provenance"].get("model") or {}
    train = model.get("training") or {}
    return "\n".join(
        [
            "Denoising at sigma = 25 (PSNR in dB, peak 255):",
            "",
            *den,
            "",
            "Inpainting a central 64 x 64 hole (distances of the fill to the truth, lower is "
            "better):",
            "",
            *inp,
            "",
            f"Model: the {model.get('preset', 'photos')} preset at checkpoint step "
            f"{model.get('checkpoint_step')} "
            f"({train.get('train_seconds_total', 0) / 60:.0f} minutes of training in all"
            f"{_training_threads(train)}). " + provenance_line(doc),
        ]
    )


def inpaint_methods(row: dict) -> list[str]:
    """The inpainting chains of an inpainting row, in the order they ran (`method_spec`
    names; biharmonic, the baseline, is not one)."""
    return [
        k
        for k, v in row.items()
        if isinstance(v, dict) and "rmse_to_truth" in v and k != "biharmonic"
    ]


def method_label(method: str, entry: dict | None = None) -> str:
    """How the README names a chain: paper, RePaint, guided (w = W: the weight the row
    recorded, else the one its name gives, else "default" for results from before weights
    were recorded), and a chain's own coarse-to-fine setting ('@off': ", one pass")."""
    spec, _, coarse = method.partition("@")
    name, _, weight = spec.partition(":")
    first, _, t0 = coarse.partition(",")
    if first == "biharmonic":
        own = ", biharmonic start" + (f" from level {t0}" if t0 else "")
    elif first.isdigit():
        own = f", coarse-to-fine 1/{first}" + (f" from level {t0}" if t0 else "")
    else:
        own = {"off": ", one pass", "auto": ", coarse auto"}.get(
            coarse, f", coarse {coarse}" if coarse else ""
        )
    if name == "guided":
        recorded = (entry or {}).get("guidance")
        return f"guided, w = {recorded if recorded is not None else weight or 'default'}{own}"
    return {"repaint": "RePaint"}.get(name, name) + own


def _coarse_words(plan: str) -> str:
    """', coarse-to-fine 1/4 from level 400' when the plan says the fill went coarse-to-fine,
    ', biharmonic start from level 400' when it started from the biharmonic fill."""
    m = re.search(r"coarse-to-fine at 1/(\d+), refined from level (\d+)", plan)
    if m:
        return f", coarse-to-fine 1/{m[1]} from level {m[2]}"
    m = re.search(r"started from the biharmonic fill.*?diffused forward to level (\d+)", plan)
    return f", biharmonic start from level {m[1]}" if m else ""


def _setting_words(label: str) -> str:
    """A setting of coarse_validation as the table's column names it: "one pass", "1/4", or
    "biharmonic start, t0 = 861" (the start step is what varies there)."""
    if label == "off":
        return "one pass"
    m = re.fullmatch(r"biharmonic start, noise .* \(t0=(\d+)\)", label)
    return f"biharmonic start, t0 = {m[1]}" if m else label.split(",")[0]


def render_inpaint_validation(doc: dict) -> str:
    """benchmarks/coarse_validation.py's hole table: histogram W1 / spectrum distance of each
    (setting, chain)'s fill per hole beside biharmonic's (* the row's verdict on the histogram
    target, W1 within 10% of biharmonic's),
    then the summary rows the chooser reads and the chosen combination in bold."""
    p = doc["provenance"]
    summary, chosen = p["summary"], p["chosen"]
    keys = list(summary)
    by_hole: dict[tuple, dict] = {}
    for r in doc["rows"]:
        by_hole.setdefault((r["photo"], tuple(r["at_y_x"])), {})[
            f"{r['setting']}; {r['method']}"
        ] = r

    def head(key: str) -> str:
        setting, _, method = key.partition("; ")
        words = f"{_setting_words(setting)}, {method_label(method)}"
        return f"**{words}**" if key == chosen else words

    def cell(w1: float, spectrum: float, star: bool = False) -> str:
        return f"{w1:.1f}{'*' if star else ''} / {spectrum:.2f}"

    lines = [
        "| hole (photo, y, x) | biharmonic | " + " | ".join(head(k) for k in keys) + " |",
        "|---" * (len(keys) + 2) + "|",
    ]
    for (photo, (y, x)), got in by_hole.items():
        cells = [cell(got[k]["w1"], got[k]["spectrum"], got[k]["w1_within_10pct"]) for k in keys]
        any_row = got[keys[0]]  # biharmonic's distances are the hole's, the same in every row
        bih = cell(any_row["w1_biharmonic"], any_row["spectrum_biharmonic"])
        lines.append(f"| {photo} ({y}, {x}) | {bih} | " + " | ".join(cells) + " |")
    b = p["biharmonic"]
    rows = {
        "**mean**": [cell(summary[k]["mean_w1"], summary[k]["mean_spectrum"]) for k in keys],
        "mean log(W1 / biharmonic W1)": [f"{summary[k]['mean_log_w1_ratio']:.2f}" for k in keys],
        "W1 within 10% of biharmonic": [
            f"{summary[k]['w1_within_10pct']} of {summary[k]['holes']}" for k in keys
        ],
        "seconds per hole": [f"{summary[k]['mean_seconds']:.0f}" for k in keys],
    }
    for name, cells in rows.items():
        bih = cell(b["mean_w1"], b["mean_spectrum"]) if name == "**mean**" else ""
        lines.append(f"| {name} | {bih} | " + " | ".join(cells) + " |")
    return "\n".join(
        [
            "Histogram W1 / spectrum distance of each fill to the truth (lower is better; * W1 "
            "within 10% of biharmonic's; the chosen combination in bold, the lowest mean log "
            "ratio):",
            "",
            *lines,
            "",
            provenance_line(doc) + _sources(p.get("sources") or []),
        ]
    )


def _sources(sources: list[dict]) -> str:
    """' Hole rows from: PATH (run at commit C), ...' for a merge of runs' outputs."""
    if not sources:
        return ""
    named = [
        f"`{s['path']}`" + (f" (run at commit `{s['commit'][:10]}`)" if s.get("commit") else "")
        for s in sources
    ]
    return " Hole rows from: " + ", ".join(named) + "."
