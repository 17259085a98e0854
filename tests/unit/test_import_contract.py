"""The layering contract of pyproject.toml [tool.importlinter] is enforced: it fails on a violation."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
LINT_IMPORTS = Path(sys.executable).with_name("lint-imports")


def lint_imports(project: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(project / "src")}
    return subprocess.run(
        [str(LINT_IMPORTS), "--no-cache"], cwd=project, env=env, capture_output=True, text=True, timeout=120
    )


def copy_project(tmp_path: Path) -> Path:
    shutil.copytree(
        ROOT / "src" / "bourse", tmp_path / "src" / "bourse", ignore=shutil.ignore_patterns("__pycache__")
    )
    shutil.copy(ROOT / "pyproject.toml", tmp_path / "pyproject.toml")
    return tmp_path


def test_the_real_tree_keeps_the_contracts() -> None:
    result = lint_imports(ROOT)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "0 broken" in result.stdout


@pytest.mark.parametrize(
    ("module", "line", "contract", "edge"),
    [
        (
            "domain/values.py",
            "import sqlalchemy",
            "domain is pure: no I/O, no other layer",
            "bourse.domain.values -> sqlalchemy",
        ),
        (
            "domain/identity.py",
            "from bourse.service import context",
            "domain is pure: no I/O, no other layer",
            "bourse.domain.identity -> bourse.service.context",
        ),
        (
            "api/native/health.py",
            "import bourse.adapters.db.tables",
            "edges never import adapters directly",
            "bourse.api.native.health -> bourse.adapters.db.tables",
        ),
        (
            "service/identity.py",
            "import fastapi",
            "service depends on domain and its ports only",
            "bourse.service.identity -> fastapi",
        ),
    ],
)
def test_a_violating_import_breaks_its_contract(
    tmp_path: Path, module: str, line: str, contract: str, edge: str
) -> None:
    project = copy_project(tmp_path)
    target = project / "src" / "bourse" / module
    target.write_text(target.read_text() + f"\n{line}  # injected violation\n")

    result = lint_imports(project)
    assert result.returncode != 0, result.stdout
    assert f"{contract} BROKEN" in result.stdout, result.stdout
    assert edge in result.stdout, result.stdout
