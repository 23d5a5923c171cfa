"""The structure-mapping rules editor's reads, through the permission layer.

A global rule (no centre) is the managers'; a centre rule needs ``write`` at that
centre, as :func:`cohort.operations.import_mapping_rules` requires for saving it. The
preview shows only the structures of the centres the rule can touch.
"""

from __future__ import annotations

import csv
import io

from sqlalchemy.orm import Session

from cohort import audit
from cohort.centres import get_centre
from cohort.permissions import Action, scope_for
from cohort.users import resolve_user
from etl.mapping.naming import Rule, current_rules, parse_rules_csv
from etl.mapping.preview import RulePreview, loaded_names, preview_rule
from omop.cohort_tables import AppUser

__all__ = ["preview_mapping_rule", "rule_csv"]


def rule_csv(centre: str | None, pattern: str, kind: str, tg263_name: str) -> str:
    """Return one rule as the rules file's CSV (header and one line).

    Examples
    --------
    >>> rule_csv("HUS", "sydän*", "wildcard", "Heart").splitlines()[1]
    'HUS,sydän*,wildcard,Heart'
    """
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(["centre", "pattern", "kind", "tg263_name"])
    writer.writerow([centre or "", pattern, kind, tg263_name])
    return out.getvalue()


def preview_mapping_rule(
    session: Session, actor: AppUser | str, text: str
) -> tuple[Rule, RulePreview]:
    """Parse one rule (:func:`rule_csv`) and preview it on the loaded structures.

    Raises
    ------
    MappingError
        The rule is malformed (pattern, kind or TG-263 name).
    PermissionDeniedError
        A global rule without ``manage``; a centre rule without ``write`` there.
    """
    user = resolve_user(session, actor)
    (rule,) = parse_rules_csv(text, source="rule")
    manage = scope_for(session, user, Action.MANAGE)
    centres: list[str] | None = None
    if rule.centre is None:
        manage.require()
    else:
        centre = get_centre(session, rule.centre)
        if not manage.allowed:
            scope_for(session, user, Action.WRITE).require_centre(centre)
        centres = [str(centre.care_site_source_value)]
    names = loaded_names(session, centres)
    preview = preview_rule(rule, current_rules(session), names)
    audit.record(
        session,
        user.username,
        "mapping.preview",
        f"{len(preview.matched)} name(s) matched",
    )
    return rule, preview
