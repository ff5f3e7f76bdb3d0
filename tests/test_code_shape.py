"""The package's shape (issue 22): no function over 80 lines, so each reads on one screen,
and the tests mirror the layers, so a module's tests are found by its name.

Read from the source with ``ast``, nothing imported: a function's length runs from its
``def`` line to its last line, docstring included, nested functions counted in the
function that holds them and on their own.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "yagpt_magic"
TESTS = Path(__file__).resolve().parent
LONGEST = 80
#: The layers whose every module has a test module of its own, ``tests/LAYER/test_NAME.py``.
MIRRORED = ("core", "service", "bulk")


def long_functions(root: Path, limit: int = LONGEST) -> list[str]:
    """``path:line name (N lines)`` for every function under ``root`` over ``limit`` lines."""
    found = []
    for path in sorted(root.rglob("*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        for node in ast.walk(tree):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                lines = (node.end_lineno or node.lineno) - node.lineno + 1
                if lines > limit:
                    where = path.relative_to(root.parent).as_posix()
                    found.append(f"{where}:{node.lineno} {node.name} ({lines} lines)")
    return found


def test_no_function_in_the_package_is_over_80_lines() -> None:
    offenders = long_functions(PACKAGE)
    assert not offenders, (
        f"functions over {LONGEST} lines; split them:\n" + "\n".join(offenders))


@pytest.mark.parametrize(("body", "caught"), [
    (81, True), (80, False),
])
def test_the_check_counts_from_def_to_the_last_line(tmp_path: Path, body: int,
                                                   caught: bool) -> None:
    package = tmp_path / "pkg"
    package.mkdir()
    lines = "".join(f"    x{i} = {i}\n" for i in range(body - 1))
    (package / "mod.py").write_text(
        "class A:\n    async def long(self) -> None:\n" + lines.replace("    ", "        "))
    found = long_functions(package)
    assert found == ([f"pkg/mod.py:2 long ({body} lines)"] if caught else [])


def untested_modules(package: Path, tests: Path) -> list[str]:
    """Modules of the mirrored layers with no ``tests/LAYER/test_NAME.py`` (a subpackage
    such as ``bulk/commands/`` is tested as ``test_commands.py``)."""
    missing = []
    for layer in MIRRORED:
        for path in sorted((package / layer).iterdir()):
            name = path.stem if path.suffix == ".py" else path.name
            module = path.suffix == ".py" or (path / "__init__.py").exists()
            if name.startswith("_") or not module:
                continue
            if not (tests / layer / f"test_{name}.py").exists():
                missing.append(f"{layer}/{path.name} -> tests/{layer}/test_{name}.py")
    return missing


def test_every_module_of_core_service_and_bulk_has_its_test_module() -> None:
    missing = untested_modules(PACKAGE, TESTS)
    assert not missing, "modules without their test module:\n" + "\n".join(missing)
