"""One module reads the environment (diffusion/settings.py): its defaults, its overrides, its
checks, the one redact, and no other module reading DIFFLAB_* variables itself."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from diffusion import settings

ROOT = Path(__file__).resolve().parents[1]


def test_defaults_and_overrides(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("DIFFLAB_DATA_DIR", "DIFFLAB_DATABASE_URL", "DIFFLAB_ARTIFACT_DIR"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.chdir(tmp_path)
    assert settings.data_dir() == tmp_path / ".difflab"
    assert settings.database_url() == f"sqlite:///{tmp_path / '.difflab' / 'difflab.db'}"
    assert settings.artifact_dir() == tmp_path / ".difflab" / "artifacts"
    assert settings.run_dir("r1") == tmp_path / ".difflab" / "runs" / "r1"
    assert settings.lease_s() == 9 and settings.worker_queues() == ["gpu", "cpu"]
    monkeypatch.setenv("DIFFLAB_DATA_DIR", str(tmp_path / "d"))
    monkeypatch.setenv("DIFFLAB_LEASE_S", "2.5")
    monkeypatch.setenv("DIFFLAB_TEAM_MODE", " Yes ")
    assert settings.artifact_dir() == tmp_path / "d" / "artifacts"
    assert settings.lease_s() == 2.5 and settings.team_mode()
    monkeypatch.setenv("DIFFLAB_WORKER_DEVICE", "cpu")  # restored after the test
    monkeypatch.setenv("DIFFLAB_WORKER_QUEUES", "cpu")
    settings.announce_worker("cuda:1", ["gpu"])
    assert settings.worker_device() == "cuda:1" and settings.worker_queues() == ["gpu"]


@pytest.mark.parametrize("value", ["soon", "0", "-3"])
def test_bad_seconds_name_the_variable(monkeypatch: pytest.MonkeyPatch, value: str) -> None:
    monkeypatch.setenv("DIFFLAB_RECONCILE_S", value)
    with pytest.raises(ValueError, match="DIFFLAB_RECONCILE_S"):
        settings.reconcile_s()


def test_redact_hides_only_the_password() -> None:
    assert settings.redact("redis://:pw@h:1/0") == "redis://:***@h:1/0"
    assert settings.redact("postgresql://u:p@ss@h/db") == "postgresql://u:***@h/db"
    assert settings.redact("postgresql+psycopg://u@h/db") == "postgresql+psycopg://u@h/db"
    assert settings.redact("sqlite:///x.db") == "sqlite:///x.db"


def _reads_environment(tree: ast.AST) -> list[int]:
    """Lines that read os.environ (.get, [...]) or call os.getenv."""
    lines = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute) and node.attr == "getenv":
            lines.append(node.lineno)
        if isinstance(node, ast.Attribute) and node.attr == "get":
            base = node.value
            if isinstance(base, ast.Attribute) and base.attr == "environ":
                lines.append(node.lineno)
        loads = isinstance(node, ast.Subscript) and isinstance(node.ctx, ast.Load)
        if loads and isinstance(node.value, ast.Attribute) and node.value.attr == "environ":
            lines.append(node.lineno)
    return lines


def test_no_other_module_reads_the_environment() -> None:
    found = []
    for package in ("diffusion", "db", "worker", "dashboard", "difflab"):
        for path in sorted((ROOT / package).rglob("*.py")):
            if path == ROOT / "diffusion" / "settings.py":
                continue
            for line in _reads_environment(ast.parse(path.read_text())):
                found.append(f"{path.relative_to(ROOT)}:{line}")
    assert not found, "read the environment through diffusion.settings:\n" + "\n".join(found)
    assert _reads_environment(ast.parse("import os\nx = os.environ.get('A')\n")) == [2]
