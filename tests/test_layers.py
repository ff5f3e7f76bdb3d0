"""The package's layers, checked from its source: every import counts, even inside a function.

A folder imports only from the folders above it in ``LAYERS`` (its own included); the
package root (``load_ipython_extension``: the composition root) may import anything and
nothing imports it; the emulator imports nothing from the package and only
``service/live.py`` reaches it; no two modules import each other, however indirectly;
and no module imports another's private (``_name``) names. Imports under
``if TYPE_CHECKING:`` are left out: they never run.
"""

from __future__ import annotations

import ast
from dataclasses import dataclass, field
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "yagpt_magic"

#: Top to bottom: each folder may import from itself and the folders before it.
LAYERS = ("core", "service", "display", "ipython", "widget", "bulk", "transcript")
EMULATOR = "emulator"
#: The one module that starts the emulator (``%chat offline``, ``YAGPT_OFFLINE``).
EMULATOR_USERS = ("service.live",)


@dataclass
class Module:
    name: str  # dotted, without the package: "core.session"; the root is ""
    path: Path
    is_package: bool
    imports: list[tuple[str, int]] = field(default_factory=list)  # (module, line)
    private: list[tuple[str, str, int]] = field(default_factory=list)  # (module, name, line)


def modules_of(root: Path) -> dict[str, Module]:
    found = {}
    for path in sorted(root.rglob("*.py")):
        parts = list(path.relative_to(root).with_suffix("").parts)
        is_package = parts[-1] == "__init__"
        if is_package:
            parts = parts[:-1]
        name = ".".join(parts)
        found[name] = Module(name, path, is_package)
    return found


