"""NTCP models: LKB, logistic and time-to-event, with validation.

The estimators are loaded lazily (``from ntcp import LKBModel``) so that importing a
light submodule such as :mod:`ntcp.errors` or :mod:`ntcp.endpoints` stays fast.
"""

from __future__ import annotations

import importlib
from typing import Any

__all__ = [
    "DVHSet",
    "LKBModel",
    "LogisticDoseModel",
    "MultivariableLogisticModel",
    "get_model",
    "list_models",
    "parse_endpoint",
    "simulate_lkb_cohort",
]

_WHERE = {
    "DVHSet": "ntcp.geud",
    "LKBModel": "ntcp.lkb",
    "LogisticDoseModel": "ntcp.logistic",
    "MultivariableLogisticModel": "ntcp.logistic",
    "get_model": "ntcp.registry",
    "list_models": "ntcp.registry",
    "parse_endpoint": "ntcp.endpoints",
    "simulate_lkb_cohort": "ntcp.simulate",
}


def __getattr__(name: str) -> Any:
    if name in _WHERE:
        return getattr(importlib.import_module(_WHERE[name]), name)
    raise AttributeError(f"module 'ntcp' has no attribute {name!r}")
