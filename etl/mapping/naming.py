"""Structure-name mapping: local ROI names to TG-263 names with versioned rules.

Rules come from CSV files (columns ``centre`` — empty for global —, ``pattern``,
``kind`` = ``exact`` | ``wildcard`` | ``regex``, ``tg263_name``). Each import is a new
version of the rule set; the effective rule for a ``(centre, kind, pattern)`` is the one
of the newest version, and an empty ``tg263_name`` removes it.

Names and patterns are compared after normalisation: case folded, diacritics removed
(``sydän`` = ``sydan``, ``hjärta`` = ``hjarta``, ``højre`` = ``hojre``), ``_`` and
``-`` read as blanks, runs of blanks collapsed (regular expressions see the same
normalised name). Precedence:
a centre's own rules before global rules; within each, exact before wildcard (``*``
any run, ``?`` one character; the pattern with more literal characters wins) before
regular expressions (full match). A name no rule maps but which is itself a TG-263
name (ignoring case) maps to it. Names nothing maps get suggestions by fuzzy match.
"""

from __future__ import annotations

import csv
import datetime
import difflib
import hashlib
import io
import re
import unicodedata
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from enum import StrEnum
from functools import cache
from importlib import resources

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from etl.dicom.enums import RTROIInterpretedType, normalise
from etl.errors import EtlError
from etl.mapping.targets import tg263_target_name
from omop.ingest_tables import MappingRule, MappingRuleset
from omop.vocab.registry import load_registry

__all__ = [
    "DEFAULT_RULES_FILE",
    "Mapped",
    "MappingError",
    "MatchKind",
    "Rule",
    "RuleSet",
    "current_rules",
    "default_rules_text",
    "ensure_default_rules",
    "import_rules",
    "imported_version",
    "is_target",
    "normalise_name",
    "parse_rules_csv",
    "structure_concept_id",
    "suggest",
    "tg263_names",
]

DEFAULT_RULES_FILE = "mapping_rules_default.csv"
_TRANSLIT = str.maketrans({"ø": "o", "æ": "ae", "ß": "ss", "đ": "d", "ł": "l"})
_TARGET_PREFIXES = ("ptv", "ctv", "gtv", "itv")
_TARGET_TYPES = {
    RTROIInterpretedType.PTV,
    RTROIInterpretedType.CTV,
    RTROIInterpretedType.GTV,
    "ITV",  # not a defined term; some vendors use it
    RTROIInterpretedType.TREATED_VOLUME,
    RTROIInterpretedType.IRRAD_VOLUME,
}


class MappingError(EtlError, ValueError):
    """A rule file or rule is malformed (the message names line and field)."""


class MatchKind(StrEnum):
    """How a rule's pattern matches."""

    EXACT = "exact"
    WILDCARD = "wildcard"
    REGEX = "regex"


def normalise_name(name: str) -> str:
    """Case-fold, strip diacritics and collapse blanks.

    Examples
    --------
    >>> normalise_name("  Sydän ") == normalise_name("SYDAN")
    True
    >>> normalise_name("Højre  Lunge"), normalise_name("Lung_L")
    ('hojre lunge', 'lung l')
    """
    text = unicodedata.normalize("NFKD", name.casefold().translate(_TRANSLIT))
    text = "".join(c for c in text if not unicodedata.combining(c))
    return " ".join(text.replace("_", " ").replace("-", " ").split())


@dataclass(frozen=True)
class Rule:
    """One mapping rule (``centre`` None: global)."""

    centre: str | None
    pattern: str
    kind: MatchKind
    tg263_name: str
    rule_id: int | None = None

    def compiled(self) -> re.Pattern[str]:
        """Return the rule as a regular expression on normalised names."""
        if self.kind is MatchKind.REGEX:
            return re.compile(self.pattern, re.IGNORECASE)
        text = normalise_name(self.pattern)
        if self.kind is MatchKind.EXACT:
            return re.compile(re.escape(text))
        parts = ["." if c == "?" else ".*" if c == "*" else re.escape(c) for c in text]
        return re.compile("".join(parts))

    @property
    def literal_chars(self) -> int:
        """Literal characters of a wildcard pattern (more: more specific)."""
        return sum(1 for c in self.pattern if c not in "*?")


@dataclass(frozen=True)
class Mapped:
    """Result of mapping one name."""

    roi_name: str
    tg263_name: str | None
    rule: Rule | None
    via: str  # "rule", "tg263-name" or "unmapped"