def _type_checking(node: ast.AST) -> bool:
    test = getattr(node, "test", None)
    return isinstance(node, ast.If) and (
        (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING")
        or (isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"))


def _walk(node: ast.AST) -> list[ast.AST]:
    """Every node under ``node`` except the bodies of ``if TYPE_CHECKING:`` blocks."""
    out = []
    for child in ast.iter_child_nodes(node):
        if _type_checking(child):
            out += [n for sub in getattr(child, "orelse", []) for n in [sub, *_walk(sub)]]
            continue
        out += [child, *_walk(child)]
    return out


def _resolve(module: Module, node: ast.ImportFrom, package: str) -> str | None:
    """The absolute module ``from ... import`` names, within the package ("" = its root)."""
    if node.level == 0:
        name = node.module or ""
        if name != package and not name.startswith(package + "."):
            return None
        return name[len(package) + 1:] if name != package else ""
    base = module.name.split(".") if module.name else []
    if not module.is_package:
        base = base[:-1]
    up = node.level - 1
    if up > len(base):
        raise ValueError(f"{module.path}:{node.lineno}: import above the package")
    base = base[: len(base) - up]
    return ".".join([*base, *([node.module] if node.module else [])])


def read_imports(root: Path, package: str) -> dict[str, Module]:
    modules = modules_of(root)
    for module in modules.values():
        tree = ast.parse(module.path.read_text(encoding="utf-8"))
        for node in _walk(tree):
            if isinstance(node, ast.Import):
                for alias in node.names:
                    if alias.name == package or alias.name.startswith(package + "."):
                        target = alias.name[len(package) + 1:]
                        module.imports.append((target, node.lineno))
            elif isinstance(node, ast.ImportFrom):
                target = _resolve(module, node, package)
                if target is None:
                    continue
                for alias in node.names:
                    sub = f"{target}.{alias.name}" if target else alias.name
                    if sub in modules:
                        module.imports.append((sub, node.lineno))
                        continue
                    module.imports.append((target, node.lineno))
                    private = alias.name.startswith("_") and not alias.name.startswith("__")
                    if private and target != module.name:
                        module.private.append((target, alias.name, node.lineno))
    return modules


def layer_of(name: str) -> str:
    """The folder a module is in; "" for the package root's own modules."""
    head = name.split(".")[0] if name else ""
    return head if head in (*LAYERS, EMULATOR) else ""


def _cycles(modules: dict[str, Module]) -> list[list[str]]:
    """Strongly connected groups of more than one module (or a module importing itself)."""
    graph = {name: {t for t, _ in m.imports if t in modules} for name, m in modules.items()}
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    groups: list[list[str]] = []

    def visit(start: str) -> None:  # iterative Tarjan: no recursion limit to meet
        work = [(start, iter(sorted(graph[start])))]
        index[start] = low[start] = len(index)
        stack.append(start)
        on_stack.add(start)
        while work:
            node, edges = work[-1]
            for target in edges:
                if target not in index:
                    index[target] = low[target] = len(index)
                    stack.append(target)
                    on_stack.add(target)
                    work.append((target, iter(sorted(graph[target]))))
                    break
                if target in on_stack:
                    low[node] = min(low[node], index[target])
            else:
                work.pop()
                if work:
                    low[work[-1][0]] = min(low[work[-1][0]], low[node])
                if low[node] == index[node]:
                    group = []
                    while True:
                        item = stack.pop()
                        on_stack.discard(item)
                        group.append(item)
                        if item == node:
                            break
                    if len(group) > 1 or node in graph[node]:
                        groups.append(sorted(group))

    for name in sorted(graph):
        if name not in index:
            visit(name)
    return groups


def problems(root: Path, package: str) -> list[str]:
    """Every breach of the layering rules in the package at ``root``, one line each."""
    modules = read_imports(root, package)
    found = []
    for module in modules.values():
        here = layer_of(module.name)
        where = module.path.relative_to(root.parent)
        for target, line in module.imports:
            there = layer_of(target)
            if target == module.name:
                continue
            if here == EMULATOR and there != EMULATOR:
                found.append(f"{where}:{line}: the emulator imports {package}.{target}")
            elif there == EMULATOR and here != EMULATOR and module.name not in EMULATOR_USERS:
                found.append(f"{where}:{line}: {module.name} reaches the emulator")
            elif here and target and not there:
                found.append(f"{where}:{line}: imports the package root's {target}")
            elif here and not target:
                found.append(f"{where}:{line}: imports the package root")
            elif here in LAYERS and there in LAYERS and LAYERS.index(there) > LAYERS.index(here):
                found.append(f"{where}:{line}: {here}/ imports {target} from {there}/, "
                             "a layer below it")
        for target, name, line in module.private:
            found.append(f"{where}:{line}: imports the private {name} of {target or package}")
    for group in _cycles(modules):
        found.append("import cycle: " + " -> ".join(g or package for g in group))
    return list(dict.fromkeys(found))


def test_the_package_keeps_its_layers() -> None:
    assert problems(PACKAGE, "yagpt_magic") == []


# -- the checker itself, on a planted tree --------------------------------------------------
def _tree(tmp_path: Path, files: dict[str, str]) -> Path:
    root = tmp_path / "pkg"
    for folder in ("", *LAYERS, EMULATOR):
        (root / folder).mkdir(parents=True, exist_ok=True)
        (root / folder / "__init__.py").write_text('"""A layer."""\n')
    for name, text in files.items():
        (root / name).write_text(text)
    return root


def test_a_clean_tree_passes(tmp_path: Path) -> None:
    root = _tree(tmp_path, {
        "core/a.py": "X = 1\n",
        "service/b.py": "from ..core.a import X\n",
        "transcript/c.py": "from pkg.service import b\nfrom ..core import a\n",
        "__init__.py": "def load():\n    from .transcript import c\n",
        "service/live.py": "def go():\n    from ..emulator import server\n",
        "emulator/server.py": "from .tokens import T\n",
        "emulator/tokens.py": "T = 1\n",
    })
    assert problems(root, "pkg") == []


@pytest.mark.parametrize(("files", "expected"), [
    ({"core/a.py": "def f():\n    from ..display import view\n", "display/view.py": ""},
     "core/ imports display.view from display/, a layer below it"),
    ({"core/a.py": "import pkg.bulk.rows\n", "bulk/rows.py": ""}, "a layer below it"),
    ({"core/a.py": "from .. import __version__\n"}, "imports the package root"),
    ({"emulator/x.py": "from ..core import a\n", "core/a.py": ""}, "the emulator imports"),
    ({"display/x.py": "from ..emulator import server\n", "emulator/server.py": ""},
     "reaches the emulator"),
    ({"core/a.py": "from .b import _hidden\n", "core/b.py": "_hidden = 1\n"},
     "imports the private _hidden of core.b"),
    ({"core/a.py": "def f():\n    from .b import Y\n", "core/b.py": "from .a import f\nY = 1\n"},
     "import cycle: core.a -> core.b"),
    ({"core/a.py": "from . import X\nY = 1\n", "core/__init__.py": "from .a import Y\nX = 1\n"},
     "import cycle: core -> core.a"),
])
def test_the_checker_finds_a_planted_breach(
    tmp_path: Path, files: dict[str, str], expected: str
) -> None:
    found = problems(_tree(tmp_path, files), "pkg")
    assert any(expected in line for line in found), found


def test_type_checking_imports_do_not_count(tmp_path: Path) -> None:
    root = _tree(tmp_path, {
        "core/a.py": ("from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n"
                      "    from ..widget.w import W\n"),
        "widget/w.py": "from ..core.a import TYPE_CHECKING\n",
    })
    assert problems(root, "pkg") == []
