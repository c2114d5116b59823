"""The renderers of the README's generated tables: one function per results file, each
taking the parsed file (with "_file", its name) and returning the Markdown block, which
ends with the file's provenance (commit, command, machine, times).

benchmarks/readme_tables.py maps README blocks to these and rewrites the README.
"""

from __future__ import annotations

import json
import statistics


def num(x: float | None, nd: int = 3) -> str:
    return "-" if x is None else f"{x:.{nd}f}"


def provenance_line(doc: dict) -> str:
    """Where the file's numbers came from; a merged file (rows rerun by separate commands,
    `table1.py --merge`) gets one sentence per command, naming its rows, and a file whose
    seeds were pooled from several (`table1_images.py --merge-seeds`) one per command, naming
    its seeds."""
    prov = doc["provenance"]
    if prov.get("seed_sources"):
        return _pooled_provenance(doc)
    if not prov.get("merged"):
        return _provenance_sentence(prov, doc["_file"])
    groups: dict[str, tuple[dict, list[str]]] = {}
    for r in doc["rows"]:
        p = r["provenance"]
        groups.setdefault(json.dumps(p, sort_keys=True), (p, []))[1].append(r["row"])
    return " ".join(
        f"Rows {', '.join(names)}: " + _provenance_sentence(p, doc["_file"])
        for p, names in groups.values()
    )


def _pooled_provenance(doc: dict) -> str:
    """One sentence per command that trained some of the seeds, then the pooling command."""
    prov, file = doc["provenance"], doc["_file"]
    seeds: dict[int, set[int]] = {}
    for r in doc["rows"]:
        for rec in r["per_seed"]:
            seeds.setdefault(rec["source"], set()).add(rec["seed"])
    sentences = [
        _provenance_sentence(
            src,
            file,
            lead=f"Seed{'s' if len(seeds[i]) > 1 else ''} "
            f"{', '.join(map(str, sorted(seeds[i])))} trained at",
        )
        for i, src in enumerate(prov["seed_sources"])
        if i in seeds
    ]
    commit = (prov["commit"] or "unknown")[:10]
    return " ".join(
        [
            *sentences,
            f"Pooled into `benchmarks/results/{file}` by `{prov['command']}` (commit "
            f"`{commit}`, {_state(prov)}) on {prov['finished_at']}.",
        ]
    )


def _state(p: dict) -> str:
    return {True: "dirty tree", False: "clean tree", None: "no git"}[p["dirty"]]


def _provenance_sentence(p: dict, file: str, lead: str | None = None) -> str:
    m = p["machine"]
    commit = (p["commit"] or "unknown")[:10]
    lead = lead or f"Generated from `benchmarks/results/{file}`:"
    return (
        f"{lead} commit `{commit}` ({_state(p)}), "
        f"`{p['command']}`, {m['cpu_count']} cores ({m.get('cpu_model') or '?'}), torch "
        f"{m['torch']} with {m['torch_threads']} thread(s), {m['device']}; "
        f"{p['started_at']} to {p['finished_at']}."
    )


MIN_SEEDS = 3  # a target counts as met or short only on the mean over this many seeds


def _met(r: dict) -> str:
    met = r.get("target_met_by_mean", r.get("target_met"))
    if met is None:
        return "-"
    word = "meets" if met else "short of"
    n = len(r["seeds"])
    if n < MIN_SEEDS:
        return f"not established ({n} of {MIN_SEEDS} seeds; {word} it so far)"
    return "**met**" if met else "**short**"


