"""The examples in the packages' docstrings run and give what they show.

Docstring examples are documentation a newcomer copies; one that no longer runs is
a wrong document. Each module's examples run with :mod:`doctest` (the Alembic
environment and revisions are left out: they run only inside Alembic).
"""

from __future__ import annotations

import doctest
import importlib
import pkgutil

import pytest

PACKAGES = ("omop", "etl", "cohort", "instruments", "ntcp", "rtcohort")
EXTRA = ("dashboards.launch",)


def _modules() -> list[str]:
    names = list(EXTRA)
    for package in PACKAGES:
        root = importlib.import_module(package)
        names.append(package)
        for info in pkgutil.walk_packages(root.__path__, prefix=f"{package}."):
            if not info.name.startswith("omop.migrations"):
                names.append(info.name)
    return sorted(names)


MODULES = _modules()


def test_every_package_has_examples() -> None:
    finder = doctest.DocTestFinder()
    with_examples = {
        name.split(".")[0]
        for name in MODULES
        if any(t.examples for t in finder.find(importlib.import_module(name)))
    }
    assert set(PACKAGES) <= with_examples


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples(name: str) -> None:
    module = importlib.import_module(name)
    failed, _ = doctest.testmod(module, optionflags=doctest.ELLIPSIS, report=True)
    assert failed == 0, f"{failed} docstring example(s) of {name} fail (output above)"
