"""The README's GPU check block (benchmarks/gpu_check.py's results file, or, until a GPU
machine has run it, what to run)."""

from __future__ import annotations

from readme_renderers import num, provenance_line

NOT_RUN = (
    "Not run on a GPU yet: no GPU machine has been lent to this project's sessions, so the "
    "lab's CUDA paths (bf16 autocast, draws on the GPU, compiled steps and chains on CUDA) have "
    "run only in their CPU forms (`tests/diffusion/test_bf16.py`, `tests/diffusion/test_draws.py`, "
    "`tests/benchmarks/test_gpu_check.py`); `tests/diffusion/test_cuda.py` waits for a GPU. "
    "`bash benchmarks/gpu_prepare.sh` here, then `bash benchmarks/gpu_check.sh` on the GPU "
    "machine (with `.whl/` beside the tree) writes `benchmarks/results/gpu_check.json`, and "
    "`python benchmarks/readme_tables.py` puts its table here."
)


def render_gpu_check(doc: dict | None) -> str:
    """Throughput per network, precision and compile setting, the speed-ups, provenance."""
    if doc is None:
        return NOT_RUN
    machine = doc["provenance"]["machine"]
    if not str(machine["device"]).startswith("cuda"):
        raise ValueError(
            f"{doc['_file']} was measured on {machine['device']!r}: a CPU run (--tiny) checks "
            "the code path, not a GPU's speed, and does not belong in the README"
        )
    lines = [
        "| network | precision | step | training (images/s) | bare loop (images/s) "
        "| engine / bare | sampling, T levels (images/s) | chain / bare forwards "
        "| bf16 estimate vs fp32 | peak GPU memory (GiB) |",
        "|---" * 10 + "|",
    ]
    for r in doc["rows"]:
        step = "compiled" if r["compiled"] else "eager"
        if "error" in r or "skipped" in r:
            why = f"failed: {r['error']}" if "error" in r else f"skipped ({r['skipped']})"
            lines.append(f"| {r['network']} | {r['precision']} | {step} | {why} |" + " |" * 6)
            continue
        if r["compiled"] and not r["step_compiled"]:
            step = "eager (compile fell back: " + "; ".join(r["warnings"]) + ")"
        rel = r["estimate_rel_vs_fp32"]
        lines.append(
            f"| {r['network']} | {r['precision']} | {step} | {num(r['train_images_per_s'], 0)} "
            f"| {num(r['bare_images_per_s'], 0)} | {num(r['engine_vs_bare'], 2)} "
            f"| {num(r['sample_images_per_s'], 1)} | {num(r['sample_vs_forwards'], 2)} "
            f"| {'-' if rel is None else f'{rel:.1e}'} | {num(r['peak_gib'], 2)} |"
        )
    first = next((r for r in doc["rows"] if "batch" in r), None)
    notes = []
    if first:
        notes.append(
            f"Batch {first['batch']} for training, {first['n_sample']} images per chain, "
            f"T = {first['T']}, 3 x 32 x 32."
        )
    ups = doc["provenance"].get("speedups") or []
    if ups:
        notes.append(
            "Speed-ups (training, sampling): "
            + "; ".join(
                f"{u['network']} {u['what']} ({u['setting']}) {num(u['train'], 2)}, "
                f"{num(u['sample'], 2)}"
                for u in ups
            )
            + "."
        )
    if not doc["provenance"].get("complete", True):
        notes.append("The run stopped before its last row (the file holds the rows it finished).")
    gpu = machine.get("gpu")
    if gpu:
        notes.append(f"GPU: {gpu}.")
    return "\n".join([*lines, "", " ".join(notes), "", provenance_line(doc)])
