"""Statistics of the centre benchmarking dashboards (pure: no database).

Funnel plots of observed/expected with exact Poisson limits (:mod:`.funnel`), the
case-mix model that gives the expected counts (:mod:`.casemix`), individuals control
charts (:mod:`.control_chart`), cumulative incidence with death as a competing risk
(:mod:`.incidence`), PROM trajectories and deterioration (:mod:`.prom`) and
small-cell suppression (:mod:`.suppression`).
"""

from __future__ import annotations

from cohort.benchmark.casemix import DOSE_ADJUSTED_LABEL, design_matrix, expected_counts
from cohort.benchmark.control_chart import XMR_FACTOR, individuals_chart
from cohort.benchmark.errors import BenchmarkInputError
from cohort.benchmark.funnel import funnel_limits, funnel_points, level_suffix
from cohort.benchmark.incidence import AJ_LABEL, KM_LABEL, cumulative_incidence
from cohort.benchmark.prom import deterioration_share, scale_direction, trajectory
from cohort.benchmark.suppression import MIN_CELL_COUNT, suppress_small_cells

__all__ = [
    "AJ_LABEL",
    "DOSE_ADJUSTED_LABEL",
    "KM_LABEL",
    "MIN_CELL_COUNT",
    "XMR_FACTOR",
    "BenchmarkInputError",
    "cumulative_incidence",
    "design_matrix",
    "deterioration_share",
    "expected_counts",
    "funnel_limits",
    "funnel_points",
    "individuals_chart",
    "level_suffix",
    "scale_direction",
    "suppress_small_cells",
    "trajectory",
]