def render_table1(doc: dict) -> str:
    lines = [
        "| row | schedule | test K: mean of seeds | ± std across seeds | ± stderr in run "
        "| K per seed | K - L_null | true log-lik. (test) | target (mean of seeds) | "
        "met | paper K | steps | train s per seed |",
        "|---" * 13 + "|",
    ]
    for r in doc["rows"]:
        per = ", ".join(f"{s['seed']}: {s['K_bits']:.3f}" for s in r["per_seed"])
        train_s = ", ".join(f"{s['train_seconds']:.0f}" for s in r["per_seed"])
        steps = str(r["steps"]) + ("" if r.get("all_steps_done", True) else " (budget hit)")
        lines.append(
            f"| {r['row']} | {r['schedule']} | **{num(r['K_bits'])}** "
            f"| {num(r.get('K_seed_std_bits'))} | {num(r['K_stderr_bits'])} | {per} "
            f"| {num(r['K_minus_Lnull_bits'], 2)} | {num(r['true_ll_bits'])} "
            f"| {r.get('target', '-')} | {_met(r)} | {num(r['paper_K_bits'])} | {steps} "
            f"| {train_s} |"
        )
    units = sorted({f"{r['row']}: {r['unit']}" for r in doc["rows"]})
    n_test = {r["row"]: r["split"]["n_test"] for r in doc["rows"]}
    tests = ", ".join(f"{k} {v}" for k, v in n_test.items())
    return "\n".join(
        [
            *lines,
            "",
            f"Units: {'; '.join(units)}. Test examples per row: {tests} (drawn at a seed no "
            "training or tuning run uses). " + provenance_line(doc),
        ]
    )


def render_table1_images(doc: dict) -> str:
    return "\n".join([*_table1_image_lines(doc), "", provenance_line(doc)])


def render_table1_long(doc: dict) -> str:
    """The longer-budget rows: the same table, then each row's budget and how its K was
    estimated (these rows sample t rather than summing over every t)."""
    notes = [
        f"`{r['row']}`: {r['budget']}; test K {r['test_K']}, on {r['split']['n_test']} "
        f"examples of the test split ({r['split']['test']})."
        for r in doc["rows"]
    ]
    return "\n".join([*_table1_image_lines(doc), "", *notes, "", provenance_line(doc)])


def _table1_image_lines(doc: dict) -> list[str]:
    lines = [
        "| row | test K (bits/pixel): mean of seeds | ± std across seeds | ± stderr in run "
        "| K - L_null | bits/dim | seed: K (steps) | paper K | paper K - L_null |",
        "|---" * 9 + "|",
    ]
    for r in doc["rows"]:
        per = ", ".join(f"{s['seed']}: {s['K_bits']:.3f} ({s['steps']:,})" for s in r["per_seed"])
        lines.append(
            f"| {r['note']} | {num(r['K_bits'])} | {num(r.get('K_seed_std_bits'))} "
            f"| {num(r['K_stderr_bits'])} | **{num(r['K_minus_Lnull_bits'])}** "
            f"| {num(r.get('bits_per_dim'), 2)} | {per} "
            f"| {_paper(r['paper_K_bits'])} | {_paper(r['paper_K_minus_Lnull_bits'])} |"
        )
    return lines


def _paper(x: float | None) -> str:
    return "-" if x is None else str(x)


def render_trials(doc: dict) -> str:
    """`table1_images.py --trial`: K on the validation split of each (row, trial, seed), the
    trial with the highest K per row in bold (the rule the presets were chosen by)."""
    lines = [
        "| row | trial (overrides of the preset) | seed | steps | validation K (bits/pixel) "
        "| ± stderr | train s |",
        "|---" * 7 + "|",
    ]
    best = {}
    for r in doc["rows"]:
        if r["row"] not in best or r["K_validation_bits"] > best[r["row"]]["K_validation_bits"]:
            best[r["row"]] = r
    for r in doc["rows"]:
        k = num(r["K_validation_bits"])
        lines.append(
            f"| {r['row']} | {'; '.join(r['tune']) or 'the preset'} | {r['seed']} "
            f"| {r['steps']:,} | {f'**{k}**' if best[r['row']] is r else k} "
            f"| {num(r['K_validation_stderr_bits'])} | {r['train_seconds']:.0f} |"
        )
    budgets = sorted({f"`{r['row']}`: {r['budget']}" for r in doc["rows"]})
    return "\n".join([*lines, "", *(f"{b}." for b in budgets), "", provenance_line(doc)])


