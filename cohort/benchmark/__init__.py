"""Centre benchmarking: pure statistics and the scoped, audited page queries.

The statistics (funnel limits, control charts, cumulative incidence, PROM
trajectories, case-mix, small-cell suppression) are pure modules; the read functions
the dashboards call are in :mod:`cohort.benchmark.queries` and its siblings.
"""

from __future__ import annotations

__all__: list[str] = []
