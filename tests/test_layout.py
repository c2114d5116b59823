"""The import rules of docs/architecture.md, checked over the source tree with `ast`.

Every import counts, at the top of a module or inside a function; each broken rule is
reported with its file:line.
- diffusion/ never imports db, worker, dashboard, difflab (nor streamlit, celery, sqlalchemy,
  redis or the other service libraries: kombu, alembic, psycopg, plotly).
- db/ never imports torch, streamlit, celery, worker, dashboard or difflab, and of the engine
  only its torch-free helpers (DB_ENGINE_ALLOWED: settings, imageio, image_checks).
- dashboard/ never imports torch; of the engine only the config schema, presets, preset
  cards and the torch-free helpers (DASHBOARD_ENGINE_ALLOWED); of the queue only worker.api.
- worker/ never imports dashboard.
- diffusion/config.py, diffusion/presets.py, the torch-free helpers, worker/app.py,
  worker/api.py and every dashboard module load without torch: no torch among the imports
  they run at import time, followed through our own modules (imports inside functions run
  later and are not followed).
Imports under `if TYPE_CHECKING:` never run and are ignored.
"""

from __future__ import annotations

import ast
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("diffusion", "db", "worker", "dashboard", "difflab")

FORBIDDEN: dict[str, tuple[str, ...]] = {
    "diffusion": ("streamlit", "celery", "sqlalchemy", "redis", "db", "worker", "dashboard")
    + ("difflab", "kombu", "alembic", "psycopg", "plotly"),
    "db": ("torch", "streamlit", "celery", "worker", "dashboard", "difflab"),
    "dashboard": ("torch", "worker.tasks"),
    "worker": ("dashboard",),
}
TORCH_FREE_HELPERS = (
    "diffusion.settings",
    "diffusion.images.imageio",
    "diffusion.images.checks",
    "diffusion.images.limits",
)
DB_ENGINE_ALLOWED = TORCH_FREE_HELPERS
DASHBOARD_ENGINE_ALLOWED = (
    "diffusion.config",
    "diffusion.config_checks",
    "diffusion.config_options",
    "diffusion.presets",
    "diffusion.preset_cards",  # each preset's measured card (standard library only)
    "diffusion.images.sizes",  # the size rule of a model, to plan an upload
    "diffusion.images.holes",  # the coarse-to-fine rule, to say what a job will do with a hole
    "diffusion.chains.inpaint_methods",  # the inpainting methods' names, help and guidance rule
    *TORCH_FREE_HELPERS,
)
# (package, what it may reach into, the only modules of it allowed)
ONLY: tuple[tuple[str, str, tuple[str, ...]], ...] = (
    ("db", "diffusion", DB_ENGINE_ALLOWED),
    ("dashboard", "diffusion", DASHBOARD_ENGINE_ALLOWED),
    ("dashboard", "worker", ("worker.api",)),
)
# what the dashboard may import of the engine must itself load without torch
TORCH_FREE = (*DASHBOARD_ENGINE_ALLOWED, "diffusion.config_registry", "worker.app", "worker.api")


@dataclass(frozen=True)
class Import:
    module: str  # dotted name of what is imported, resolved against our tree
    line: int
    top_level: bool  # runs when the importing module is imported


def module_name(path: Path, root: Path = ROOT) -> str:
    parts = list(path.relative_to(root).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def source_files(root: Path = ROOT) -> dict[str, Path]:
    files: dict[str, Path] = {}
    for package in PACKAGES:
        for path in sorted((root / package).rglob("*.py")):
            files[module_name(path, root)] = path
    return files


def _is_type_checking(node: ast.If) -> bool:
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _walk(node: ast.AST, top_level: bool):
    """Yield (node, top_level) for import nodes, skipping TYPE_CHECKING blocks."""
    for child in ast.iter_child_nodes(node):
        if isinstance(child, ast.If) and _is_type_checking(child):
            for sub in child.orelse:
                yield from _walk_one(sub, top_level)
            continue
        yield from _walk_one(child, top_level)


def _walk_one(node: ast.AST, top_level: bool):
    if isinstance(node, ast.Import | ast.ImportFrom):
        yield node, top_level
        return
    inner = top_level and not isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.Lambda)
    yield from _walk(node, inner)


def imports_of(source: str, name: str, is_package: bool, known: set[str]) -> list[Import]:
    """Every import in `source` (module `name`), resolved to dotted module names."""
    found: list[Import] = []
    package = name if is_package else name.rpartition(".")[0]
    for node, top in _walk(ast.parse(source), True):
        if isinstance(node, ast.Import):
            found += [Import(alias.name, node.lineno, top) for alias in node.names]
            continue
        base = node.module or ""
        if node.level:
            anchor = package.split(".")
            anchor = anchor[: len(anchor) - (node.level - 1)]
            base = ".".join([*anchor, base] if base else anchor)
        for alias in node.names:
            full = f"{base}.{alias.name}"
            found.append(Import(full if full in known else base, node.lineno, top))
    return found


