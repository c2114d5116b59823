"""The files that set the lab up: README's opening, the Makefile's targets, .ci/run, the image."""

from __future__ import annotations

import re
import shutil
import subprocess
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def test_readme_opens_with_the_two_commands() -> None:
    lines = (ROOT / "README.md").read_text().splitlines()
    opening = "\n".join(lines[:12])
    assert re.search(r"^make up\b", opening, re.MULTILINE)
    assert re.search(r"^make test\b", opening, re.MULTILINE)


@pytest.mark.parametrize("target", ["up", "test", "lint", "clean", "install"])
def test_makefile_has_the_target(target: str) -> None:
    if shutil.which("make") is None:
        pytest.skip("make is not installed")
    done = subprocess.run(
        ["make", "-n", target], cwd=ROOT, capture_output=True, text=True, timeout=30, check=False
    )
    assert done.returncode == 0, done.stderr


def test_make_test_installs_torch_before_the_project() -> None:
    done = subprocess.run(
        ["make", "-n", "-B", "install"], cwd=ROOT, capture_output=True, text=True, check=True
    )
    torch = done.stdout.index("torch==")
    project = done.stdout.index("-e '.[dev]'")
    assert done.stdout.index("-m venv") < done.stdout.index("--upgrade pip") < torch < project
    assert "nvidia-smi" in done.stdout


def test_ci_runs_make_test_after_starting_the_services() -> None:
    script = (ROOT / ".ci" / "run").read_text()
    assert script.startswith("#!/usr/bin/env bash") and "set -euo pipefail" in script
    steps = ("apt-get install", "pg_ctlcluster --skip", "redis-server --daemonize", "\nmake test")
    order = [script.index(step) for step in steps]
    assert order == sorted(order)
    assert "chromium" in script and "docker-compose" in script


def test_the_image_carries_every_package() -> None:
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text())
    packages = [
        p.rstrip("*") for p in pyproject["tool"]["setuptools"]["packages"]["find"]["include"]
    ]
    dockerfile = (ROOT / "Dockerfile").read_text()
    for package in packages:
        assert re.search(rf"^COPY {package} \./{package}$", dockerfile, re.MULTILINE), package
    assert dockerfile.index("torch==") < dockerfile.index("pip install .")
    assert re.search(r"^USER \w+", dockerfile, re.MULTILINE), "the image should not run as root"


def test_env_files_stay_out_of_the_repository_and_the_image() -> None:
    ignored = (ROOT / ".dockerignore").read_text().splitlines()
    assert ".env" in ignored and "!.env.example" in ignored
    assert not (ROOT / ".env").exists() or _git_ignores(".env")


def _git_ignores(path: str) -> bool:
    done = subprocess.run(["git", "check-ignore", "-q", path], cwd=ROOT, check=False)
    return done.returncode == 0
