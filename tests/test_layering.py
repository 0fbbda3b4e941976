"""The layering of docs/architecture.md, "Layering", read from the code with ``ast``
(imports inside functions included, where a loop would otherwise hide):

* apps import downward only: ``core`` <- ``accounts`` <- ``dmp`` <- ``repository`` <-
  ``config`` (``config`` wires the apps together and imports anything; nothing imports
  ``config``);
* no module imports, directly or through others, a module that imports it back.
"""

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
ORDER = ("core", "accounts", "dmp", "repository", "config")


def _modules(root: Path) -> dict[str, Path]:
    """Dotted module name -> file, for every module of the layered packages."""
    modules = {}
    for package in ORDER:
        for path in sorted((root / package).rglob("*.py")):
            relative = path.relative_to(root)
            if "migrations" in relative.parts:
                continue
            parts = list(relative.with_suffix("").parts)
            if parts[-1] == "__init__":
                parts.pop()
            modules[".".join(parts)] = path
    return modules


def _imported_names(module: str, path: Path) -> set[str]:
    """Every dotted name ``module`` imports (``from a import b`` gives ``a`` and ``a.b``),
    relative imports made absolute."""
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    names = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - (node.level - 1)]
                source = ".".join([*base, *([node.module] if node.module else [])])
            else:
                source = node.module
            names.add(source)
            names.update(f"{source}.{alias.name}" for alias in node.names)
    return names


def _upward_imports(root: Path = ROOT) -> set[tuple[str, str]]:
    found = set()
    for module, path in _modules(root).items():
        app = module.split(".")[0]
        for name in _imported_names(module, path):
            top = name.split(".")[0]
            if top in ORDER and ORDER.index(top) > ORDER.index(app):
                found.add((path.relative_to(root).as_posix(), name))
    return found


def _import_graph(root: Path) -> dict[str, set[str]]:
    modules = _modules(root)

    def resolve(name: str) -> str | None:
        parts = name.split(".")
        while parts and ".".join(parts) not in modules:
            parts.pop()
        return ".".join(parts) or None

    graph = {}
    for module, path in modules.items():
        targets = {resolve(name) for name in _imported_names(module, path)}
        graph[module] = {target for target in targets if target and target != module}
    return graph


def _import_loops(root: Path = ROOT) -> list[list[str]]:
    """The strongly connected groups of more than one module (Tarjan's algorithm)."""
    graph = _import_graph(root)
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    loops = []

    def visit(module: str) -> None:
        index[module] = low[module] = len(index)
        stack.append(module)
        for target in graph[module]:
            if target not in index:
                visit(target)
                low[module] = min(low[module], low[target])
            elif target in stack:
                low[module] = min(low[module], index[target])
        if low[module] == index[module]:
            group = []
            while not group or group[-1] != module:
                group.append(stack.pop())
            if len(group) > 1:
                loops.append(sorted(group))

    for module in graph:
        if module not in index:
            visit(module)
    return loops


def test_no_app_imports_one_above_it():
    assert "repository.access" in _modules(ROOT)  # the check reads the packages themselves
    assert _upward_imports() == set(), "imports against the layering (docs/architecture.md)"


def test_no_import_loops():
    assert len(_import_graph(ROOT)) > 100  # every module of the packages, not none
    assert _import_loops() == []


def test_the_checks_see_imports_hidden_in_functions(tmp_path):
    for package in ORDER:
        (tmp_path / package).mkdir()
    (tmp_path / "accounts" / "hidden.py").write_text(
        "def f():\n    from repository import models\n"
    )
    (tmp_path / "accounts" / "fine.py").write_text("import sys\nfrom . import hidden\n")
    (tmp_path / "repository" / "models.py").write_text("from .tasks import run\n")
    (tmp_path / "repository" / "tasks.py").write_text("def run():\n    from . import models\n")
    (tmp_path / "repository" / "services.py").write_text("from .models import X\n")

    assert _upward_imports(tmp_path) == {
        ("accounts/hidden.py", "repository"),
        ("accounts/hidden.py", "repository.models"),
    }
    assert _import_loops(tmp_path) == [["repository.models", "repository.tasks"]]
