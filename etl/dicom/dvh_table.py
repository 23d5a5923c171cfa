"""DVHs and dose metrics of RTDOSE/RTSTRUCT files, without a database.

What ``rtcohort dvh`` shows (and a web page can show alike): each RTDOSE of a folder is
paired with its structure set by the one resolver of the platform
(:func:`etl.dicom.index.resolve`: RTDOSE -> RTPLAN -> RTSTRUCT, else the only structure
set
sharing the dose's frame of reference), and each structure's DVH comes from
:func:`etl.dose.structures.structure_dvhs`. Problems of one file or ROI are reported
through a ``warn(where, message)`` callback and the rest goes on.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path

from etl.dicom.index import IndexedObject, index_dataset, resolve
from etl.dicom.io import read_dataset
from etl.dicom.rtdose import read_rtdose
from etl.dicom.rtstruct import StructureSet, read_rtstruct
from etl.dose.course import alpha_beta_for
from etl.dose.coverage import DEFAULT_MIN_COVERAGE_PCT, dose_coverage, metric_allowed
from etl.dose.dvh import DVH, EndCaps
from etl.dose.grid import DoseGrid
from etl.dose.metrics import Metric, evaluate
from etl.dose.radiobiology import dvh_to_eqd2
from etl.dose.structures import Skip, StructureDVH, structure_dvhs
from etl.errors import DicomParseError, EtlError, PairingError

__all__ = ["DvhRow", "DvhTable", "Warn", "dvh_rows", "pair_folder", "structure_row"]

#: ``warn(where, message)``: one problem of a file or ROI; the work goes on.
Warn = Callable[[object, str], None]

_NOT_DICOM_SUFFIXES = {".json", ".csv", ".txt", ".md", ".py", ".xml", ".html", ".log"}


def _index_folder(folder: Path, warn: Warn) -> list[IndexedObject]:
    found: list[IndexedObject] = []
    files = sorted(
        p for p in folder.rglob("*") if p.is_file() and not p.name.startswith(".")
    )
    for file in files:
        try:
            ds = read_dataset(file, stop_before_pixels=True)
            found.append(index_dataset(ds, str(file), ""))
        except DicomParseError as exc:
            if file.suffix.lower() not in _NOT_DICOM_SUFFIXES:
                warn(file, f"skipped ({exc})")
    return found


def pair_folder(folder: Path, warn: Warn) -> list[tuple[Path, Path]]:
    """Pair each RTDOSE under ``folder`` with its RTSTRUCT.

    Parameters
    ----------
    folder : Path
        Searched recursively; hidden files are ignored, unreadable ones warned about
        (but for evident non-DICOM suffixes such as ``.json``).
    warn : Warn
        Called for each file skipped and each dose left without a structure set.

    Returns
    -------
    list of (dose path, structure set path)
        In the order of the dose paths.
    """
    objects = _index_folder(folder, warn)
    structs = [o for o in objects if o.modality == "RTSTRUCT"]
    resolution = resolve(objects)
    found = {d.dose.sop_instance_uid: d.structure_set for d in resolution.datasets}
    # Every dose file is reported, also a second copy of one object (same UID).
    doses = [d.dose for d in resolution.datasets] + [
        o for o in resolution.duplicates if o.modality == "RTDOSE"
    ]
    pairs: list[tuple[Path, Path]] = []
    for dose in sorted(doses, key=lambda o: Path(o.path)):
        struct = found.get(dose.sop_instance_uid)
        if struct is not None:
            pairs.append((Path(dose.path), Path(struct.path)))
            continue
        frame = dose.frame_of_reference_uid
        same = [s for s in structs if frame and s.frame_of_reference_uid == frame]
        if len(same) > 1:
            warn(
                dose.path,
                f"{len(same)} structure sets share its frame of reference, "
                "none referenced through a plan; skipped",
            )
        else:
            warn(
                dose.path,
                "no RTSTRUCT in the folder is referenced or shares its frame of "
                "reference; skipped",
            )
    return pairs


@dataclass(frozen=True)
class DvhRow:
    """The DVH and metrics of one ROI on one dose object.

    Attributes
    ----------
    dose_sop_instance_uid : str
        The RTDOSE.
    roi_number : int
    roi_name : str
        As stored in the structure set.
    dvh : DVH
        Physical dose, or EQD2 when asked for.
    metrics : tuple of float or None
        One value per requested metric (None or NaN where undefined, and where the
        dose grid covers too little of the structure: :mod:`etl.dose.coverage`).
    coverage_pct : float
        Volume inside the dose grid over the structure volume (%).
    covered : bool
        Whether the coverage allows the metrics depending on the whole structure
        (mean, min, Dx, Vx); Dmax is then a lower bound.
    warning : str
        Why metrics are missing or partial; empty when the grid covers it all.
    """

    dose_sop_instance_uid: str
    roi_number: int
    roi_name: str
    dvh: DVH
    metrics: tuple[float | None, ...]
    coverage_pct: float = 100.0
    covered: bool = True
    warning: str = ""


@dataclass(frozen=True)
class DvhTable:
    """The rows computed, and the requested ROI names no structure set holds."""

    rows: list[DvhRow]
    missing_rois: list[str]


def _structure_set(
    path: Path, cache: dict[Path, StructureSet], warn: Warn
) -> StructureSet | None:
    try:
        if path not in cache:
            cache[path] = read_rtstruct(path)
    except EtlError as exc:
        warn(path, f"structure set not usable: {exc}")
        return None
    return cache[path]


def _read_pair(
    dose_path: Path,
    struct_path: Path,
    cache: dict[Path, StructureSet],
    warn: Warn,
    strict_frames: bool,
) -> tuple[DoseGrid, StructureSet] | None:
    """Read a dose and its structure set; None (warned) when they cannot be used."""
    try:
        grid = read_rtdose(dose_path)
    except EtlError as exc:
        warn(dose_path, f"dose not usable: {exc}")
        return None
    ss = _structure_set(struct_path, cache, warn)
    if ss is None:
        return None
    if ss.frame_of_reference_uid != grid.frame_of_reference_uid:
        message = (
            f"frame of reference {ss.frame_of_reference_uid or '(none)'} differs "
            "from "
            f"that of dose {dose_path} ({grid.frame_of_reference_uid or '(none)'})"
        )
        if strict_frames:
            raise PairingError(f"{struct_path}: {message}")
        warn(struct_path, message + "; skipped")
        return None
    return grid, ss


def structure_row(
    done: StructureDVH,
    dose_uid: str,
    struct_path: Path | str,
    metrics: Sequence[Metric],
    warn: Warn,
    *,
    eqd2: tuple[int, float] | None = None,
    min_coverage_pct: float = DEFAULT_MIN_COVERAGE_PCT,
) -> DvhRow | None:
    """Turn one structure's DVH into a row (EQD2 when asked), or warn why there is none.

    Skipped structures and the warnings raised while computing the DVH go to
    ``warn`` labelled ``"<struct_path>: ROI <number> '<name>'"``; metrics depending
    on dose outside the grid are None (:func:`etl.dose.coverage.metric_allowed`).
    """
    r = done.roi
    label = f"{struct_path}: ROI {r.number} '{r.name}'"
    if done.skipped is Skip.NO_CONTOURS:
        warn(label, "has no contours; no row")
        return None
    if done.skipped is Skip.NOT_CLOSED_PLANAR:
        warn(label, f"contour type {r.contour_type}, not CLOSED_PLANAR; no row")
        return None
    for w in done.caught:
        warn(label, str(w.message))
    if done.dvh is None:
        warn(label, f"{done.error}; no row")
        return None
    result = done.dvh
    if eqd2 is not None:
        try:
            result = dvh_to_eqd2(result, *eqd2)
        except EtlError as exc:  # a dose too high for any histogram
            warn(label, f"EQD2: {exc}; no row")
            return None
    cover = dose_coverage(result, min_coverage_pct)
    values = tuple(
        evaluate(result, m) if metric_allowed(m, cover.pct, min_coverage_pct) else None
        for m in metrics
    )
    row = DvhRow(dose_uid, r.number, r.name, result, values)
    return replace(
        row, coverage_pct=cover.pct, covered=cover.allowed, warning=cover.warning
    )


def dvh_rows(
    pairs: Sequence[tuple[Path, Path]],
    metrics: Sequence[Metric],
    warn: Warn,
    *,
    rois: Sequence[str] = (),
    end_caps: EndCaps | str = EndCaps.HALF,
    eqd2: tuple[int, float] | None = None,
    strict_frames: bool = False,
    min_coverage_pct: float = DEFAULT_MIN_COVERAGE_PCT,
    alpha_beta_roi: Mapping[str, float] | None = None,
) -> DvhTable:
    """Compute the DVH and metrics of each closed-planar ROI of each pair.

    Parameters
    ----------
    pairs : sequence of (dose path, structure set path)
        From :func:`pair_folder`, or one explicit pair.
    metrics : sequence of Metric
        Parsed TG-263 metrics (:func:`etl.dose.metrics.parse_metric`).
    warn : Warn
        Called for each unusable file, skipped ROI and DVH warning.
    rois : sequence of str
        Only ROIs with these names (case-insensitive); all when empty.
    end_caps : EndCaps or str
        See :func:`etl.dose.dvh.compute_dvh`.
    eqd2 : (fractions, alpha/beta in Gy), optional
        Convert each DVH to EQD2 before the metrics.
    strict_frames : bool
        Raise on a structure set in another frame of reference than its dose
        (otherwise warn and skip the pair).
    min_coverage_pct : float
        Below this coverage of a structure by the dose grid (%), the metrics that
        depend on the part outside are None (:func:`etl.dose.coverage.metric_allowed`).
    alpha_beta_roi : mapping of str to float, optional
        alpha/beta (Gy) of named ROIs (case-insensitive), overriding that of ``eqd2``.

    Returns
    -------
    DvhTable
        The rows, in the order of the pairs and ROIs; and the (case-folded) names
        of ``rois`` found in no structure set, sorted.

    Raises
    ------
    PairingError
        With ``strict_frames``, when the frames of reference differ; the message
        starts with the structure set's path.
    """
    found_rows: list[DvhRow] = []
    wanted = {r.casefold() for r in rois}
    found: set[str] = set()
    structures: dict[Path, StructureSet] = {}
    for dose_path, struct_path in pairs:
        inputs = _read_pair(dose_path, struct_path, structures, warn, strict_frames)
        if inputs is None:
            continue
        grid, ss = inputs
        for done in structure_dvhs(ss, grid, end_caps=end_caps, names=wanted or None):
            found.add(done.roi.name.casefold())
            ratio = eqd2
            if eqd2 is not None and alpha_beta_roi:
                ab = alpha_beta_for(done.roi.name, eqd2[1], alpha_beta_roi)
                ratio = (eqd2[0], ab)
            row = structure_row(
                done, grid.sop_instance_uid, struct_path, metrics, warn,
                eqd2=ratio, min_coverage_pct=min_coverage_pct,
            )  # fmt: skip
            if row is not None:
                found_rows.append(row)
    return DvhTable(found_rows, sorted(wanted - found))
