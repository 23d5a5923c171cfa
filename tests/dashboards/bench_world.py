"""Outcomes added to the web world for the benchmark pages (production writers).

HUS-1001 (RT course, breast phantom: Heart and Lung_L mapped once) has a CTCAE
grading at m3 and a contact on 2025-05-01; HUS-1002 a QLQ-C30 at m3 and a death on
2025-03-01; TAYS-2001 no contact (lost by 2025-06-01).
"""

from __future__ import annotations

import datetime

from web_world import World

TODAY = datetime.date(2025, 6, 1)


def add_outcomes(world: World) -> World:
    from cohort.vital import record_death, record_last_contact
    from omop.engine import make_engine, session_factory
    from tests.cohort.cohort_helpers import prom, toxicity

    engine = make_engine(world.url)
    hus1, hus2 = world.person_ids["HUS-1001"], world.person_ids["HUS-1002"]
    try:
        with session_factory(engine).begin() as session:
            toxicity(session, hus1, datetime.date(2025, 4, 1), "m3")
            prom(session, hus2, "m3", datetime.date(2025, 2, 1))
            record_last_contact(session, hus1, datetime.date(2025, 5, 1))
            record_death(session, hus2, datetime.date(2025, 3, 1))
    finally:
        engine.dispose()
    return world