@cache
def tg263_names() -> tuple[str, ...]:
    """Every TG-263 name of the vocabulary (registry codes)."""
    return tuple(sorted(code for vocab, code in load_registry() if vocab == "TG263"))


@cache
def _tg263_by_normal() -> dict[str, str]:
    return {normalise_name(n): n for n in tg263_names()}


def structure_concept_id(tg263_name: str | None) -> int:
    """Return our concept id of a TG-263 name (``_PRV05`` -> ``_PRVxx``), else 0."""
    if not tg263_name:
        return 0
    registry = load_registry()
    for candidate in (tg263_name, re.sub(r"\d+$", "xx", tg263_name)):
        found = registry.get(("TG263", candidate))
        if found is not None:
            return found
    return 0


def is_target(
    tg263_name: str | None,
    interpreted_type: RTROIInterpretedType | str | None = None,
) -> bool:
    """Whether a structure is a target (PTV, CTV, GTV, ITV by name or type)."""
    if interpreted_type and (
        normalise(RTROIInterpretedType, interpreted_type) in _TARGET_TYPES
    ):
        return True
    return bool(tg263_name) and str(tg263_name).lower().startswith(_TARGET_PREFIXES)


class RuleSet:
    """The effective rules, compiled, with the precedence of the module notes."""

    def __init__(self, rules: Iterable[Rule], version: int = 0) -> None:
        self.version = version
        self.rules = tuple(r for r in rules if r.tg263_name)
        self._compiled = [(r, r.compiled()) for r in self.rules]
        self._levels: dict[str | None, list[list[tuple[Rule, re.Pattern[str]]]]] = {}

    def _level(self, centre: str | None) -> list[list[tuple[Rule, re.Pattern[str]]]]:
        """Return the rules by precedence level for ``centre`` (once per centre)."""
        known = self._levels.get(centre)
        if known is not None:
            return known
        levels: list[list[tuple[Rule, re.Pattern[str]]]] = []
        scopes = ([centre.upper()] if centre else []) + [None]
        for scope in scopes:
            for kind in MatchKind:
                levels.append(
                    [
                        (r, c)
                        for r, c in self._compiled
                        if r.kind is kind
                        and (r.centre.upper() if r.centre else None) == scope
                    ]
                )
        self._levels[centre] = levels
        return levels

    def map(self, roi_name: str, centre: str | None = None) -> Mapped:
        """Map one ROI name (see the module notes for precedence).

        Examples
        --------
        >>> rs = RuleSet([Rule(None, "sydän", MatchKind.EXACT, "Heart"),
        ...               Rule(None, "lung*", MatchKind.WILDCARD, "Lungs"),
        ...               Rule(None, "lung?l", MatchKind.WILDCARD, "Lung_L")])
        >>> rs.map("SYDAN").tg263_name, rs.map("Lung L").tg263_name
        ('Heart', 'Lung_L')
        """
        name = normalise_name(roi_name)
        for level in self._level(centre):
            hits = [(r, c) for r, c in level if c.fullmatch(name)]
            if hits:
                hits.sort(key=lambda rc: (-rc[0].literal_chars, rc[0].rule_id or 0))
                rule = hits[0][0]
                return Mapped(roi_name, rule.tg263_name, rule, "rule")
        same = _tg263_by_normal().get(name)
        if (
            same is None
            and structure_concept_id(roi_name.strip())
            and re.search(r"\d+$", roi_name.strip())
        ):
            same = roi_name.strip()  # e.g. SpinalCord_PRV05 (TG-263 SpinalCord_PRVxx)
        if same is None:
            same = tg263_target_name(roi_name)  # PTV_High, CTVn_7000 (a grammar)
        if same is not None:
            return Mapped(roi_name, same, None, "tg263-name")
        return Mapped(roi_name, None, None, "unmapped")


def suggest(roi_name: str, n: int = 3) -> list[str]:
    """Return up to ``n`` TG-263 names close to ``roi_name`` (fuzzy match).

    Examples
    --------
    >>> "SpinalCord" in suggest("spinal_cord")
    True
    """
    by_normal = _tg263_by_normal()
    key = normalise_name(roi_name).replace(" ", "_")
    close = difflib.get_close_matches(key, list(by_normal), n=n, cutoff=0.5)
    return [by_normal[c] for c in close]


