"""The README's image step-time block (benchmarks/results/image_steps.json, written by
`benchmarks/images.py --step-times`): each image network's training step against a bare loop,
each UNet in channels-last against the default memory format, and compiled against eager."""

from __future__ import annotations

from readme_renderers import num, provenance_line


def render_image_steps(doc: dict) -> str:
    rows = doc["rows"]
    plain = [r for r in rows if "measure" not in r]  # the lab's step against a bare loop
    fmt = [r for r in rows if r.get("measure") == "channels_last"]
    comp = [r for r in rows if r.get("measure") == "compile"]
    out = [
        "| network | parameters | lab step (s) | bare loop step (s) | bare / lab |",
        "|---" * 5 + "|",
        *(
            f"| {r['network']} | {r['parameters']:,} | {num(r['lab_step_s'])} "
            f"| {num(r['bare_step_s'])} | {num(r['ratio_bare_over_lab'])} |"
            for r in plain
        ),
    ]
    if fmt:
        out += [
            "",
            "| network | default format step (s) | channels-last step (s) | step speed-up "
            "| forward speed-up | first loss, relative change |",
            "|---" * 6 + "|",
            *(
                f"| {r['network'].removesuffix(' channels-last')} | {num(r['contiguous_step_s'])} "
                f"| {num(r['channels_last_step_s'])} | {num(r['step_speedup'])} "
                f"| {num(r['forward_speedup'])} | {r['first_loss_rel_diff']:.1e} |"
                for r in fmt
            ),
        ]
    if comp:
        out += [
            "",
            "| network | compilation (s, empty cache) | eager step (s) | compiled step (s) "
            "| speed-up | pays after (min of training) |",
            "|---" * 6 + "|",
            *(
                f"| {r['network'].removesuffix(' compiled')} | {num(r['compile_s'], 1)} "
                f"| {num(r['eager_step_s'])} | {num(r['compiled_step_s'])} "
                f"| {num(r['step_speedup'])} "
                f"| {'never' if r['break_even_s'] is None else num(r['break_even_s'] / 60, 1)} |"
                for r in comp
            ),
        ]
    draws = [r for r in rows if r.get("measure") == "cpu_draws"]
    if draws:
        out += [
            "",
            "| float64 standard normals from a CPU generator | milliseconds per draw |",
            "|---|---|",
            *(f"| {r['batch']} x 3 x 32 x 32 | {num(r['draw_s'] * 1e3, 2)} |" for r in draws),
        ]
    first = rows[0]
    load = doc["provenance"]["machine"].get("load_average_at_start")
    note = (
        f"Batch {first['batch']}, {first['threads']} thread(s), 32 x 32, {first['reps']} "
        "interleaved pairs per figure, each ratio the median of the pairs' ratios; a speed-up "
        "is the default format's (the eager step's) time over channels-last's (the compiled "
        "step's)."
    )
    if load:
        note += f" Load average at the start: {', '.join(f'{x:.1f}' for x in load)}."
    return "\n".join([*out, "", note, "", provenance_line(doc)])
