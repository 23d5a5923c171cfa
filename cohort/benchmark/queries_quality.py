"""Scoped, audited reads of data completeness: required structures, names, QA.

The protocol's required structures per treatment site are
:data:`REQUIRED_STRUCTURES` (TG-263 names). A consented patient of the site has a
structure *once* when a structure set holds exactly one ROI mapped to it, *more than
once* when one holds several, and *missing* otherwise.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from sqlalchemy import Select, Subquery, case, distinct, func, select
from sqlalchemy.orm import Session

from cohort import audit
from cohort.benchmark.view import centre_view, record_read
from cohort.consent_states import ConsentState
from cohort.errors import InvalidInputError
from cohort.permissions import Action, Scope
from etl.ingest.quarantine import held_counts
from etl.store.report import unmapped_names, warning_counts
from omop.cdm import CareSite, Person
from omop.cohort_tables import Enrolment
from omop.ingest_tables import Dvh, IngestDataset

if TYPE_CHECKING:
    import pandas as pd  # type: ignore[import-untyped]

__all__ = [
    "REQUIRED_STRUCTURES",
    "STATUS",
    "qa_warnings",
    "quarantine_counts",
    "site_patients",
    "structure_completeness",
    "structure_matrix",
    "unmapped_structures",
]

#: Required organs at risk per treatment site (TG-263), as the protocol lists them.
REQUIRED_STRUCTURES: dict[str, tuple[str, ...]] = {
    "breast": ("Heart", "A_LAD", "Lung_L", "Lung_R"),
    "prostate": ("Rectum", "Bladder", "Femur_Head_L", "Femur_Head_R"),
    "head_neck": ("Parotid_L", "Parotid_R", "SpinalCord", "Larynx"),
    "lung": ("Lungs", "Heart", "Esophagus", "SpinalCord"),
}

#: Cell values of the patient x structure matrix.
STATUS = ("missing", "once", "more than once")


def _required(site: str) -> tuple[str, ...]:
    try:
        return REQUIRED_STRUCTURES[site]
    except KeyError:
        known = ", ".join(REQUIRED_STRUCTURES)
        raise InvalidInputError(
            f"treatment site {site!r} has no required structures (known: {known})"
        ) from None


def _rois_per_set(site: str, centres: list[int] | Select[Any]) -> Subquery:
    """Per person, structure set and required structure: the ROIs mapped to it.

    Only persons consented for ``site`` at one of ``centres`` (ids, or a selection
    of them) count.
    """
    consented = select(Enrolment.person_id).where(
        Enrolment.state == ConsentState.CONSENTED.value,
        Enrolment.treatment_site == site,
        Enrolment.care_site_id.in_(centres),
    )
    return (
        select(
            Dvh.person_id.label("person_id"),
            Dvh.tg263_name.label("name"),
            func.count(distinct(Dvh.roi_number)).label("n"),
        )
        .join(IngestDataset, IngestDataset.dataset_id == Dvh.dataset_id)
        .where(Dvh.tg263_name.in_(_required(site)), Dvh.person_id.in_(consented))
        .group_by(
            Dvh.person_id, IngestDataset.structure_set_sop_instance_uid, Dvh.tg263_name
        )
        .subquery()
    )


def _rois_per_person(site: str, centre_ids: list[int]) -> Subquery:
    """Per person and required structure: the most ROIs one structure set maps."""
    per_set = _rois_per_set(site, centre_ids)
    return (
        select(per_set.c.person_id, per_set.c.name, func.max(per_set.c.n).label("n"))
        .group_by(per_set.c.person_id, per_set.c.name)
        .subquery()
    )


def site_patients(session: Session, scope: Scope) -> pd.DataFrame:
    """Return the consented patients of each treatment site in the visible centres.

    Returns
    -------
    DataFrame
        ``site, patients`` (sites with a required-structure list first by patients).
    """
    import pandas as pd

    view = centre_view(session, scope)
    rows = session.execute(
        select(Enrolment.treatment_site, func.count())
        .where(
            Enrolment.state == ConsentState.CONSENTED.value,
            Enrolment.care_site_id.in_(view.centre_ids),
        )
        .group_by(Enrolment.treatment_site)
    ).all()
    found = {str(s): int(n) for s, n in rows}
    df = pd.DataFrame(
        [{"site": s, "patients": found.get(s, 0)} for s in REQUIRED_STRUCTURES],
        columns=["site", "patients"],
    )
    record_read(session, scope, "sites", f"{len(found)} sites")
    return df.sort_values("patients", ascending=False, kind="stable").reset_index(
        drop=True
    )


def structure_completeness(
    session: Session, scope: Scope, *, site: str
) -> pd.DataFrame:
    """Return per centre and required structure the patients found once/missing/more.

    Returns
    -------
    DataFrame
        ``centre, structure, patients, once, more_than_once, missing``.
    """
    import pandas as pd

    view = centre_view(session, scope)
    names = _required(site)
    patients = dict(
        session.execute(
            select(Enrolment.care_site_id, func.count())
            .where(
                Enrolment.state == ConsentState.CONSENTED.value,
                Enrolment.treatment_site == site,
                Enrolment.care_site_id.in_(view.centre_ids),
            )
            .group_by(Enrolment.care_site_id)
        ).all()
    )
    best = _rois_per_person(site, view.centre_ids)
    found = session.execute(
        select(
            Person.care_site_id,
            best.c.name,
            func.sum(case((best.c.n == 1, 1), else_=0)),
            func.sum(case((best.c.n > 1, 1), else_=0)),
        )
        .join(Person, Person.person_id == best.c.person_id)
        .group_by(Person.care_site_id, best.c.name)
    ).all()
    counts = {(int(c), str(n)): (int(o or 0), int(m or 0)) for c, n, o, m in found}
    rows = []
    for site_id, total in sorted(patients.items(), key=lambda p: view.labels[p[0]]):
        for name in names:
            once, more = counts.get((int(site_id), name), (0, 0))
            rows.append(
                {"centre": view.labels[int(site_id)], "structure": name,
                 "patients": int(total), "once": once, "more_than_once": more,
                 "missing": int(total) - once - more}
            )  # fmt: skip
    columns = ["centre", "structure", "patients", "once", "more_than_once", "missing"]
    df = pd.DataFrame(rows, columns=columns)
    record_read(session, scope, "structures", f"site {site}: {len(df)} cells")
    return view.suppress(df, ["once", "more_than_once", "missing"])


def structure_matrix(session: Session, scope: Scope, *, site: str) -> pd.DataFrame:
    """Return the patient x required structure matrix of the scope's own centres.

    ``scope`` is a patient-read scope (``read_patients``) of centre staff; the read
    is audited with the persons shown. Cells are :data:`STATUS` values.

    Returns
    -------
    DataFrame
        ``pseudonym`` and one column per required structure.
    """
    import pandas as pd

    scope.require()
    if scope.action is not Action.READ_PATIENTS or scope.pseudonymised:
        raise scope.deny("the structure matrix needs centre patient access")
    names = _required(site)
    # One statement, one row per patient shown, run on the connection (no ORM
    # loading); each row becomes a plain tuple at once, which the garbage collector
    # stops tracking (ints and strings only), so 10,000s of Row objects are not
    # promoted to the oldest generation and a full collection does not follow.
    result = session.connection().execute(_matrix_statement(scope, site, names))
    rows = [tuple(row) for row in result]
    # Column by column (``zip(*rows)`` would make one tracked iterator per row).
    ids = [int(r[0]) for r in rows]
    frame = {"pseudonym": [str(r[1]) for r in rows]}
    for i, name in enumerate(names, start=2):
        frame[name] = [STATUS[min(int(r[i] or 0), 2)] for r in rows]
    audit.record(
        session, scope.username, "benchmark.structure_matrix",
        f"site {site}: {len(ids)} patients", ids,
    )  # fmt: skip
    return pd.DataFrame(frame, columns=["pseudonym", *names])


def _matrix_statement(scope: Scope, site: str, names: tuple[str, ...]) -> Select[Any]:
    """``person_id, pseudonym`` and per required structure the most ROIs one set maps.

    The persons are the consented patients of the site the scope shows, ordered by
    pseudonym; ROIs count only for those enrolled at one of the scope's centres (any
    centre when the scope is not bound to centres). A count is NULL when no structure
    set maps the structure.
    """
    centres = (
        sorted(scope.centre_ids)
        if scope.centre_ids
        else select(CareSite.care_site_id).where(
            CareSite.care_site_source_value.is_not(None)
        )
    )
    per_set = _rois_per_set(site, centres)
    best = (
        select(
            per_set.c.person_id,
            *(
                func.max(case((per_set.c.name == name, per_set.c.n))).label(f"n{i}")
                for i, name in enumerate(names)
            ),
        )
        .group_by(per_set.c.person_id)
        .subquery()
    )
    return (
        select(
            Person.person_id,
            Person.person_source_value,
            *(best.c[f"n{i}"] for i in range(len(names))),
        )
        .join(Enrolment, Enrolment.person_id == Person.person_id)
        .outerjoin(best, best.c.person_id == Person.person_id)
        .where(
            Enrolment.state == ConsentState.CONSENTED.value,
            Enrolment.treatment_site == site,
            scope.person_filter(Person.person_id),
        )
        .order_by(Person.person_source_value, Person.person_id)
    )


def unmapped_structures(session: Session, scope: Scope) -> pd.DataFrame:
    """Return the ROI names no rule maps (``centre, roi_name, structures``)."""
    import pandas as pd

    view = centre_view(session, scope)
    rows = []
    for u in unmapped_names(session):
        label = view.label_of_code(u.centre)
        if label is not None:
            rows.append({"centre": label, "roi_name": u.roi_name,
                         "structures": u.structures})  # fmt: skip
    df = pd.DataFrame(rows, columns=["centre", "roi_name", "structures"])
    record_read(session, scope, "unmapped", f"{len(df)} names")
    return view.suppress(df, ["structures"], ["centre"])


def qa_warnings(session: Session, scope: Scope) -> pd.DataFrame:
    """Return the QA warnings of loaded datasets (``centre, code, datasets``)."""
    import pandas as pd

    view = centre_view(session, scope)
    rows = []
    for centre, code, n in warning_counts(session):
        label = view.label_of_code(centre)
        if label is not None:
            rows.append({"centre": label, "code": code, "datasets": n})
    df = pd.DataFrame(rows, columns=["centre", "code", "datasets"])
    record_read(session, scope, "qa_warnings", f"{len(df)} cells")
    return view.suppress(df, ["datasets"], ["centre"])


def quarantine_counts(session: Session, scope: Scope) -> pd.DataFrame:
    """Return the held quarantine items by reason (``centre, reason_code, items``)."""
    import pandas as pd

    view = centre_view(session, scope)
    rows = []
    for centre, reason, n in held_counts(session):
        label = view.label_of_code(centre)
        if label is not None:
            rows.append({"centre": label, "reason_code": reason, "items": n})
    df = pd.DataFrame(rows, columns=["centre", "reason_code", "items"])
    record_read(session, scope, "quarantine", f"{len(df)} cells")
    return view.suppress(df, ["items"], ["centre"])
