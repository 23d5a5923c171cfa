"""`rtcohort prom ...` and `rtcohort toxicity ...` (owned by `instruments`)."""

from __future__ import annotations

import csv
import json
import math
import sys
from pathlib import Path
from typing import TYPE_CHECKING

import typer

if TYPE_CHECKING:
    import numpy as np
    import numpy.typing as npt

__all__ = ["register"]

prom_app = typer.Typer(
    help="EORTC QLQ-C30 questionnaires: score, FHIR Questionnaire.",
    no_args_is_help=True,
)
toxicity_app = typer.Typer(
    help="CTCAE toxicity grading: terms and site shortlists.",
    no_args_is_help=True,
)


def _fail(message: str, code: int = 2) -> typer.Exit:
    typer.echo(f"error: {message}", err=True)
    return typer.Exit(code)


def _parse_cell(text: str) -> float | str:
    """Return the answer as float (NaN if empty) or the offending text."""
    stripped = text.strip()
    if not stripped:
        return math.nan
    try:
        return float(stripped)
    except ValueError:
        return stripped


def _format_score(value: float) -> str:
    return "" if math.isnan(value) else repr(float(value))


def _read_answers(in_csv: Path) -> tuple[list[str], list[dict[str, str]]]:
    """Return the header and rows of an answers CSV (exit 2 when unreadable)."""
    try:
        with in_csv.open(encoding="utf-8-sig", newline="") as handle:
            reader = csv.DictReader(handle)
            return list(reader.fieldnames or []), list(reader)
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise _fail(f"{in_csv}: cannot read ({exc})") from None


def _answer_matrix(
    rows: list[dict[str, str]], columns: list[str]
) -> tuple[npt.NDArray[np.float64], dict[int, str]]:
    """Return answers (rows x items, NaN if missing) and the first bad cell per row."""
    import numpy as np

    answers: npt.NDArray[np.float64] = np.full((len(rows), len(columns)), np.nan)
    parse_errors: dict[int, str] = {}
    for r, row in enumerate(rows):
        for c, name in enumerate(columns):
            value = _parse_cell(row.get(name) or "")
            if isinstance(value, str):
                parse_errors.setdefault(
                    r, f"item {name} value {value!r} is not a number"
                )
            else:
                answers[r, c] = value
    return answers, parse_errors


def _write_scores(
    out: Path | None,
    header: list[str],
    rows: list[dict[str, str]],
    scores: npt.NDArray[np.float64],
    errors: dict[int, str],
    *,
    score_codes: tuple[str, ...],
) -> None:
    """Write the input rows with their scores and error to ``out`` (or stdout)."""
    out_columns = [*header, *score_codes, "error"]
    target = out.open("w", encoding="utf-8", newline="") if out else sys.stdout
    try:
        writer = csv.writer(target, lineterminator="\n")
        writer.writerow(out_columns)
        for r, row in enumerate(rows):
            message = errors.get(r, "")
            values = (
                [""] * len(score_codes)
                if message
                else [_format_score(v) for v in scores[r]]
            )
            writer.writerow([row.get(h, "") for h in header] + values + [message])
    except OSError as exc:
        raise _fail(f"{out}: cannot write ({exc})") from None
    finally:
        if out:
            target.close()


@prom_app.command("score")
def prom_score(
    in_csv: Path = typer.Argument(..., metavar="IN.csv", help="Columns q1..q30."),
    out: Path | None = typer.Option(
        None, "--out", help="Output CSV (default: standard output)."
    ),
    strict: bool = typer.Option(
        False, "--strict", help="Exit 1 if any row was rejected."
    ),
) -> None:
    """Score EORTC QLQ-C30 answers per the Scoring Manual (3rd ed.).

    Input: a CSV with columns q1..q30 (empty cell = missing) and any other columns,
    which are passed through. Output adds QL2, PF2, RF2, EF, CF, SF, FA, NV, PA, DY, SL,
    AP, CO, DI, FI, SUMMARY (0-100, not rounded, empty when not scorable) and `error`
    (empty when the row is valid; an invalid row gets no scores).

    Example: rtcohort prom score answers.csv --out scores.csv
    """
    from instruments.qlq_c30 import QLQ_C30, SCORE_CODES, score_qlq_c30

    header, rows = _read_answers(in_csv)
    columns = [item.link_id for item in QLQ_C30.items]
    missing = [c for c in columns if c not in header]
    if missing:
        raise _fail(f"{in_csv}: missing column(s) {', '.join(missing)}")
    clash = [c for c in (*SCORE_CODES, "error") if c in header]
    if clash:
        raise _fail(f"{in_csv}: input already has output column(s) {', '.join(clash)}")

    answers, parse_errors = _answer_matrix(rows, columns)
    result = score_qlq_c30(answers)
    errors = result.errors | parse_errors
    scores = result.scores

    _write_scores(out, header, rows, scores, errors, score_codes=SCORE_CODES)
    rejected = len(errors)
    typer.echo(
        f"scored {len(rows)} response set(s): {len(rows) - rejected} accepted,"
        f" {rejected} rejected" + (f"; written to {out}" if out else ""),
        err=True,
    )
    for r in sorted(errors)[:5]:
        typer.echo(f"  row {r + 2}: {errors[r]}", err=True)
    if rejected > 5:
        typer.echo(f"  ... and {rejected - 5} more (see the error column)", err=True)
    if strict and rejected:
        raise typer.Exit(1)