def parse_rules_csv(text: str, source: str = "rules.csv") -> list[Rule]:
    """Parse a rule file; raise :class:`MappingError` naming line and field."""
    reader = csv.DictReader(io.StringIO(text.lstrip("\ufeff")))
    needed = {"centre", "pattern", "kind", "tg263_name"}
    missing = needed - set(reader.fieldnames or ())
    if missing:
        raise MappingError(f"{source}: missing column(s) {', '.join(sorted(missing))}")
    known = {normalise_name(n) for n in tg263_names()}
    rules: list[Rule] = []
    for line, row in enumerate(reader, start=2):
        pattern = (row["pattern"] or "").strip()
        if not pattern:
            raise MappingError(f"{source}: line {line}: pattern is empty")
        try:
            kind = MatchKind((row["kind"] or "").strip().lower())
        except ValueError:
            raise MappingError(
                f"{source}: line {line}: kind {row['kind']!r}: use exact|wildcard|regex"
            ) from None
        target = (row["tg263_name"] or "").strip()
        if (
            target
            and normalise_name(re.sub(r"\d+$", "xx", target)) not in known
            and (normalise_name(target) not in known)
            and tg263_target_name(target) != target
        ):
            hint = ", ".join(suggest(target)) or "none"
            raise MappingError(
                f"{source}: line {line}: tg263_name {target!r} is not a TG-263 name "
                f"(close: {hint})"
            )
        centre = (row["centre"] or "").strip().upper() or None
        rule = Rule(centre, pattern, kind, target)
        try:
            rule.compiled()
        except re.error as exc:
            raise MappingError(f"{source}: line {line}: pattern: {exc}") from None
        rules.append(rule)
    return rules


def default_rules_text() -> str:
    """Return the shipped starting rule set (English, Finnish, Swedish, Danish)."""
    return (resources.files("etl") / "data" / DEFAULT_RULES_FILE).read_text(
        encoding="utf-8"
    )


def import_rules(
    session: Session, rules: Sequence[Rule], *, source: str, actor: str, text: str = ""
) -> int:
    """Store ``rules`` as a new version of the rule set; return the version."""
    version = int(session.scalar(select(func.max(MappingRuleset.version))) or 0) + 1
    session.add(
        MappingRuleset(
            version=version,
            source=source[:255],
            sha256=hashlib.sha256(text.encode()).hexdigest(),
            rule_count=len(rules),
            imported_by=actor,
            imported_at=datetime.datetime.now(datetime.UTC),
        )
    )
    session.flush()
    seen: dict[tuple[str | None, str, str], Rule] = {}
    for r in rules:
        seen[(r.centre, r.kind.value, r.pattern)] = r  # the last line wins
    session.add_all(
        MappingRule(
            version=version,
            centre=r.centre,
            pattern=r.pattern,
            kind=r.kind.value,
            tg263_name=r.tg263_name,
        )
        for r in seen.values()
    )
    session.flush()
    return version


def imported_version(session: Session, text: str) -> int | None:
    """Return the newest rule-set version imported from exactly ``text``, if any."""
    digest = hashlib.sha256(text.encode()).hexdigest()
    return session.scalar(
        select(func.max(MappingRuleset.version)).where(MappingRuleset.sha256 == digest)
    )


def ensure_default_rules(session: Session, actor: str = "rtcohort") -> int | None:
    """Import the shipped rules as version 1 when no rule set exists yet."""
    if session.scalar(select(func.count()).select_from(MappingRuleset)):
        return None
    text = default_rules_text()
    return import_rules(
        session, parse_rules_csv(text, DEFAULT_RULES_FILE), source="default",
        actor=actor, text=text,
    )  # fmt: skip


def current_rules(session: Session) -> RuleSet:
    """Return the effective rules: per (centre, kind, pattern), the newest version."""
    rows = session.scalars(
        select(MappingRule).order_by(MappingRule.version, MappingRule.rule_id)
    ).all()
    newest: dict[tuple[str | None, str, str], MappingRule] = {}
    for row in rows:
        newest[(row.centre, row.kind, row.pattern)] = row
    version = max((r.version for r in rows), default=0)
    return RuleSet(
        (
            Rule(r.centre, r.pattern, MatchKind(r.kind), r.tg263_name, r.rule_id)
            for r in newest.values()
        ),
        version,
    )
