"""Operations of the platform, permission-checked and audited: (session, actor, ...).

Mapping-rule imports, the quarantine list, the user list and the audit trail. Like
:mod:`cohort.service`, each function checks :func:`cohort.permissions.scope_for`
first (refusals are audited there), writes its audit record, and never commits. The
import of DICOM is checked by :func:`require_centre_write`, which the wiring passes
to ``etl.ingest.run`` (``etl`` cannot import ``cohort``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy.orm import Session

from cohort import audit
from cohort.audit_check import AuditCheck
from cohort.centres import add_centre, centre_codes, get_centre
from cohort.permissions import Action, scope_for
from cohort.users import UserRow, add_user, list_users, resolve_user
from etl.mapping.naming import Rule, current_rules, import_rules
from etl.mapping.remap import RemapReport, remap_loaded, rule_scope
from omop.cdm import CareSite
from omop.cohort_tables import AppUser
from omop.ingest_tables import ProjectTrigger, QuarantineItem

__all__ = [
    "MappingImport",
    "add_account",
    "add_centre_as",
    "add_project_trigger",
    "import_mapping_rules",
    "quarantine_items",
    "require_centre_write",
    "users_list",
    "verify_audit",
]


def require_centre_write(session: Session, actor: AppUser | str, centre: str) -> None:
    """Refuse (audited) unless ``actor`` may write patient data of ``centre``.

    Raises
    ------
    PermissionDeniedError
        When the user may not write there.
    UnknownCentreError
        For an unknown centre code.
    """
    user = resolve_user(session, actor)
    scope_for(session, user, Action.WRITE).require_centre(get_centre(session, centre))


@dataclass(frozen=True)
class MappingImport:
    """What a rule import did: the new rule-set version and the re-mapping."""

    version: int
    rules: int
    report: RemapReport


def import_mapping_rules(
    session: Session,
    actor: AppUser | str,
    rules: Sequence[Rule],
    *,
    source: str,
    text: str,
) -> MappingImport:
    """Import mapping rules as a new version and re-map the loaded structures.

    Only the structures the rules can change are re-mapped: those of the centres
    the file names, or every centre when a rule is global
    (:func:`etl.mapping.remap.rule_scope`). The report lists each change (centre,
    ROI name, old -> new TG-263 name) and the metrics recomputed. Global rules (no
    centre) need the ``manage`` permission; a file of centre rules needs ``manage``
    or ``write`` at every centre it names. Audited as ``mapping.import``.

    Raises
    ------
    PermissionDeniedError
        When the user may not change the rules of a centre the file names.
    """
    user = resolve_user(session, actor)
    manage = scope_for(session, user, Action.MANAGE)
    if not manage.allowed:
        centres = {r.centre for r in rules}
        if None in centres or not centres:
            manage.require()
        write = scope_for(session, user, Action.WRITE)
        for code in sorted(c for c in centres if c is not None):
            write.require_centre(get_centre(session, code))
    version = import_rules(
        session, list(rules), source=source, actor=user.username, text=text
    )
    scope = rule_scope(rules)
    report = remap_loaded(session, current_rules(session), centres=scope)
    audit.record(
        session,
        user.username,
        "mapping.import",
        f"version {version} from {source}: {len(rules)} rule(s) for "
        f"{', '.join(scope) if scope is not None else 'every centre'}; "
        f"{report.structures_changed} structures re-mapped, "
        f"{report.metrics_rewritten} metrics recomputed",
    )
    return MappingImport(version, len(rules), report)


def quarantine_items(
    session: Session, actor: AppUser | str, *, include_released: bool = False
) -> list[QuarantineItem]:
    """Return the quarantine items the user may see (audited).

    Every item (``include_released``, or all centres) needs ``manage``; otherwise
    the held items of the centres the user may write.
    """
    from etl.ingest.quarantine import list_items

    user = resolve_user(session, actor)
    manage = scope_for(session, user, Action.MANAGE)
    if include_released:
        manage.require()
    items = list_items(session, include_released=include_released)
    if not manage.allowed:
        write = scope_for(session, user, Action.WRITE).require()
        names = centre_codes(session)
        codes = {names[i] for i in write.centre_ids or frozenset() if i in names}
        items = [i for i in items if i.centre in codes]
    audit.record(
        session,
        user.username,
        "quarantine.read",
        f"{len(items)} item(s)" + (" incl. released" if include_released else ""),
    )
    return items


def users_list(session: Session, actor: AppUser | str) -> list[UserRow]:
    """Return every account (managers only; audited)."""
    user = resolve_user(session, actor)
    scope_for(session, user, Action.MANAGE).require()
    rows = list_users(session)
    audit.record(session, user.username, "users.read", f"{len(rows)} users")
    return rows


def add_centre_as(
    session: Session, actor: AppUser | str, code: str, name: str | None = None
) -> CareSite:
    """Add a centre (managers only; audited as ``centre.add``)."""
    user = resolve_user(session, actor)
    scope_for(session, user, Action.MANAGE).require()
    site = add_centre(session, code, name)
    audit.record(session, user.username, "centre.add", str(site.care_site_source_value))
    return site


def add_account(
    session: Session,
    actor: AppUser | str,
    username: str,
    *,
    role: str,
    centres: Sequence[str],
    password: str,
    email: str | None = None,
) -> AppUser:
    """Add a platform account with a password and e-mail (managers only; audited)."""
    user = resolve_user(session, actor)
    scope_for(session, user, Action.MANAGE).require()
    added = add_user(session, username, role, centres, password, email=email)
    audit.record(
        session, user.username, "users.add", f"{username} ({role}) {','.join(centres)}"
    )
    return added


def verify_audit(session: Session, actor: AppUser | str) -> tuple[AuditCheck, str]:
    """Check the audit chain (``read_audit`` only); return the check and its head."""
    user = resolve_user(session, actor)
    scope_for(session, user, Action.READ_AUDIT).require()
    return audit.verify(session), audit.last_hash(session)


def add_project_trigger(
    session: Session,
    actor: AppUser | str,
    project_code: str,
    kind: str,
    pattern: str,
    *,
    keyword: str | None = None,
    centre: str | None = None,
) -> ProjectTrigger:
    """Add a rule attaching arriving datasets to a project (managers only; audited)."""
    from etl.ingest.triggers import add_trigger

    user = resolve_user(session, actor)
    scope_for(session, user, Action.MANAGE).require()
    row = add_trigger(
        session, project_code, kind, pattern, keyword=keyword, centre=centre
    )
    audit.record(
        session,
        user.username,
        "trigger.add",
        f"{project_code} {row.kind} {row.pattern!r}"
        + (f" centre {row.centre}" if row.centre else ""),
    )
    return row