def render_images(doc: dict) -> str:
    """benchmarks/images.py's head to head: bits/dim of both sides at each snapshot (pooled
    over seeds where the file was, `images.py --merge-seeds`)."""
    if doc["provenance"].get("seed_sources"):
        return _render_images_pooled(doc)
    lines = [
        "| side | training time | steps | test bits/dim | ± stderr | t: exact first, then every |",
        "|---" * 6 + "|",
    ]
    for r in sorted(doc["rows"], key=lambda r: (r["side"] != "lab", r["wall_s"])):
        label = f"{r['wall_s'] / 60:.0f} min" + (" (end)" if r["final"] else "")
        bpd = f"**{num(r['bits_per_dim'])}**" if r["final"] else num(r["bits_per_dim"])
        lines.append(
            f"| {r['side']} | {label} | {r['steps']} | {bpd} | {num(r['bits_per_dim_stderr'])} "
            f"| {r.get('t_exact') or 1}, {r['t_stride']} |"
        )
    notes = _one_at_a_time_note(doc["provenance"])
    load = doc["provenance"].get("load_average_during_training")
    if load:  # [[seconds, l1, l5, l15], ...] sampled each minute
        one = [s[1] for s in load]
        mid = min(load, key=lambda s: abs(s[0] - load[-1][0] / 2))
        notes += [
            "",
            f"Load average (1 min) during the trainings: {one[0]:.1f} at the start, "
            f"{mid[1]:.1f} at {mid[0] / 60:.0f} min, {one[-1]:.1f} at the end "
            f"({min(one):.1f} to {max(one):.1f} over {len(one)} samples a minute apart).",
        ]
    return "\n".join([*lines, *notes, "", provenance_line(doc)])


def _one_at_a_time_note(prov: dict) -> list[str]:
    if prov.get("mode") != "one_at_a_time":
        return []
    return [
        "",
        "One at a time: improved-diffusion trained first, then the lab, each alone on the "
        f"machine with {prov['threads_per_side']} threads for the same wall-clock budget.",
    ]


def _render_images_pooled(doc: dict) -> str:
    """The head to head over several seeds: each point's mean, spread and seeds, the paired
    gap at the end seed by seed, and the load average of each seed's session."""
    from images_seeds import final_gaps

    lines = [
        "| side | training time | steps (mean) | test bits/dim: mean of seeds | ± std across "
        "seeds | ± stderr in run | seed: bits/dim (steps) | t: exact first, then every |",
        "|---" * 8 + "|",
    ]
    for r in doc["rows"]:
        label = f"{r['wall_s'] / 60:.0f} min" + (" (end)" if r["final"] else "")
        mean = f"**{num(r['bits_per_dim'])}**" if r["final"] else num(r["bits_per_dim"])
        per = ", ".join(
            f"{rec['seed']}: {rec['bits_per_dim']:.3f} ({rec['steps']:,})" for rec in r["per_seed"]
        )
        lines.append(
            f"| {r['side']} | {label} | {r['steps']:,} | {mean} "
            f"| {num(r['bits_per_dim_seed_std'])} | {num(r['bits_per_dim_stderr'])} | {per} "
            f"| {r.get('t_exact') or 1}, {r['t_stride']} |"
        )
    prov = doc["provenance"]
    notes = _one_at_a_time_note(prov)
    gaps = final_gaps(doc)
    if gaps:
        vals = [g for _, g in gaps]
        mean = statistics.fmean(vals)
        std = statistics.stdev(vals) if len(vals) > 1 else 0.0
        lower = sum(v > 0 for v in vals)
        notes += [
            "",
            "At the end, seed by seed (both sides of a seed trained in one session on one "
            "machine), improved-diffusion's bits/dim minus the lab's: "
            + ", ".join(f"seed {s}: {g:.3f}" for s, g in gaps)
            + f" (mean {mean:.3f} ± {std:.3f} across seeds); the lab lower in {lower} of "
            f"{len(vals)} seeds.",
        ]
    loads = []
    for i, src in enumerate(prov["seed_sources"]):
        one = [s[1] for s in src.get("load_average_during_training") or []]
        if one:
            seeds = ", ".join(map(str, src.get("seeds") or [i]))
            loads.append(f"seed {seeds} {min(one):.1f} to {max(one):.1f}")
    if loads:
        notes += ["", "Load average (1 min) during the trainings: " + "; ".join(loads) + "."]
    return "\n".join([*lines, *notes, "", provenance_line(doc)])


