"""SqlRender cells and control files: values, and errors naming file and line."""

from __future__ import annotations

import datetime
import shutil
from pathlib import Path

import pytest

from omop.quality.control import DATA_DIR, load_control
from omop.quality.errors import ControlFileError
from omop.quality.sqlrender import SqlRenderError, evaluate

TODAY = datetime.date(2024, 12, 31)


@pytest.mark.parametrize(
    ("cell", "value"),
    [
        ("0", 0),
        ("2.5", 2.5),
        ("'19500101'", datetime.date(1950, 1, 1)),
        ("DATEADD(dd,1,GETDATE())", datetime.date(2025, 1, 1)),
        ("DATEADD(mm, 2, '20241231')", datetime.date(2025, 2, 28)),
        ("YEAR(GETDATE())+1", 2025),
        ("GETDATE() - 31", datetime.date(2024, 11, 30)),
        ("-(3 + 4)", -7),
    ],
)
def test_evaluate_forms(cell: str, value: object) -> None:
    assert evaluate(cell, today=TODAY) == value


@pytest.mark.parametrize(
    "cell",
    ["__import__('os')", "1; DROP TABLE x", "YEAR(3)", "'2024-13-01'", "", "1 +"],
)
def test_evaluate_refuses_other_text(cell: str) -> None:
    with pytest.raises(SqlRenderError):
        evaluate(cell, today=TODAY)


def test_bundled_control_files_parse() -> None:
    control = load_control()
    assert len(control.descriptions) == 27
    # row counts by the csv module, independently: 39 tables, 432 fields, 527 concepts
    assert (len(control.tables), len(control.fields), len(control.concepts)) == (
        39,
        432,
        527,
    )


def _copy(tmp_path: Path) -> Path:
    for f in DATA_DIR.glob("OMOP_CDMv5.4_*.csv"):
        shutil.copy(f, tmp_path / f.name)
    return tmp_path


def test_missing_control_file_named(tmp_path: Path) -> None:
    folder = _copy(tmp_path)
    (folder / "OMOP_CDMv5.4_Concept_Level.csv").unlink()
    with pytest.raises(ControlFileError, match=r"Concept_Level\.csv: control file is"):
        load_control(folder)


def test_malformed_threshold_names_file_and_line(tmp_path: Path) -> None:
    from omop.quality import all_checks

    folder = _copy(tmp_path)
    path = folder / "OMOP_CDMv5.4_Field_Level.csv"
    lines = path.read_text("utf-8").splitlines(keepends=True)
    # line 2 is CARE_SITE.care_site_id with isRequiredThreshold 0
    lines[1] = lines[1].replace("care_site_id,Yes,0,", "care_site_id,Yes,zero,", 1)
    path.write_text("".join(lines), "utf-8")
    with pytest.raises(ControlFileError, match=r"Field_Level.csv:2: .*'zero'"):
        all_checks("sqlite", folder)


def test_header_without_column_named(tmp_path: Path) -> None:
    folder = _copy(tmp_path)
    path = folder / "OMOP_CDMv5.4_Table_Level.csv"
    text = path.read_text("utf-8")
    path.write_text(text.replace("measurePersonCompleteness,", "x,", 1), "utf-8")
    with pytest.raises(ControlFileError, match=r"Table_Level.csv:1: header lacks"):
        load_control(folder)
