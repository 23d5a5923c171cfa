"""CTCAE catalogue, grade validation, v5->v6 translation and site shortlists."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest

import instruments
import omop
from instruments.ctcae import (
    Attribution,
    CtcaeVersion,
    format_grades,
    load_catalogue,
)
from instruments.ctcae_map import translate_v5_to_v6
from instruments.errors import (
    GradeError,
    InstrumentError,
    ShortlistError,
    UnknownTermError,
)
from instruments.shortlists import TreatmentSite, load_shortlists, shortlist

TERM_COLUMN = {"5.0": "CTCAE Term", "6.0": "CTCAE v6.0 MedDRA 28.0 Term"}
DATA = Path(omop.__file__).parent / "vocab" / "data"  # shared with the vocabulary seed
CODE_COLUMN = {"5.0": "MedDRA Code", "6.0": "CTCAE v6.0 MedDRA 28.0 LLT Code"}


def raw_rows(version: str) -> list[dict[str, str]]:
    path = DATA / f"ctcae_v{version}.csv"
    with path.open(encoding="utf-8", newline="") as handle:
        return list(csv.DictReader(handle))


@pytest.mark.parametrize(("version", "count"), [("5.0", 837), ("6.0", 850)])
def test_every_term_allows_exactly_the_defined_grades(version, count):
    rows = raw_rows(version)
    catalogue = load_catalogue(version)
    assert len(rows) == len(catalogue) == count
    for row in rows:
        term = row[TERM_COLUMN[version]]
        defined = {g for g in range(1, 6) if row[f"Grade {g}"].strip() not in {"", "-"}}
        entry = catalogue.term(term)
        assert entry.meddra_code == row[CODE_COLUMN[version]]
        assert set(entry.grades) == defined, term
        for grade in range(6):
            problem = catalogue.grade_problem(term, grade)
            assert (problem is None) == (grade == 0 or grade in defined), (term, grade)
        assert catalogue.grade_problem(term, 6) is not None


def test_spot_checks_from_the_nci_sheet():
    v5 = load_catalogue("5.0")
    assert v5.term("Dry mouth").grades == (1, 2, 3)
    assert v5.term("Dry mouth").meddra_code == "10013781"
    assert v5.term("Alopecia").grades == (1, 2)
    assert v5.term("Pneumonitis").grade_descriptions[5] == "Death"
    assert v5.term("10061103").term == "Dermatitis radiation"
    assert v5.term("dermatitis RADIATION").soc.startswith("Injury, poisoning")


ALOPECIA_MSG = "CTCAE v5.0 defines grades 1\u20132 for Alopecia"


def test_alopecia_message_style():
    v5 = load_catalogue("5.0")
    assert v5.grade_problem("Alopecia", 3) == ALOPECIA_MSG
    with pytest.raises(GradeError, match=ALOPECIA_MSG):
        v5.validate("Alopecia", 3)
    assert load_catalogue("6.0").grade_problem("Dry mouth", 4) == (
        "CTCAE v6.0 defines grades 1\u20133 for Dry mouth"
    )


def test_grade_zero_is_assessed_absent_and_grade_five_only_where_defined():
    v5 = load_catalogue("5.0")
    assert v5.validate("Dry mouth", 0)[1] == 0
    assert v5.grade_problem("Dry mouth", 5) is not None
    assert v5.grade_problem("Pneumonitis", 5) is None


@pytest.mark.parametrize("bad", [2.5, "two", "", -1, True])
def test_non_grades_are_rejected(bad):
    assert load_catalogue("5.0").grade_problem("Pneumonitis", bad) is not None


def test_format_grades():
    assert format_grades([1, 2]) == "grades 1\u20132"
    assert format_grades([5]) == "grade 5"
    assert format_grades([1, 3, 4, 5]) == "grades 1, 3\u20135"


def test_no_xerostomia_term_but_search_finds_dry_mouth():
    v5 = load_catalogue("5.0")
    assert "Xerostomia" not in v5
    with pytest.raises(UnknownTermError, match="did you mean 'Dry mouth'"):
        v5.term("Xerostomia")
    assert v5.search("xerostomia")[0].term == "Dry mouth"


def test_search_by_words_code_and_description():
    v5 = load_catalogue("5.0")
    assert [t.term for t in v5.search("10013781")] == ["Dry mouth"]
    hits = [t.term for t in v5.search("mouth dry")]
    assert hits[0] == "Dry mouth"
    by_description = [t.term for t in v5.search("hemoglobin")]
    assert "Anemia" in by_description
    assert "Anemia" not in [t.term for t in v5.search("hemoglobin", descriptions=False)]
    assert v5.search("zzzqqq") == []


def test_unknown_version_and_term():
    with pytest.raises(UnknownTermError, match="unknown CTCAE version"):
        load_catalogue("4.03")
    with pytest.raises(UnknownTermError, match="has no term"):
        load_catalogue("6.0").term("Not a term at all")
    assert CtcaeVersion.parse("v6") is CtcaeVersion.V6_0


def test_attribution_vocabulary():
    assert [a.value for a in Attribution] == [
        "unrelated",
        "unlikely",
        "possible",
        "probable",
        "definite",
    ]
    assert Attribution.parse(" Probable ") is Attribution.PROBABLE
    with pytest.raises(InstrumentError, match="unknown attribution"):
        Attribution.parse("maybe")


def test_v5_to_v6_translation_of_every_grading_lands_on_a_valid_v6_grading():
    v5, v6 = load_catalogue("5.0"), load_catalogue("6.0")
    for term in v5.terms:
        for grade in term.allowed_grades:
            t = translate_v5_to_v6(term.term, grade)
            target = v6.term(t.v6_meddra_code)
            assert target.term == t.v6_term
            assert v6.grade_problem(target, t.v6_grade) is None, t


def test_v5_to_v6_known_rows():
    # Rows of the NCI mapping sheet, read by eye.
    t = translate_v5_to_v6("Rectal hemorrhage", 3)
    assert (t.v6_term, t.v6_meddra_code, t.v6_grade) == ("Hematochezia", "10060544", 3)
    t = translate_v5_to_v6("Asystole", 1)
    assert (t.v6_term, t.v6_grade, t.change) == ("Sinus bradycardia", 1, "Deletion")
    t = translate_v5_to_v6("Neck edema", 4)
    assert t.v6_term.endswith("Other, specify")
    assert t.other_specify == "Neck edema"
    t = translate_v5_to_v6("Forced expiratory volume decreased", 4)
    assert (t.v6_term, t.v6_grade) == ("Dyspnea", 3)
    assert translate_v5_to_v6("Dry mouth", 0).v6_grade == 0
    with pytest.raises(GradeError, match="grades 1\u20132 for Alopecia"):
        translate_v5_to_v6("Alopecia", 3)


def test_default_shortlists_cover_the_sites_and_exist_in_the_catalogue():
    lists = load_shortlists()
    assert set(lists) == set(TreatmentSite)
    path = Path(instruments.__file__).parent / "data" / "rt_site_shortlists_v5.0.csv"
    rows = list(csv.DictReader(path.read_text("utf-8").splitlines()))
    for site in TreatmentSite:
        want = [r["ctcae_term"] for r in rows if r["treatment_site"] == site.value]
        assert [t.term for t in lists[site]] == want
    assert lists[TreatmentSite.OTHER] == ()
    assert "Dry mouth" in [t.term for t in shortlist("head_neck")]


def test_shortlist_in_v6_uses_the_map():
    terms = [t.term for t in shortlist("prostate", "6.0")]
    assert "Hematochezia" in terms
    assert "Rectal hemorrhage" not in terms
    assert all(t.version is CtcaeVersion.V6_0 for t in shortlist("prostate", "6.0"))


def test_centre_override_replaces_named_sites_only(tmp_path: Path):
    override = tmp_path / "centre.csv"
    override.write_text(
        "treatment_site,ctcae_term,meddra_code,ctcae_version\n"
        "breast,Fatigue,,5.0\n"
        "breast,Dermatitis radiation,10061103,5.0\n"
        "other,Nausea,,\n",
        encoding="utf-8",
    )
    assert [t.term for t in shortlist("breast", centre_csv=override)] == [
        "Fatigue",
        "Dermatitis radiation",
    ]
    assert [t.term for t in shortlist("other", centre_csv=override)] == ["Nausea"]
    assert shortlist("lung", centre_csv=override) == shortlist("lung")


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("breast,Xerostomia,,5.0", "line 2: CTCAE v5.0 has no term 'Xerostomia'"),
        ("breast,Dry mouth,10001760,5.0", "line 2: meddra_code 10001760 is not"),
        ("pelvis,Fatigue,,5.0", "line 2: unknown treatment site 'pelvis'"),
        ("breast,Fatigue,,7.0", "line 2: unknown CTCAE version"),
    ],
)
def test_bad_centre_override(tmp_path: Path, line, message):
    override = tmp_path / "centre.csv"
    override.write_text(
        "treatment_site,ctcae_term,meddra_code,ctcae_version\n" + line + "\n",
        encoding="utf-8",
    )
    with pytest.raises(ShortlistError, match=message):
        load_shortlists(override)


def test_site_names_are_normalised():
    assert TreatmentSite.parse("Head & Neck") is TreatmentSite.HEAD_NECK
    assert TreatmentSite.parse("head-neck") is TreatmentSite.HEAD_NECK
    with pytest.raises(ShortlistError):
        TreatmentSite.parse("knee")
