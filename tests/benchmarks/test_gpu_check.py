"""benchmarks/gpu_check.py at `--tiny` size on the CPU: the code a lent GPU machine runs.

No GPU is lent to the tests, so these check the code path and what it records, not speed.
The broken versions these catch:
- a bf16 row whose network never runs under autocast (its estimate equals fp32's exactly);
- speed-ups that divide the wrong rows (checked against the rows' own numbers);
- one failing row that ends the check (the others must still be measured and written);
- a run cut short that leaves no file (the file must hold the finished rows, `complete`
  false);
- rows that ignore the time budget;
- CIFAR-10 files the lab's own reader would not read as the crops written;
- the shell script failing where the device's tree has no virtual environment;
- a CPU run's numbers rendered into the README as a GPU's.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "benchmarks"))
import gpu_check  # noqa: E402
import readme_gpu  # noqa: E402
import readme_tables  # noqa: E402

import diffusion.model as model_module  # noqa: E402
from diffusion.data.image_files import read_cifar10  # noqa: E402

ROWS = ["unet fp32", "unet bf16", "conv (paper) fp32", "conv (paper) bf16"]
FORMAT_ROWS = ["unet (default format) fp32", "unet (default format) bf16"]


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> tuple[int, dict]:
    out = tmp_path_factory.mktemp("gpu") / "gpu_check.json"
    rc = gpu_check.main(["--tiny", "--out", str(out)])
    return rc, json.loads(out.read_text())


def test_tiny_run_measures_every_row(tiny: tuple[int, dict]) -> None:
    rc, doc = tiny
    assert rc == 0 and doc["provenance"]["complete"] is True
    assert [r["row"] for r in doc["rows"]] == ROWS + FORMAT_ROWS  # eager, fp32 then bf16
    assert [r["channels_last"] for r in doc["rows"]] == [True, True, False, False, False, False]
    for r in doc["rows"]:
        assert r["train_images_per_s"] > 0 and r["bare_images_per_s"] > 0
        assert 0.2 < r["engine_vs_bare"] < 5 and 0.2 < r["sample_vs_forwards"] < 20
        assert r["device"] == "cpu" and r["batch"] == 2 and r["T"] == 10
        if r["precision"] == "bf16":  # autocast ran: the estimate moved, a little
            assert 0 < r["estimate_rel_vs_fp32"] < 3e-2
        else:
            assert r["estimate_rel_vs_fp32"] is None
    assert set(model_module.BF16_DEVICE_TYPES) == {"cuda"}  # restored after --tiny


def test_speedups_divide_the_matching_rows(tiny: tuple[int, dict]) -> None:
    _, doc = tiny
    by = {r["row"]: r for r in doc["rows"]}
    ups = doc["provenance"]["speedups"]
    assert [(u["what"], u["network"], u["setting"]) for u in ups] == [
        ("bf16 / fp32", "unet", "eager"),
        ("bf16 / fp32", "conv (paper)", "eager"),
        ("bf16 / fp32", "unet (default format)", "eager"),
        ("channels-last / default format", "unet", "fp32"),
        ("channels-last / default format", "unet", "bf16"),
    ]
    pairs = [(f"{n} bf16", f"{n} fp32") for n in ("unet", "conv (paper)", "unet (default format)")]
    pairs += [(f"unet {q}", f"unet (default format) {q}") for q in ("fp32", "bf16")]
    for u, (a, b) in zip(ups, pairs, strict=True):
        a, b = by[a], by[b]
        assert u["train"] == pytest.approx(a["train_images_per_s"] / b["train_images_per_s"])
        assert u["sample"] == pytest.approx(a["sample_images_per_s"] / b["sample_images_per_s"])


def test_compiled_rows_follow_the_eager_ones() -> None:
    names = [r.name for r in gpu_check.plan(list(gpu_check.NETS), compiled=True)]
    compiled = ["unet fp32 compiled", "conv (paper) fp32 compiled"]
    assert names == [*ROWS, *compiled, *FORMAT_ROWS, *(n.replace("fp32", "bf16") for n in compiled)]


def test_a_failing_row_is_recorded_and_the_rest_measured(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    real = gpu_check.measure

    def measure(row, *args):
        if row.name == "unet bf16":
            raise RuntimeError("CUDA error: out of memory")
        return real(row, *args)

    monkeypatch.setattr(gpu_check, "measure", measure)
    out = tmp_path / "g.json"
    assert gpu_check.main(["--tiny", "--out", str(out)]) == 1
    rows = json.loads(out.read_text())["rows"]
    assert [r["row"] for r in rows] == ROWS + FORMAT_ROWS
    assert rows[1]["error"] == "RuntimeError: CUDA error: out of memory"
    assert all("train_images_per_s" in r for i, r in enumerate(rows) if i != 1)


def test_a_run_cut_short_keeps_its_finished_rows(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    real = gpu_check.measure

    def measure(row, *args):
        if row.name == "conv (paper) fp32":  # as the shell's timeout would stop it
            raise KeyboardInterrupt
        return real(row, *args)

    monkeypatch.setattr(gpu_check, "measure", measure)
    out = tmp_path / "g.json"
    with pytest.raises(KeyboardInterrupt):
        gpu_check.main(["--tiny", "--out", str(out)])
    doc = json.loads(out.read_text())
    assert [r["row"] for r in doc["rows"]] == ROWS[:2]
    assert doc["provenance"]["complete"] is False
    assert set(model_module.BF16_DEVICE_TYPES) == {"cuda"}


def test_rows_past_the_budget_are_skipped(tmp_path: Path) -> None:
    out = tmp_path / "g.json"
    assert gpu_check.main(["--tiny", "--budget-s", "0", "--out", str(out)]) == 0
    doc = json.loads(out.read_text())
    assert all(r["skipped"].startswith("time budget") for r in doc["rows"])
    assert doc["provenance"]["speedups"] == []


def test_cifar_files_read_back_as_the_crops_written(tmp_path: Path) -> None:
    import skimage.data

    gpu_check.write_cifar_folder(tmp_path, 12, seed=4)
    train, test = read_cifar10(tmp_path, "train"), read_cifar10(tmp_path, "test")
    assert train.shape == (10, 32, 32, 3) and test.shape == (2, 32, 32, 3)
    rng = np.random.default_rng(4)
    astronaut = skimage.data.astronaut()
    y, x = rng.integers(0, astronaut.shape[0] - 32), rng.integers(0, astronaut.shape[1] - 32)
    assert np.array_equal(train[0], astronaut[y : y + 32, x : x + 32])  # HWC as read


def test_the_shell_script_runs_without_a_virtual_environment(tmp_path: Path) -> None:
    """As on the GPU machine: PYTHON names the interpreter, $OUT gets the results file."""
    out = tmp_path / "out"
    out.mkdir()
    env = {**os.environ, "PYTHON": sys.executable, "OUT": str(out)}
    proc = subprocess.run(
        [
            "bash",
            "benchmarks/gpu_check.sh",
            "--tiny",
            "--nets",
            "conv (paper)",
            "--out",
            str(tmp_path / "g.json"),
        ],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "torch " in proc.stdout
    rows = json.loads((tmp_path / "g.json").read_text())["rows"]
    assert [r["row"] for r in rows] == ROWS[2:]


def test_readme_block(tiny: tuple[int, dict], tmp_path: Path) -> None:
    _, doc = tiny
    with pytest.raises(ValueError, match="CPU run"):
        readme_gpu.render_gpu_check({**doc, "_file": "gpu_check.json"})
    prov = doc["provenance"]
    gpu_doc = {
        **doc,
        "_file": "gpu_check.json",
        "provenance": {**prov, "machine": {**prov["machine"], "device": "cuda", "gpu": "H100"}},
        "rows": [*doc["rows"], {**doc["rows"][0], "row": "x", "compiled": True, "error": "E"}],
    }
    text = readme_gpu.render_gpu_check(gpu_doc)
    table = [line for line in text.splitlines() if line.startswith("| ")]
    assert len(table) == 1 + 7  # header and one line per row
    assert "| unet | fp32 | compiled | failed: E |" in text
    assert "bf16 / fp32 (eager)" in text and "GPU: H100." in text
    # no results file yet: the block says what to run
    assert readme_tables.render("gpu_check", tmp_path) == readme_gpu.NOT_RUN