def _matches(module: str, banned: str) -> bool:
    return module == banned or module.startswith(banned + ".")


def violations(files: dict[str, Path], root: Path = ROOT) -> list[str]:
    known = set(files)
    graph = {
        name: imports_of(path.read_text(), name, path.name == "__init__.py", known)
        for name, path in files.items()
    }
    found: list[str] = []
    for name, imports in graph.items():
        top = name.split(".")[0]
        for imp in imports:
            where = f"{files[name].relative_to(root)}:{imp.line}"
            for banned in FORBIDDEN.get(top, ()):
                if _matches(imp.module, banned):
                    found.append(f"{where} imports {imp.module} ({top}/ must not import {banned})")
            for package, reached, allowed in ONLY:
                if top != package or not _matches(imp.module, reached):
                    continue
                if not any(_matches(imp.module, ok) for ok in allowed):
                    found.append(
                        f"{where} imports {imp.module} ({package}/ may use only "
                        f"{', '.join(allowed)} of {reached}/)"
                    )
    roots = [m for m in TORCH_FREE if m in graph] + [m for m in graph if m.startswith("dashboard")]
    for start in roots:
        chain = _torch_chain(start, graph)
        if chain:
            found.append(f"{start} imports torch when it is imported: {' -> '.join(chain)}")
    return found


def _torch_chain(start: str, graph: dict[str, list[Import]]) -> list[str] | None:
    """The import path from `start` to torch through top-level imports, or None."""
    seen = {start}
    stack: list[list[str]] = [[start]]
    while stack:
        path = stack.pop()
        for imp in graph.get(path[-1], []):
            if not imp.top_level:
                continue
            targets = [imp.module]
            parts = imp.module.split(".")  # importing a.b.c runs a and a.b first
            targets += [".".join(parts[:i]) for i in range(1, len(parts))]
            for target in targets:
                if _matches(target, "torch"):
                    return [*path, target]
                if target in graph and target not in seen:
                    seen.add(target)
                    stack.append([*path, target])
    return None


def test_the_source_tree_keeps_the_import_rules() -> None:
    files = source_files()
    assert files, "no source files found"
    problems = violations(files)
    assert not problems, "import rules of docs/architecture.md broken:\n" + "\n".join(problems)


@pytest.mark.parametrize(
    ("path", "source", "expected"),
    [
        ("diffusion/bad.py", "import streamlit as st\n", "must not import streamlit"),
        ("diffusion/bad.py", "from db.store import Store\n", "must not import db"),
        ("db/bad.py", "def f():\n    import torch\n", "must not import torch"),
        ("db/bad.py", "from diffusion.config import RunConfig\n", "may use only diffusion.s"),
        ("db/bad.py", "def f():\n    from worker import api\n", "db/bad.py:2 imports worker"),
        (
            "dashboard/bad.py",
            "from diffusion.training import train\n",
            "may use only diffusion.config",
        ),
        ("dashboard/bad.py", "from worker.tasks import train\n", "must not import worker.tasks"),
        ("dashboard/bad.py", "def f():\n    from worker.app import app\n", "only worker.api"),
        ("dashboard/bad.py", "from worker import broker\n", "only worker.api"),
        ("worker/bad.py", "def f():\n    import dashboard.forms\n", "must not import dashboard"),
        ("diffusion/config.py", "from .net import Net\n", "config imports torch"),
        ("worker/api.py", "import diffusion.net\n", "api imports torch"),
    ],
)
def test_the_checker_catches_each_kind_of_violation(
    tmp_path: Path, path: str, source: str, expected: str
) -> None:
    for package in PACKAGES:
        (tmp_path / package).mkdir()
        (tmp_path / package / "__init__.py").write_text("")
    (tmp_path / "diffusion" / "net.py").write_text("import torch\n")
    (tmp_path / path).write_text(source)
    problems = violations(source_files(tmp_path), tmp_path)
    assert any(expected in p for p in problems), problems


def test_allowed_imports_pass(tmp_path: Path) -> None:
    for package in PACKAGES:
        (tmp_path / package).mkdir()
        (tmp_path / package / "__init__.py").write_text("")
    (tmp_path / "diffusion" / "config.py").write_text("import dataclasses\n")
    (tmp_path / "diffusion" / "presets.py").write_text("from .config import RunConfig\n")
    (tmp_path / "dashboard" / "page.py").write_text(
        "from typing import TYPE_CHECKING\nfrom diffusion import presets\n"
        "from diffusion.config import RunConfig\nfrom worker import api\nimport db.store\n"
        "if TYPE_CHECKING:\n    import torch\n"
    )
    (tmp_path / "worker" / "tasks.py").write_text("def run():\n    import torch\n")
    (tmp_path / "worker" / "api.py").write_text("")
    (tmp_path / "diffusion" / "settings.py").write_text("import os\n")
    (tmp_path / "db" / "store.py").write_text("def f():\n    from diffusion import settings\n")
    assert violations(source_files(tmp_path), tmp_path) == []
