"""Synthetic cohorts with known truth.

- :mod:`cohort.simulate.demo_cohort`: the small lung cohort of the demo
  (:func:`simulate_cohort`, :func:`write_datasets`; names re-exported here);
- :mod:`cohort.simulate.national`: the national cohort of ``rtcohort simulate``
  (centres with their own practice, four sites, LKB toxicity truth, QLQ-C30
  trajectories), written as DICOM-RT and FHIR (:mod:`cohort.simulate.files`) or into
  OMOP through the owners' writers (:mod:`cohort.simulate.load`).
"""

from cohort.simulate.demo_cohort import (
    DEFAULT_CENTRES,
    LKB_PNEUMONITIS,
    ConsentPlan,
    SimulatedPatient,
    centre_codes,
    lkb_ntcp,
    phantom_spec,
    simulate_cohort,
    write_datasets,
)

__all__ = [
    "DEFAULT_CENTRES",
    "LKB_PNEUMONITIS",
    "ConsentPlan",
    "SimulatedPatient",
    "centre_codes",
    "lkb_ntcp",
    "phantom_spec",
    "simulate_cohort",
    "write_datasets",
]
