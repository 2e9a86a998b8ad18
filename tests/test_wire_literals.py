"""No wire literal outside the contract and the dialect.

Paths, query parameters (``filter[...]``, ``page[...]``), resource type
names and event names belong to :mod:`django_mmc.contract` and
:mod:`django_mmc.dialect` (and the sandbox, which plays the platform), so a
site whose platform differs changes ``MMC['CONTRACT']``, never the package.
This test reads every other module's string literals (docstrings aside) and
fails on one that names the wire."""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

from django_mmc import contract

PACKAGE = Path(__file__).resolve().parent.parent / "django_mmc"
#: Where the wire's words may be spelled.
ALLOWED = {"contract.py", "dialect.py"}
ALLOWED_DIRS = {"sandbox", "migrations"}

TYPE_NAMES = frozenset(getattr(contract, n) for n in dir(contract) if n.startswith("TYPE_"))
EVENT_NAMES = frozenset(e.value for e in contract.EventType)
PATH_ROOTS = frozenset(
    "/" + getattr(contract, n).strip("/").split("/")[0]
    for n in dir(contract) if n.endswith("_PATH") or n == "ORGANISATION_PREFIX")
#: Calls whose string argument is a resource type.
TYPE_CALLS = {"resource_document", "identifier", "_resource", "linked"}


def scanned_modules() -> list[Path]:
    return [
        path for path in sorted(PACKAGE.rglob("*.py"))
        if path.name not in ALLOWED
        and ALLOWED_DIRS.isdisjoint(path.relative_to(PACKAGE).parts)
    ]


def _docstrings(tree: ast.AST) -> set[int]:
    ids = set()
    for node in ast.walk(tree):
        if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)):
            body = node.body
            if body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant):
                ids.add(id(body[0].value))
    return ids


def _type_context(tree: ast.AST) -> Iterator[ast.Constant]:
    """String constants used where a resource type goes."""
    for node in ast.walk(tree):
        if isinstance(node, ast.Dict):
            for key, value in zip(node.keys, node.values, strict=True):
                if isinstance(key, ast.Constant) and key.value == "type" and \
                        isinstance(value, ast.Constant):
                    yield value
        elif isinstance(node, ast.Call):
            func = node.func
            name = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")
            if name in TYPE_CALLS:
                yield from (a for a in node.args if isinstance(a, ast.Constant))
        elif isinstance(node, ast.Compare):
            sides = [node.left, *node.comparators]
            if any("type" in ast.unparse(side) for side in sides):
                yield from (s for s in sides if isinstance(s, ast.Constant))


def wire_literals(source: str) -> list[tuple[int, str]]:
    """``(line, literal)`` of every wire literal in ``source``."""
    tree = ast.parse(source)
    docstrings = _docstrings(tree)
    found = []
    for node in ast.walk(tree):
        if not isinstance(node, ast.Constant) or not isinstance(node.value, str) or \
                id(node) in docstrings:
            continue
        text = node.value
        if "filter[" in text or "page[" in text or text in EVENT_NAMES or (
                text.startswith("/") and "/" + text.strip("/").split("/")[0] in PATH_ROOTS):
            found.append((node.lineno, text))
    found += [(c.lineno, c.value) for c in _type_context(tree) if c.value in TYPE_NAMES]
    return sorted(set(found))


def test_no_module_names_the_wire() -> None:
    offenders = {
        str(path.relative_to(PACKAGE)): hits
        for path in scanned_modules()
        if (hits := wire_literals(path.read_text(encoding="utf-8")))
    }
    assert offenders == {}, (
        "wire literals outside django_mmc.contract/django_mmc.dialect: read them from "
        f"the dialect (mmc_settings.dialect) or the contract instead: {offenders}")


def test_the_scan_covers_the_layers() -> None:
    scanned = {str(p.relative_to(PACKAGE)) for p in scanned_modules()}
    for module in ("models/notifications.py", "tasks.py", "webhooks/views.py",
                   "workers/notifications.py", "admin/notifications.py",
                   "client/__init__.py", "client/jsonapi.py", "processing.py"):
        assert module in scanned
    assert not {"contract.py", "dialect.py"} & scanned
    assert not any(p.startswith("sandbox/") for p in scanned)


@pytest.mark.parametrize("source, literal", [
    ('PATH = "/notifications"', "/notifications"),
    ('url = f"/dialogue-agents/{agent}/dialogues"', "/dialogue-agents/"),
    ('params = {"filter[id]": ids}', "filter[id]"),
    ('params = {"page[size]": 100}', "page[size]"),
    ('if event.event_type == "message.received": pass', "message.received"),
    ('doc = {"type": "notifications", "id": "1"}', "notifications"),
    ('resource_document("dialogues", attributes={})', "dialogues"),
    ('if obj["type"] != "events": pass', "events"),
])
def test_the_scan_sees_each_kind_of_literal(source: str, literal: str) -> None:
    assert [text for _, text in wire_literals(source)] == [literal]


@pytest.mark.parametrize("source", [
    'related_name = "notifications"',
    'def f():\n    """Polls with filter[id] and page[number]."""',
    'fields = ("files", "messages")',
    'path = "/admin/"',
])
def test_the_scan_leaves_plain_words_alone(source: str) -> None:
    assert wire_literals(source) == []
