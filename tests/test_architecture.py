"""The package's shape, checked from its own source: data flows one way.

The import graph is built from every ``import`` statement in ``django_mmc/``
(module level and inside functions alike, the sandbox left out: it is a
separate program that only shares the contract). It must have no cycle but the
one documented edge, ``models.dialogues -> api`` (``Dialogue.send_message()``
and ``Dialogue.close()`` call the public API), and no module may import
another module's ``_private`` name.

Every status change of a notification, message or dialogue goes through
:mod:`django_mmc.transitions`: no other module calls ``update(status=...)``,
assigns ``.status`` or saves ``status`` with ``update_fields``.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "django_mmc"

#: The one sanctioned upward edge (see Dialogue.send_message).
ALLOWED_CYCLE_EDGES = {("django_mmc.models.dialogues", "django_mmc.api")}


def module_name(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def package_modules() -> dict[str, Path]:
    return {
        module_name(path): path
        for path in sorted(PACKAGE.rglob("*.py"))
        if "sandbox" not in path.relative_to(PACKAGE).parts
        and "migrations" not in path.relative_to(PACKAGE).parts
    }


def resolve(importer: str, is_package: bool, node: ast.ImportFrom) -> str:
    if not node.level:
        return node.module or ""
    base = importer.split(".")
    if not is_package:
        base = base[:-1]
    base = base[: len(base) - (node.level - 1)]
    return ".".join(base + ([node.module] if node.module else []))


def imports(name: str, path: Path, modules: dict[str, Path]) -> Iterator[tuple[str, str]]:
    """``(imported module, imported name or "")`` for each import of ``path``
    that names a module of the package."""
    tree = ast.parse(path.read_text(), filename=str(path))
    is_package = path.name == "__init__.py"
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name in modules:
                    yield alias.name, ""
        elif isinstance(node, ast.ImportFrom):
            target = resolve(name, is_package, node)
            for alias in node.names:
                submodule = f"{target}.{alias.name}"
                if submodule in modules:
                    yield submodule, ""
                elif target in modules:
                    yield target, alias.name


def import_graph() -> dict[str, set[str]]:
    modules = package_modules()
    graph: dict[str, set[str]] = {name: set() for name in modules}
    for name, path in modules.items():
        for target, _name in imports(name, path, modules):
            if target != name and not name.startswith(target + "."):
                graph[name].add(target)
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components with more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for target in graph.get(node, ()):
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in on_stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


def test_the_import_graph_has_no_cycle_but_the_documented_edge() -> None:
    graph = import_graph()
    for source, target in ALLOWED_CYCLE_EDGES:
        assert target in graph[source], f"the documented edge {source} -> {target} is gone"
        graph[source].discard(target)
    assert cycles(graph) == []


def test_the_cycle_finder_finds_a_cycle() -> None:
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert cycles({"a": {"b"}, "b": set()}) == []


def test_no_module_imports_another_modules_private_names() -> None:
    modules = package_modules()
    private = [
        f"{name} imports {target}.{imported}"
        for name, path in modules.items()
        for target, imported in imports(name, path, modules)
        if imported.startswith("_") and not imported.startswith("__") and target != name
    ]
    assert private == []


def test_the_documented_edge_is_documented_where_it_is() -> None:
    source = (PACKAGE / "models" / "dialogues.py").read_text()
    assert "the only sanctioned upward edge" in source.lower()


# -- status writes -------------------------------------------------------------

STATUS_MODELS = {"Notification", "Message", "Dialogue"}


def status_writes(path: Path) -> list[str]:
    """Places in ``path`` that write a ``status``: ``.update(status=...)``
    (also through ``**changes`` built by the transitions module, which is
    where such dicts come from), ``x.status = ...`` and
    ``save(update_fields=[..."status"...])``."""
    tree = ast.parse(path.read_text(), filename=str(path))
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute):
            keywords = {k.arg for k in node.keywords}
            if node.func.attr in {"update", "bulk_update"} and "status" in keywords:
                found.append(f"{path.name}:{node.lineno} update(status=...)")
            if node.func.attr == "save":
                for keyword in node.keywords:
                    if keyword.arg == "update_fields" and "status" in ast.unparse(keyword.value):
                        found.append(f"{path.name}:{node.lineno} save(update_fields=status)")
            if node.func.attr == "bulk_update" and "status" in ast.unparse(node):
                found.append(f"{path.name}:{node.lineno} bulk_update(status)")
        elif isinstance(node, (ast.Assign, ast.AnnAssign, ast.AugAssign)):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            for target in targets:
                if isinstance(target, ast.Attribute) and target.attr == "status":
                    found.append(f"{path.name}:{node.lineno} .status = ...")
    return found


def test_only_the_transitions_module_writes_statuses() -> None:
    writes = [
        write
        for name, path in package_modules().items()
        if name != "django_mmc.transitions"
        for write in status_writes(path)
    ]
    assert writes == []


def test_the_status_write_scan_sees_each_kind_of_write(tmp_path: Path) -> None:
    sample = tmp_path / "sample.py"
    sample.write_text(
        "Notification.objects.filter(pk=1).update(status='READ')\n"
        "row.status = 'READ'\n"
        "row.save(update_fields=['status'])\n"
        "Notification.objects.filter(status='READ').update(checked_at=now)\n"
    )
    assert len(status_writes(sample)) == 3


@pytest.mark.parametrize("name", ["django_mmc.transitions", "django_mmc.policy",
                                  "django_mmc.validation", "django_mmc.consent",
                                  "django_mmc.dispatch"])
def test_the_layers_exist(name: str) -> None:
    assert name in package_modules()
