"""Sphinx configuration of the django_mmc documentation.

Build with warnings as errors, exactly as ``tox -e docs`` does::

    sphinx-build -W --keep-going -b html docs docs/_build/html

autodoc imports the package, so Django is set up first with the test suite's
settings. Importing the models does not open a database connection.
"""

from __future__ import annotations

import os
import sys
import warnings
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tests.settings")

import django  # noqa: E402

django.setup()

import django_mmc  # noqa: E402

# The dialogue-life diagram is drawn by a script, from the code's statuses.
sys.path.insert(0, str(ROOT / "docs" / "diagrams"))
import dialogue_life  # noqa: E402

dialogue_life.write()

# -- Project -----------------------------------------------------------------

project = "django_mmc"
copyright = "django_mmc contributors"  # noqa: A001
release = django_mmc.__version__
version = ".".join(release.split(".")[:2])

# -- General -------------------------------------------------------------------

extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.viewcode",
    "sphinx_autodoc_typehints",
]

exclude_patterns = ["_build", "snippets"]
templates_path: list[str] = []
root_doc = "index"
language = "en"

# sphinx-autodoc-typehints calls a Sphinx API that Sphinx 9 deprecates; that is the
# extension's business, not a problem of these docs, so keep it out of the output.
warnings.filterwarnings(
    "ignore", message=r".*sphinx_autodoc_typehints.*is deprecated", category=DeprecationWarning
)

# Signatures stay readable: the type hints move into the descriptions.
autodoc_member_order = "bysource"
autodoc_typehints = "description"
autodoc_default_options = {"show-inheritance": True}
typehints_fully_qualified = False
always_document_param_types = False
typehints_document_rtype = True

# -- HTML ------------------------------------------------------------------------

html_theme = "furo"
html_title = f"django_mmc {release}"
html_show_sourcelink = False


# -- Local extensions ----------------------------------------------------------------


def _field_lines(model: type) -> list[str]:
    """A bullet list of a model's concrete fields, from the model itself, so
    the reference cannot drift from the code."""

    lines = ["", ".. rubric:: Fields", ""]
    for field in model._meta.get_fields():
        if not getattr(field, "concrete", False) or field.auto_created:
            continue
        kind = type(field).__name__
        if field.is_relation and field.related_model is not None:
            kind = f"{kind} to ``{field.related_model._meta.object_name}``"
        text = str(field.verbose_name)
        if field.help_text:
            text = f"{text}: {str(field.help_text).rstrip('.')}"
        line = f"* ``{field.name}`` ({kind}): {text}."
        if field.choices:
            values = ", ".join(f"``{value}``" for value, _label in field.choices)
            line += f" One of {values}."
        lines.append(line)
    lines.append("")
    return lines


def _add_model_fields(app, what, name, obj, options, lines):  # noqa: ANN001
    from django.db import models

    if what == "class" and isinstance(obj, type) and issubclass(obj, models.Model):
        if not obj._meta.abstract:
            lines.extend(_field_lines(obj))


def _hide_model_signature(app, what, name, obj, options, signature, return_annotation):  # noqa: ANN001
    """Models are not constructed by hand here: ``(*args, **kwargs)`` says nothing."""
    from django.db import models

    if what == "class" and isinstance(obj, type) and issubclass(obj, models.Model):
        return "", None
    return None


def setup(app):  # noqa: ANN001
    app.connect("autodoc-process-docstring", _add_model_fields)
    app.connect("autodoc-process-signature", _hide_model_signature)
    # ``.. setting:: KEY`` and ``:setting:`KEY```, ``.. check:: ID`` and ``:check:`ID```.
    app.add_object_type("setting", "setting", indextemplate="pair: %s; MMC setting")
    app.add_object_type("check", "check", indextemplate="pair: %s; system check")
    return {"parallel_read_safe": True}
