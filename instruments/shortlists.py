"""Per-site CTCAE shortlists: the terms a radiotherapy grading form lists first.

The default lists (``data/rt_site_shortlists_v5.0.csv``, written for this project, see
``data/SOURCE.md``) cover breast, head and neck, lung, prostate, rectum and brain; the
``other`` site has no default list (the form falls back to search). A centre edits its
lists with an override file in the same format::

    treatment_site,ctcae_term,meddra_code,ctcae_version
    breast,Dermatitis radiation,10061103,5.0
    other,Fatigue,,5.0

Every site named in the override replaces the default list of that site; the other sites
keep their defaults. ``meddra_code`` may be empty (the term name decides) and
``ctcae_version`` defaults to 5.0. Lists are asked for in either CTCAE version: v5.0
terms are carried to v6.0 with NCI's map (:mod:`instruments.ctcae_map`).

Examples
--------
>>> [t.term for t in shortlist("head_neck")][:2]
['Mucositis oral', 'Dry mouth']
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Mapping
from enum import StrEnum
from pathlib import Path

from instruments.ctcae import (
    CtcaeTerm,
    CtcaeVersion,
    load_catalogue,
    read_data_text,
)
from instruments.ctcae_map import translate_v5_to_v6
from instruments.errors import InstrumentError, ShortlistError

__all__ = ["TreatmentSite", "load_shortlists", "parse_shortlists", "shortlist"]

_COLUMNS = ("treatment_site", "ctcae_term", "meddra_code", "ctcae_version")


class TreatmentSite(StrEnum):
    """Treatment site of the radiotherapy course (the shortlist file's site names)."""

    BREAST = "breast"
    HEAD_NECK = "head_neck"
    LUNG = "lung"
    PROSTATE = "prostate"
    RECTUM = "rectum"
    BRAIN = "brain"
    OTHER = "other"

    @classmethod
    def parse(cls, value: TreatmentSite | str) -> TreatmentSite:
        """Normalise ``"Head & neck"``, ``"head-neck"``, ``"HEAD_NECK"`` to a member."""
        text = str(value).strip().lower().replace("&", " ").replace("-", " ")
        text = "_".join(w for w in text.split() if w != "and").replace("__", "_")
        try:
            return cls(text)
        except ValueError:
            known = ", ".join(s.value for s in cls)
            raise ShortlistError(
                f"unknown treatment site {value!r} (known: {known})"
            ) from None


def parse_shortlists(
    rows: Iterable[Mapping[str, str | None]], *, source: str = "shortlist"
) -> dict[TreatmentSite, tuple[CtcaeTerm, ...]]:
    """Parse shortlist rows into terms per site, checking each against the catalogue.

    Parameters
    ----------
    rows
        Rows with the columns ``treatment_site, ctcae_term, meddra_code,
        ctcae_version``.
    source
        Name of the file, used in error messages.

    Raises
    ------
    ShortlistError
        Naming the file, line and field of the first unknown site, term or version, or
        a term whose name and MedDRA code disagree.
    """
    lists: dict[TreatmentSite, list[CtcaeTerm]] = {}
    for line, row in enumerate(rows, start=2):
        where = f"{source} line {line}"
        missing = [c for c in ("treatment_site", "ctcae_term") if c not in row]
        if missing:
            raise ShortlistError(f"{source}: missing column {missing[0]}")
        try:
            site = TreatmentSite.parse(row.get("treatment_site") or "")
            version = CtcaeVersion.parse(row.get("ctcae_version") or "5.0")
            catalogue = load_catalogue(version)
            name = (row.get("ctcae_term") or "").strip()
            code = (row.get("meddra_code") or "").strip()
            term = catalogue.term(name or code)
        except InstrumentError as exc:
            raise ShortlistError(f"{where}: {exc}") from None
        if code and name and (term.meddra_code != code or term.term != name):
            raise ShortlistError(
                f"{where}: meddra_code {code} is not the code of {name!r} in CTCAE"
                f" v{version} ({term.meddra_code})"
            )
        entries = lists.setdefault(site, [])
        if term not in entries:
            entries.append(term)
    return {site: tuple(terms) for site, terms in lists.items()}


def _read_csv(path: Path) -> list[dict[str, str | None]]:
    try:
        text = path.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as exc:
        raise ShortlistError(f"{path}: cannot read ({exc})") from None
    return list(csv.DictReader(io.StringIO(text)))


def load_shortlists(
    centre_csv: Path | str | None = None,
) -> dict[TreatmentSite, tuple[CtcaeTerm, ...]]:
    """Return the shortlists of every site: the defaults, edited by a centre file.

    Parameters
    ----------
    centre_csv
        Optional centre override; each site it names replaces that site's default.

    Returns
    -------
    dict
        Every :class:`TreatmentSite` -> its terms (as given, v5.0 or v6.0).
    """
    text = read_data_text("rt_site_shortlists_v5.0.csv")
    lists = dict.fromkeys(TreatmentSite, ()) | parse_shortlists(
        csv.DictReader(io.StringIO(text)), source="rt_site_shortlists_v5.0.csv"
    )
    if centre_csv is not None:
        path = Path(centre_csv)
        lists |= parse_shortlists(_read_csv(path), source=str(path))
    return lists


def shortlist(
    site: TreatmentSite | str,
    version: CtcaeVersion | str = CtcaeVersion.V5_0,
    *,
    centre_csv: Path | str | None = None,
) -> tuple[CtcaeTerm, ...]:
    """Return the shortlist of a site in a CTCAE version.

    v5.0 entries asked for in v6.0 become the v6.0 term that NCI's map gives for the
    term as a whole; v6.0 entries asked for in v5.0 are an error.

    Examples
    --------
    >>> [t.term for t in shortlist("prostate", "6.0")][2]
    'Hematochezia'
    """
    wanted = CtcaeVersion.parse(version)
    terms = load_shortlists(centre_csv)[TreatmentSite.parse(site)]
    target = load_catalogue(wanted)
    out: list[CtcaeTerm] = []
    for term in terms:
        if term.version is wanted:
            new = term
        elif wanted is CtcaeVersion.V6_0:
            new = target.term(translate_v5_to_v6(term.meddra_code, 0).v6_meddra_code)
        else:
            raise ShortlistError(
                f"shortlist term {term.term!r} is CTCAE v{term.version}; it cannot be"
                " listed in v5.0"
            )
        if new not in out:
            out.append(new)
    return tuple(out)
