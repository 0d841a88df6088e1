"""The house rules of docs/architecture.md, read from the source (issue 22).

import-linter (`make test`) checks that the stages import downwards at module level; these
tests read every import of the package, including those inside functions, and check what
import-linter does not:

* no import cycle between modules (an import inside a function to dodge a cycle counts);
* internal imports at the top of modules, except in the command-line interface, which imports
  each stage inside the command that uses it so that ``qpv-geo --help`` starts at once
  (tests/test_startup.py);
* a private name (``_name``) is used only in its own module; a private module (``_name.py``)
  only inside its own package.
"""

from __future__ import annotations

import ast
from collections import defaultdict
from pathlib import Path

PACKAGE = Path(__file__).resolve().parent.parent / "qpv_geo"

#: The one place where internal imports may sit inside functions: the command-line interface.
LAZY_ALLOWED = ("qpv_geo.cli",)

#: Lazy imports kept on purpose elsewhere, each for a heavy optional dependency.
LAZY_OPTIONAL = {
    # the « web » extra (FastAPI, Starlette): create_app says in French when it is missing.
    ("qpv_geo.web", "qpv_geo.web.app"),
}


def _modules() -> dict[str, Path]:
    found = {}
    for path in PACKAGE.rglob("*.py"):
        parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        found[".".join(parts)] = path
    return found


MODULES = _modules()


class _Import:
    def __init__(self, importer: str, target: str, name: str | None, line: int,
                 in_function: bool) -> None:
        self.importer, self.target, self.name = importer, target, name
        self.line, self.in_function = line, in_function

    def __repr__(self) -> str:
        what = f"{self.target}.{self.name}" if self.name else self.target
        return f"{MODULES[self.importer].relative_to(PACKAGE.parent)}:{self.line} -> {what}"


def _owner(dotted: str) -> str | None:
    while dotted and dotted not in MODULES:
        dotted = dotted.rpartition(".")[0]
    return dotted or None


def _imports() -> list[_Import]:
    found = []
    for module, path in MODULES.items():
        tree = ast.parse(path.read_text(encoding="utf-8"))
        package = module if path.name == "__init__.py" else module.rpartition(".")[0]

        def visit(node: ast.AST, in_function: bool, type_checking: bool,
                  module: str = module, package: str = package) -> None:
            for child in ast.iter_child_nodes(node):
                if isinstance(child, ast.If) and "TYPE_CHECKING" in ast.unparse(child.test):
                    visit(child, in_function, True)
                    continue
                inner = in_function or isinstance(child, (ast.FunctionDef,
                                                          ast.AsyncFunctionDef, ast.Lambda))
                if isinstance(child, ast.Import) and not type_checking:
                    for alias in child.names:
                        if alias.name.startswith("qpv_geo"):
                            found.append(_Import(module, _owner(alias.name) or alias.name,
                                                 None, child.lineno, in_function))
                elif isinstance(child, ast.ImportFrom) and not type_checking:
                    if child.level:
                        base = package.split(".")[: len(package.split(".")) - child.level + 1]
                        source = ".".join(base + ([child.module] if child.module else []))
                    else:
                        source = child.module or ""
                    if source.startswith("qpv_geo"):
                        for alias in child.names:
                            sub = f"{source}.{alias.name}"
                            if sub in MODULES:
                                found.append(_Import(module, sub, None, child.lineno,
                                                     in_function))
                            else:
                                found.append(_Import(module, _owner(source) or source,
                                                     alias.name, child.lineno, in_function))
                visit(child, inner, type_checking)

        visit(tree, False, False)
    return found


IMPORTS = _imports()


def _cycles() -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan)."""
    graph: dict[str, set[str]] = defaultdict(set)
    for imp in IMPORTS:
        if imp.target != imp.importer and imp.target in MODULES:
            graph[imp.importer].add(imp.target)
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    components = []

    def connect(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph[v]):
            if w not in index:
                connect(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                components.append(sorted(component))

    for v in sorted(MODULES):
        if v not in index:
            connect(v)
    return components


def test_the_reader_sees_every_kind_of_import() -> None:
    """The checks below can fail: the reader finds imports inside functions, private names and
    the edges of the package (the CLI's lazy imports are real imports)."""
    assert len(MODULES) > 50
    assert any(i.in_function and i.importer.startswith("qpv_geo.cli") for i in IMPORTS)
    assert any(i.importer == "qpv_geo.cli" and i.target.startswith("qpv_geo.eligibility")
               for i in IMPORTS)
    cycle = [_Import("qpv_geo.settings", "qpv_geo.exceptions", None, 1, True),
             _Import("qpv_geo.exceptions", "qpv_geo.settings", "_x", 1, False)]
    IMPORTS.extend(cycle)
    try:
        assert ["qpv_geo.exceptions", "qpv_geo.settings"] in _cycles()
    finally:
        del IMPORTS[-2:]


def test_no_import_cycle_between_modules() -> None:
    assert _cycles() == []


def test_internal_imports_sit_at_the_top_of_modules() -> None:
    lazy = [i for i in IMPORTS if i.in_function and not i.importer.startswith(LAZY_ALLOWED)
            and (i.importer, i.target) not in LAZY_OPTIONAL]
    assert lazy == []


def test_private_names_stay_in_their_module() -> None:
    leaks = [i for i in IMPORTS if i.name and i.name.startswith("_")
             and not i.name.startswith("__") and i.target != i.importer]
    assert leaks == []


def test_private_modules_stay_in_their_package() -> None:
    leaks = []
    for imp in IMPORTS:
        leaf = imp.target.rpartition(".")[2]
        if leaf.startswith("_") and not leaf.startswith("__"):
            home = imp.target.rpartition(".")[0]
            if not (imp.importer == home or imp.importer.startswith(home + ".")):
                leaks.append(imp)
    assert leaks == []
