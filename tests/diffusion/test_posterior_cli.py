"""`difflab denoise | inpaint | sample --steps`: outputs, and clear errors that write nothing."""

from __future__ import annotations

import io
import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from difflab.cli import main
from diffusion.presets import PRESETS
from diffusion.training.train import train


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("runs")
    out = {}
    for name in ("digits-smoke", "heartbeat-smoke"):
        cfg = PRESETS[name].with_overrides(
            ["train.steps=2", "train.eval_examples=8", "train.gallery_size=2"]
        )
        train(cfg, root / name, device="cpu")
        out[name] = root / name
    return out


def write_png(path: Path, arr: np.ndarray) -> Path:
    Image.fromarray(arr).save(path)
    return path


@pytest.fixture
def files(tmp_path: Path) -> dict[str, Path]:
    digit = (np.arange(64).reshape(8, 8) * 4).astype(np.uint8)
    mask = np.full((8, 8), 255, np.uint8)
    mask[2:6, 2:6] = 0
    buf = io.BytesIO()
    Image.fromarray(np.random.default_rng(0).integers(0, 256, (8, 8), np.uint8)).save(
        buf, format="PNG"
    )
    (tmp_path / "trunc.png").write_bytes(buf.getvalue()[:70])
    return {
        "digit": write_png(tmp_path / "digit.png", digit),
        "mask": write_png(tmp_path / "mask.png", mask),
        "full": write_png(tmp_path / "full.png", np.full((8, 8), 255, np.uint8)),
        "big": write_png(tmp_path / "big.png", np.zeros((9, 8), np.uint8)),
        "rgb": write_png(tmp_path / "rgb.png", np.zeros((8, 8, 3), np.uint8)),
        "trunc": tmp_path / "trunc.png",
    }


def test_denoise_and_inpaint_write_figures(runs, files, tmp_path: Path) -> None:
    run = str(runs["digits-smoke"])
    out = tmp_path / "den.png"
    assert (
        main(
            [
                "denoise",
                run,
                str(files["digit"]),
                "--sigma",
                "40",
                "--add-noise",
                "-n",
                "3",
                "--out",
                str(out),
            ]
        )
        == 0
    )
    # input, 3 samples, their mean, the read-out mean, std: seven 8 x 8 panels, 1-pixel borders
    assert np.asarray(Image.open(out)).shape == (8 + 2, 7 * 9 + 1)
    for method in ("paper", "repaint", "guided"):
        out = tmp_path / f"inp-{method}.npz"
        assert (
            main(
                [
                    "inpaint",
                    run,
                    str(files["digit"]),
                    "--mask",
                    str(files["mask"]),
                    "--method",
                    method,
                    "-n",
                    "2",
                    "--steps",
                    "10",
                    "--out",
                    str(out),
                ]
            )
            == 0
        )
        arrays = np.load(out)
        assert arrays["samples"].shape == (2, 8, 8)
        known = arrays["mask"]
        assert np.array_equal(
            arrays["samples"][:, known],
            np.broadcast_to(arrays["observed"][known], (2, known.sum())),
        )
    # another size: the conv net is fully convolutional, so it runs at the image's own size
    out = tmp_path / "big.npz"
    argv = ["denoise", run, str(files["big"]), "--sigma", "5", "-n", "2", "--steps", "3"]
    assert main([*argv, "--start", "level", "--out", str(out)]) == 0
    with np.load(out) as arrays:
        assert arrays["samples"].shape == (2, 9, 8)
        # E[x | y] read out once, of the observation the samples saw, in the same units
        # (a read-out of another input, or of sigma in file levels, would differ)
        from diffusion.chains.posterior import image_levels, posterior_mean
        from diffusion.inference import load_trained

        trained = load_trained(run, device="cpu")
        want = posterior_mean(trained, arrays["observed"], 5 * image_levels(trained) / 256.0)
        np.testing.assert_allclose(arrays["mean_readout"], want.mean, rtol=0, atol=1e-9)
        assert not np.allclose(arrays["mean_readout"], arrays["observed"])
    # inpainting at another size: the mask is checked against the image, not the model's
    # training size (a CLI that checked the model's 8 x 8 refused this 9 x 8 pair)
    big_mask = np.full((9, 8), 255, np.uint8)
    big_mask[3:6, 2:6] = 0
    mask_path = write_png(tmp_path / "big-mask.png", big_mask)
    out = tmp_path / "big-inp.npz"
    argv = ["inpaint", run, str(files["big"]), "--mask", str(mask_path), "-n", "2"]
    assert main([*argv, "--steps", "3", "--out", str(out)]) == 0
    with np.load(out) as arrays:
        assert arrays["samples"].shape == (2, 9, 8)
        assert np.array_equal(arrays["mask"], big_mask >= 128)
    out = tmp_path / "s.png"
    assert main(["sample", run, "-n", "4", "--steps", "5", "--out", str(out)]) == 0
    assert out.exists()


