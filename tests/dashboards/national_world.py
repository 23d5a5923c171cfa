"""A small simulated national cohort for the funnel and NTCP explorer tests.

Built through the production writers (``cohort.simulate.load``: consent, the RT
dataset by ``etl.store.load.load_dataset``, CTCAE gradings, QLQ-C30, vital status):
three centres of lung patients (known seed), one account per role, and a project
``LUNGX`` holding every consented patient with ``researcher-in`` as analyst;
``researcher-out`` belongs to no project. The simulation's truth stays in
:attr:`National.cohort` for independent expectations. :func:`build_national` with
``params=HN_PARAMS, project=HN_PROJECT`` builds the same world of head and neck
patients (project ``HNX``).
"""

from __future__ import annotations

import datetime
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from web_world import PASSWORD, World

PROJECT = "LUNGX"
PARAMS = {"centres": 3, "patients": 20, "seed": 11, "years": 3.0,
          "recruitment": 0.95, "sites": ("lung",)}  # fmt: skip
HN_PROJECT = "HNX"
HN_PARAMS = {"centres": 3, "patients": 20, "seed": 5, "years": 3.0,
             "recruitment": 0.95, "sites": ("head_neck",)}  # fmt: skip
ACCOUNTS = {
    "viewer-tays": ("viewer", ["TAYS"]),
    "clinician-hus": ("clinician", ["HUS"]),
    "researcher-in": ("researcher", []),
    "researcher-out": ("researcher", []),
    "national-admin": ("admin", []),
}


@dataclass
class National(World):
    cohort: Any = None


def build_national(
    url: str,
    data: Path,
    params: dict[str, Any] | None = None,
    project: str = PROJECT,
) -> National:
    from sqlalchemy import select

    from cohort.projects import add_member, attach, create_project
    from cohort.simulate.national import simulate_national
    from cohort.simulate.params import SimulationParams
    from cohort.simulate.run import load_cohort
    from cohort.users import add_user
    from etl.deid.keys import load_key, new_key, write_key
    from omop.cohort_tables import Enrolment
    from omop.database import upgrade
    from omop.engine import make_engine, session_factory
    from omop.filestore import FileStore
    from rtcohort.wiring import after_upgrade

    cohort = simulate_national(SimulationParams(**(params or PARAMS)), samples=256)
    world = National(url, data, data / "keys", cohort=cohort)
    engine = make_engine(url)
    try:
        upgrade(engine)
        after_upgrade(engine)
        keys = {}
        for code in sorted({p.code for p in cohort.practices}):
            write_key(new_key(code), world.key_dir / f"{code}.key")
            keys[code] = load_key(world.key_dir / f"{code}.key", code)
        factory = session_factory(engine)
        load_cohort(factory, cohort, keys=keys, store=FileStore(data / "files"))
        today = datetime.datetime.now(datetime.UTC).date()
        with factory.begin() as session:
            for name, (role, centres) in ACCOUNTS.items():
                add_user(session, name, role, centres, PASSWORD)
            create_project(
                session, project, name=f"{project} toxicity", protocol="P-1",
                data_controller="HUS", expires_on=datetime.date(2099, 1, 1),
                today=today,
            )  # fmt: skip
            add_member(session, project, "researcher-in", "analyst", today=today)
            consented = session.scalars(
                select(Enrolment.person_id).where(Enrolment.state == "consented")
            ).all()
            attach(session, project, consented, actor="test", today=today)
    finally:
        engine.dispose()
    return world