def _part(doc: dict, name: str):
    return next((r for r in doc["rows"] if r["part"] == name), None)


def _test_line(r: dict) -> str:
    sp, seeds = r["split"], ", ".join(map(str, r["seeds"]))
    model = (
        f"model trained here for {r['train_seconds'] / 60:.1f} min (seed {seeds})"
        if r["train_seconds"] > 0
        else f"model: a run trained beforehand (seed {seeds})"
    )
    return f"Test split: {sp['test']}; {model}."


def render_posterior(doc: dict) -> str:
    """benchmarks/posterior.py parts (a) digits denoising, (b) texture inpainting, (c) strided."""
    out: list[str] = []
    if (r := _part(doc, "a_denoise")) is not None:
        a = r["numbers"]
        out += [
            f"(a) Digits denoised at SNR {a['snr']:g} (noise sigma {a['sigma_grey_levels']:.1f} "
            f"grey levels, peak {a['peak']}), {a['images']} test digits, "
            f"{a['samples_per_image']} posterior samples each, T = {a['T']}. PSNR in dB:",
            "",
            "| noisy input | posterior sample | posterior mean (chain from y) "
            "| posterior mean (chain from pi) | scipy Wiener (best window) | mean beats Wiener |",
            "|---" * 6 + "|",
            f"| {num(a['psnr_noisy'], 2)} | {num(a['psnr_posterior_sample_start_observation'], 2)}"
            f" | **{num(a['psnr_posterior_mean_start_observation'], 2)}** "
            f"| {num(a['psnr_posterior_mean_start_prior'], 2)} "
            f"| {num(a['psnr_wiener'], 2)} ({a['wiener_window']} x {a['wiener_window']}) "
            f"| {'yes' if a['posterior_mean_beats_wiener'] else 'no'} |",
            "",
            _test_line(r),
            "",
        ]
    if (r := _part(doc, "b_inpaint")) is not None:
        b = r["numbers"]
        names = {
            "paper": "paper (clamp known pixels)",
            "repaint": f"RePaint (jump {b['repaint_jump_length']}, "
            f"{b['repaint_resample']} resamplings)",
            "biharmonic": "scikit-image biharmonic",
        }
        out += [
            f"(b) Texture inpainting: {b['patches']} test {b['patch']} x {b['patch']} "
            f"{b['texture']} patches, central {b['hole']} x {b['hole']} hidden, "
            f"{b['samples_per_patch']} samples each, T = {b['T']}. Distances of the fill to "
            "the truth (lower is better):",
            "",
            "| method | known pixels unchanged | hist W1 (grey levels) | hist TV "
            "| spectrum (RMS log10 ratio) | RMSE | seconds |",
            "|---" * 7 + "|",
        ]
        for key, label in names.items():
            m = b["methods"][key]
            out.append(
                f"| {label} | {'yes' if m['known_pixels_unchanged'] else '**no**'} "
                f"| {num(m['hist_wasserstein_grey_levels'], 1)} "
                f"| {num(m['hist_total_variation'], 2)} "
                f"| {num(m['spectrum_rms_log10_ratio'], 2)} | {num(m['rmse_to_truth'], 1)} "
                f"| {m['seconds']:.0f} |"
            )
        big = b.get("large_figure")
        if big:
            out += [
                "",
                f"Larger crop ({big['side']} x {big['side']}, {big['hole']} x {big['hole']} "
                f"hidden): spectrum distance {num(big['paper_spectrum_rms_log10_ratio'], 2)} "
                f"(paper's method) against {num(big['biharmonic_spectrum_rms_log10_ratio'], 2)} "
                "(biharmonic).",
            ]
        out += ["", _test_line(r), ""]
    if (r := _part(doc, "c_strided")) is not None:
        cs = r["numbers"]
        out += [
            "(c) Strided sampling on the digits model: K_S of the S-step chain (bits/pixel, "
            f"test digits) and statistics of samples (data: mean {cs[0]['data_mean']:.2f}, std "
            f"{cs[0]['data_std']:.2f} grey levels):",
            "",
            "| S | " + " | ".join(str(c["S"]) for c in cs) + " |",
            "|---" * (len(cs) + 1) + "|",
            "| K_S | " + " | ".join(num(c["K_bits_per_pixel"]) for c in cs) + " |",
            "| ± stderr | " + " | ".join(num(c["K_stderr"]) for c in cs) + " |",
            "| sample mean / std | "
            + " | ".join(f"{c['sample_mean']:.2f} / {c['sample_std']:.2f}" for c in cs)
            + " |",
            "| ms per sample | "
            + " | ".join(f"{1000 * c['seconds_per_sample']:.1f}" for c in cs)
            + " |",
            "",
            _test_line(r),
            "",
        ]
    return "\n".join([*out, provenance_line(doc)])