def test_cli_inpaint_starts_a_wide_hole_as_the_worker_does(runs, tmp_path, capsys) -> None:
    """`difflab inpaint` takes the worker's start and context: a 14 x 14 hole in a 30 x 30
    image holds the model's 8 x 8 training patch, so "auto" (the default) starts it from the
    biharmonic fill, on the window of 64 pixels of context (here the whole image); --start off
    runs the paper's one pass; a negative context is refused. A CLI that ignored --start, or
    kept its old one pass, fails this on what it prints (the size plan)."""
    run = str(runs["digits-smoke"])
    image = write_png(tmp_path / "wide.png", np.full((30, 30), 120, np.uint8))
    mask = np.full((30, 30), 255, np.uint8)
    mask[8:22, 8:22] = 0
    mask_path = write_png(tmp_path / "wide-mask.png", mask)
    argv = ["inpaint", run, str(image), "--mask", str(mask_path), "-n", "1", "--steps", "3"]
    said = {}
    for start in ("auto", "off", "biharmonic"):
        out = tmp_path / f"wide-{start}.npz"
        capsys.readouterr()
        extra = [] if start == "auto" else ["--start", start]
        assert main([*argv, *extra, "--out", str(out)]) == 0
        said[start] = json.loads(capsys.readouterr().out.strip().splitlines()[-1])["size"]
    assert "started from the biharmonic fill of the hole" in said["auto"]
    assert "biharmonic" not in said["off"] and "coarse" not in said["off"]
    assert said["biharmonic"] == said["auto"]
    assert main([*argv, "--context", "-1", "--out", str(tmp_path / "x.npz")]) != 0
    assert "--context must be >= 0 pixels" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["denoise", "{run}", "{trunc}", "--sigma", "5"], "truncated or corrupt"),
        (["denoise", "{run}", "{rgb}", "--sigma", "5"], "RGB"),
        (["denoise", "{run}", "{digit}", "--sigma", "-1"], "sigma"),
        (["denoise", "{run}", "{digit}", "--sigma", "5", "--steps", "99"], "steps"),
        (["denoise", "{hb}", "{digit}", "--sigma", "5"], "binomial"),
        (["denoise", "{run}/nope", "{digit}", "--sigma", "5"], "no such run"),
        (["inpaint", "{run}", "{digit}", "--mask", "{full}"], "hides nothing"),
        (["inpaint", "{run}", "{digit}", "--mask", "{big}"], "mask is 8 x 9"),
        (["inpaint", "{run}", "{digit}", "--mask", "{trunc}"], "truncated"),
        (["inpaint", "{run}", "{missing}", "--mask", "{mask}"], "no such file"),
        (["inpaint", "{run}", "{digit}", "--mask", "{mask}", "--guidance", "-2"], "guidance"),
        (["inpaint", "{run}", "{digit}", "--mask", "{mask}", "--guidance", "nan"], "guidance"),
    ],
)
def test_bad_inputs_print_one_line_and_write_nothing(
    runs, files, tmp_path, capsys, args, message
) -> None:
    names = {
        "run": runs["digits-smoke"],
        "hb": runs["heartbeat-smoke"],
        "missing": tmp_path / "missing.png",
        **files,
    }
    argv = [a.format(**{k: str(v) for k, v in names.items()}) for a in args]
    out = tmp_path / "out" / "result.png"
    assert main([*argv, "-n", "2", "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err
    assert not out.exists() and not (tmp_path / "out").exists()


def test_out_suffix_checked_first(runs, files, tmp_path, capsys) -> None:
    out = tmp_path / "x.gif"
    assert (
        main(
            [
                "denoise",
                str(runs["digits-smoke"]),
                str(files["digit"]),
                "--sigma",
                "5",
                "--out",
                str(out),
            ]
        )
        == 2
    )
    assert ".png or .npz" in capsys.readouterr().err and not out.exists()


def test_denoise_refuses_a_60_mb_file_in_one_line(runs, tmp_path: Path, capsys) -> None:
    big = tmp_path / "big.png"
    big.write_bytes(b"\0" * (60 * 1024 * 1024))
    run = str(runs["digits-smoke"])
    code = main(["denoise", run, str(big), "--sigma", "20", "--out", str(tmp_path / "o.png")])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and "60.0 MiB" in err[0] and "20.0 MiB" in err[0], err