@prom_app.command("questionnaire")
def prom_questionnaire(
    out: Path | None = typer.Option(
        None, "--out", help="Output JSON file (default: standard output)."
    ),
    wording: Path | None = typer.Option(
        None, "--wording", help="Site wording CSV (item,language,text)."
    ),
    language: str | None = typer.Option(
        None, "--language", help="Language of the wording (e.g. en, de-CH)."
    ),
) -> None:
    """Write the FHIR R4 Questionnaire of the EORTC QLQ-C30 (linkIds q1..q30).

    Without --wording the item texts are neutral labels (no EORTC wording ships).

    Example: rtcohort prom questionnaire --out qlq_c30.json
    """
    from instruments.errors import InstrumentError
    from instruments.fhir import questionnaire
    from instruments.qlq_c30 import QLQ_C30
    from instruments.wording import load_wording

    try:
        words = load_wording(wording, QLQ_C30) if wording else None
        resource = questionnaire("QLQ-C30", wording=words, language=language)
    except InstrumentError as exc:
        raise _fail(str(exc)) from None
    text = json.dumps(resource, indent=2, ensure_ascii=False) + "\n"
    if out is None:
        sys.stdout.write(text)
        return
    try:
        out.write_text(text, encoding="utf-8")
    except OSError as exc:
        raise _fail(f"{out}: cannot write ({exc})") from None
    typer.echo(f"wrote Questionnaire {resource['url']} ({out})", err=True)


@toxicity_app.command("terms")
def toxicity_terms(
    search: str | None = typer.Option(
        None, "--search", help="Words of the term, a MedDRA code or grade text."
    ),
    site: str | None = typer.Option(
        None,
        "--site",
        help="breast, head_neck, lung, prostate, rectum, brain or other.",
    ),
    version: str = typer.Option("5.0", "--version", help="CTCAE version: 5.0 or 6.0."),
    shortlists: Path | None = typer.Option(
        None, "--shortlists", help="Centre shortlist CSV overriding the defaults."
    ),
) -> None:
    """List CTCAE terms (term, MedDRA code, SOC, grades).

    Example: rtcohort toxicity terms --site head_neck --search mouth
    """
    from rich.console import Console
    from rich.table import Table

    from instruments.ctcae import format_grades, load_catalogue
    from instruments.errors import InstrumentError
    from instruments.shortlists import shortlist

    try:
        catalogue = load_catalogue(version)
        if site:
            terms = list(shortlist(site, version, centre_csv=shortlists))
            if search:
                keep = {t.meddra_code for t in catalogue.search(search)}
                terms = [t for t in terms if t.meddra_code in keep]
        else:
            terms = catalogue.search(search or "")
    except InstrumentError as exc:
        raise _fail(str(exc)) from None
    table = Table(
        title=f"CTCAE v{catalogue.version}: {len(terms)} term(s)",
        caption="grade 0 (assessed, absent) is always allowed",
    )
    for name in ("term", "MedDRA code", "SOC", "grades"):
        table.add_column(name)
    for term in terms:
        table.add_row(
            term.term,
            term.meddra_code,
            term.soc,
            format_grades(term.grades).split(" ", 1)[1],
        )
    Console(width=160).print(table)


