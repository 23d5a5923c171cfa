"""Benchmark reads through ``st.cache_data``, keyed by the viewer's scope.

The cache key is the database, the query's name, the viewer's user name, role,
centres and project and the query's parameters, so one viewer's rows are never
served to another. A miss
opens its own transaction, asks the permission layer for the scope again, runs the
package function (which writes its audit record) and commits.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import streamlit as st

from cohort.benchmark import (
    queries,
    queries_dose,
    queries_funnel,
    queries_outcome,
    queries_quality,
)
from cohort.permissions import Action, scope_for
from cohort.users import get_user
from dashboards.auth import Identity
from dashboards.ui.resources import config, factory

if TYPE_CHECKING:
    import pandas as pd  # type: ignore[import-untyped]

__all__ = ["QUERIES", "TTL_S", "read"]

#: Seconds a cached read is served before it is read again.
TTL_S = 300

#: name -> (function, action of its scope)
QUERIES: dict[str, tuple[Callable[..., pd.DataFrame], Action]] = {
    "recruitment_funnel": (queries.recruitment_funnel, Action.READ_AGGREGATES),
    "recruitment_over_time": (queries.recruitment_over_time, Action.READ_AGGREGATES),
    "completion": (queries.completion_by_timepoint, Action.READ_AGGREGATES),
    "followup": (queries.followup_status, Action.READ_AGGREGATES),
    "sites": (queries_quality.site_patients, Action.READ_AGGREGATES),
    "structures": (queries_quality.structure_completeness, Action.READ_AGGREGATES),
    "structure_matrix": (queries_quality.structure_matrix, Action.READ_PATIENTS),
    "unmapped": (queries_quality.unmapped_structures, Action.READ_AGGREGATES),
    "qa_warnings": (queries_quality.qa_warnings, Action.READ_AGGREGATES),
    "quarantine": (queries_quality.quarantine_counts, Action.READ_AGGREGATES),
    "toxicity_incidence": (queries_outcome.toxicity_incidence, Action.READ_AGGREGATES),
    "toxicity_funnel": (queries_funnel.toxicity_funnel, Action.READ_AGGREGATES),
    "prom_trajectory": (queries_outcome.prom_trajectory, Action.READ_AGGREGATES),
    "prom_deterioration": (queries_outcome.prom_deterioration, Action.READ_AGGREGATES),
    "dose_organs": (queries_dose.site_organs, Action.READ_AGGREGATES),
    "dose_schemes": (queries_dose.dose_schemes, Action.READ_AGGREGATES),
    "dose_distribution": (queries_dose.dose_distribution, Action.READ_AGGREGATES),
    "dvh_band": (queries_dose.dvh_band, Action.READ_AGGREGATES),
    "dose_over_time": (queries_dose.metric_over_time, Action.READ_AGGREGATES),
}


@st.cache_data(ttl=TTL_S, show_spinner=False, max_entries=512)
def _read(  # noqa: PLR0917
    database: str,
    name: str,
    username: str,
    role: str,
    centres: tuple[str, ...],
    project: str | None,
    params: tuple[tuple[str, Any], ...],
) -> pd.DataFrame:
    del database, role, centres, project  # part of the cache key only
    function, action = QUERIES[name]
    with factory().begin() as session:
        scope = scope_for(session, get_user(session, username), action)
        return function(session, scope, **dict(params))


def read(
    name: str, identity: Identity, project: str | None = None, **params: Any
) -> pd.DataFrame:
    """Return the cached result of benchmark query ``name`` for ``identity``."""
    return _read(
        config().database_url,
        name,
        identity.username,
        identity.role,
        tuple(identity.centres),
        project,
        tuple(sorted(params.items())),
    )
