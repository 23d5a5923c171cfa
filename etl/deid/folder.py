"""De-identification of a folder: every file, the layout kept, a report of outcomes."""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from etl.deid.keys import CentreKey
from etl.deid.pseudonymise import deidentify_bytes, write_atomic

__all__ = ["DeidReport", "deidentify_folder"]


@dataclass
class DeidReport:
    """Counts and quarantine reasons of a folder run (JSON-serialisable)."""

    centre: str
    key_fingerprint: str
    files: int = 0
    counts: dict[str, int] = field(default_factory=dict)
    patients: int = 0
    quarantined: list[dict[str, str]] = field(default_factory=list)

    def to_json(self) -> str:
        """Return the report as indented JSON (no identifiers: paths are relative)."""
        return json.dumps(self.__dict__, indent=2)


def _files(root: Path) -> Iterator[Path]:
    for path in sorted(root.rglob("*")):
        if path.is_file() and not path.name.startswith("."):
            yield path


def deidentify_folder(
    source: str | os.PathLike[str],
    target: str | os.PathLike[str],
    key: CentreKey,
    *,
    quarantine: str | os.PathLike[str] | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> DeidReport:
    """De-identify every file under `source` into `target`, keeping the folder layout.

    Files that are not DICOM or must not be pseudonymised are listed in the report with
    their reason and, when `quarantine` is given, copied there with a ``.reason.txt``.
    """
    root, out_root = Path(source), Path(target)
    paths = list(_files(root))
    report = DeidReport(key.centre, key.fingerprint, files=len(paths))
    names: set[str] = set()
    for index, path in enumerate(paths, 1):
        relative = path.relative_to(root)
        result = deidentify_bytes(path.read_bytes(), key)
        report.counts[result.outcome] = report.counts.get(result.outcome, 0) + 1
        if result.data is None:
            report.quarantined.append({"file": str(relative), "reason": result.reason})
            if quarantine is not None:
                held = Path(quarantine) / relative
                write_atomic(held, path.read_bytes())
                write_atomic(
                    held.with_name(held.name + ".reason.txt"), result.reason.encode()
                )
        else:
            write_atomic(out_root / relative, result.data)
            if result.pseudonym:
                names.add(result.pseudonym)
        if progress is not None:
            progress(index, len(paths))
    report.patients = len(names)
    return report