def _run_import(
    kind: str,
    file: Path,
    centre: str,
    key_file: Path,
    timepoint: str | None,
    *,
    correct: str | None,
) -> None:
    from cohort.clinical_import import (
        ImportFailedError,
        import_proms,
        import_toxicity,
    )
    from etl.deid.keys import load_key
    from omop.engine import session_factory
    from omop.errors import RTCohortError
    from rtcohort.cli.common import open_engine
    from rtcohort.settings import get_settings

    try:
        key = load_key(key_file, centre)
    except RTCohortError as exc:
        raise _fail(str(exc)) from None
    engine = open_engine()
    run = import_proms if kind == "prom" else import_toxicity
    try:
        with session_factory(engine).begin() as session:
            summary = run(
                session,
                key,
                centre,
                file,
                actor=get_settings().user,
                default_timepoint=timepoint,
                correction_reason=correct,
            )
    except ImportFailedError as exc:
        typer.echo(
            f"error: {file}: rejected, nothing stored ({len(exc.problems)} problem(s))",
            err=True,
        )
        for line in exc.problems[:20]:
            typer.echo(f"  {line}", err=True)
        if len(exc.problems) > 20:
            typer.echo(f"  ... and {len(exc.problems) - 20} more", err=True)
        raise typer.Exit(2) from None  # bad input: nothing stored
    except RTCohortError as exc:  # refused (permission), unknown user: nothing stored
        raise _fail(str(exc)) from None
    finally:
        engine.dispose()
    noun = "questionnaire(s)" if kind == "prom" else "grading(s)"
    typer.echo(summary.text(noun))
    for record, outcome in summary.records:
        typer.echo(f"  {record}: {outcome}")


@prom_app.command("import")
def prom_import(
    file: Path = typer.Argument(..., metavar="FILE.json", help="FHIR JSON."),
    centre: str = typer.Option(..., "--centre", help="Centre code (e.g. AMS01)."),
    key_file: Path = typer.Option(..., "--key-file", help="The centre's key file."),
    timepoint: str | None = typer.Option(
        None, "--timepoint", help="Timepoint for responses without the extension."
    ),
    correct: str | None = typer.Option(
        None,
        "--correct",
        metavar="REASON",
        help="Store responses that differ from stored ones as corrections (reason).",
    ),
) -> None:
    """Import QuestionnaireResponses (one, or a Bundle) into OMOP.

    Patients are matched by subject.identifier: a hospital identifier is pseudonymised
    with the centre key; an rtcohort pseudonym is used as is. The file is stored in one
    transaction: any problem rejects it whole. Each response is reported as stored,
    unchanged, corrected or refused: one that differs from the stored response with
    the same id is refused (exit 2, nothing stored) unless --correct REASON is given;
    the earlier version then moves to the version history.

    Example: rtcohort prom import responses.json --centre AMS01 --key-file ams01.key
    """
    _run_import("prom", file, centre, key_file, timepoint, correct=correct)


@toxicity_app.command("import")
def toxicity_import(
    file: Path = typer.Argument(..., metavar="FILE.json|csv", help="FHIR or CSV."),
    centre: str = typer.Option(..., "--centre", help="Centre code (e.g. AMS01)."),
    key_file: Path = typer.Option(..., "--key-file", help="The centre's key file."),
    timepoint: str | None = typer.Option(
        None, "--timepoint", help="Timepoint for AdverseEvents without the extension."
    ),
    correct: str | None = typer.Option(
        None,
        "--correct",
        metavar="REASON",
        help="Store gradings that differ from stored ones as corrections (reason).",
    ),
) -> None:
    """Import CTCAE gradings (FHIR AdverseEvents or CSV) into OMOP.

    CSV columns: patient_id, timepoint, assessed_on, ctcae_version, term, grade,
    attribution (patient_id = hospital identifier, pseudonymised with the centre key).
    Any problem rejects the whole file. A grading of a person, term and timepoint
    already graded otherwise is refused (exit 2, nothing stored) unless --correct
    REASON is given; the earlier version then moves to the version history.

    Example: rtcohort toxicity import grades.csv --centre AMS01 --key-file ams01.key
    """
    _run_import("toxicity", file, centre, key_file, timepoint, correct=correct)


def register(app: typer.Typer) -> None:
    """Register this area's commands on the root app."""
    app.add_typer(prom_app, name="prom")
    app.add_typer(toxicity_app, name="toxicity")