def render_speed(doc: dict) -> str:
    """benchmarks/speed.py's rows: figure, baseline, ratio against the target (issue 14)."""
    lines = ["| measurement | figure | baseline | ratio | ratio target | met |", "|---" * 6 + "|"]
    for r in doc["rows"]:
        unit = r.get("unit", "s")
        target = "-" if r["target"] is None else f"{r['op']} {r['target']}"
        met = "-" if r["target"] is None else ("yes" if r["ok"] else "**no**")
        ratio = num(r["ratio"])
        if "run_ratios" in r["detail"]:  # repeated: the mean, and the runs' range
            runs = r["detail"]["run_ratios"]
            ratio += f" (mean of {len(runs)} runs: {num(min(runs))} to {num(max(runs))})"
        lines.append(
            f"| {r['name']} | {num(r['figure'])} {unit} | {num(r['baseline'])} {unit} "
            f"| {ratio} | {target} | {met} |"
        )
    what: dict[str, list[str]] = {}
    for r in doc["rows"]:
        if "ratio" in r["detail"]:
            what.setdefault(r["detail"]["ratio"], []).append(f"`{r['name']}`")
    notes = ["Ratios: " + "; ".join(f"{', '.join(n)}: {d}" for d, n in what.items()) + "."]
    for r in doc["rows"]:
        d = r["detail"]
        if "minimal_over_bare" in d:  # report-only floor rows (benchmarks/speed_floor.py)
            notes.append(
                f"`{r['name']}`: the hand-written minimal chain took "
                f"{num(d['minimal_over_bare'])} of the bare forwards' time."
            )
        if "paper_over_bare" in d:
            notes.append(
                f"`{r['name']}`: the bare loop with the paper's loss took "
                f"{num(d['paper_over_bare'])} of the bare loop's time, the engine "
                f"{num(d['engine_over_bare'])}."
            )
        if "rss_at_launch_mib" in d:
            notes.append(
                f"`{r['name']}`: RSS at launch {d['rss_at_launch_mib']} MiB (before any page), "
                f"after the first round {num(r['baseline'], 1)} MiB, peak {num(r['figure'], 1)} "
                f"MiB over {d['rounds']} rounds; the last 10 rounds grew "
                f"{d['last_10_rounds_growth_mib']} MiB."
            )
    load = doc["provenance"]["machine"].get("load_average_at_start")
    if load:
        notes.append(f"Load average at the start: {', '.join(f'{x:.1f}' for x in load)}.")
    return "\n".join([*lines, "", " ".join(notes), "", provenance_line(doc)])


def render_preset_card(doc: dict, name: str = "cifar10-unet") -> str:
    """`difflab presets NAME` as the README's example (its measurement is `doc`'s row, through
    diffusion/preset_cards.json)."""
    from diffusion.preset_cards import card_lines
    from diffusion.presets import PRESETS

    lines = [f"  {line}" for line in card_lines(name, PRESETS[name])]
    return "\n".join(["```", f"$ difflab presets {name}", name, *lines, "```"])
