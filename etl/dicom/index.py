"""Index DICOM-RT headers; resolve RTDOSE -> RTPLAN -> RTSTRUCT -> CT.

Only headers are read (``stop_before_pixels``). Objects are grouped by patient, then
resolved per RTDOSE: the plans it references (several for a plan sum), the structure
set the plan (or the dose) references — else the only structure set sharing the dose's
frame of reference —, and the CT series the structure set was drawn on. Objects that
are not needed by any dose are returned as *orphans*.

A :class:`Catalogue` can supply objects that arrived earlier (already loaded), so a dose
that arrives after its structure set still resolves.
"""

from __future__ import annotations

import io
import os
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Protocol

import numpy as np
import pydicom
from pydicom.dataset import Dataset

from etl.dicom.enums import (
    IMAGE_MODALITIES,
    PLAN_MODALITIES,
    DoseSummationType,
    Modality,
    normalise,
)
from etl.dicom.rtstruct import structure_references
from etl.errors import DicomParseError

__all__ = [
    "Catalogue",
    "DoseRole",
    "IndexedObject",
    "Resolution",
    "ResolvedDataset",
    "index_bytes",
    "index_file",
    "resolve",
]

_BEAM_TYPES = {
    DoseSummationType.BEAM,
    DoseSummationType.BRACHY,
    DoseSummationType.CONTROL_POINT,
}
_PLAN_SUM_TYPES = {DoseSummationType.MULTI_PLAN, "PLAN_SUM"}  # PLAN_SUM: a vendor's


class DoseRole(StrEnum):
    """What a dose object is."""

    PLAN = "plan"  # the dose of one plan (PLAN, FRACTION)
    PLAN_SUM = "plan-sum"  # MULTI_PLAN / PLAN_SUM: several plans summed
    BEAM = "beam"  # one beam, control point or brachy channel: not a course dose


@dataclass(frozen=True)
class IndexedObject:
    """What the header of one object says (no pixel data, no contours)."""

    path: str
    sha256: str
    modality: Modality | str
    sop_class_uid: str
    sop_instance_uid: str
    study_instance_uid: str
    series_instance_uid: str
    frame_of_reference_uid: str
    patient_id: str
    study_date: str = ""
    patient_age: str = ""  # Patient's Age (AS) at the study, e.g. "064Y"
    referenced_plan_uids: tuple[str, ...] = ()
    referenced_structure_set_uids: tuple[str, ...] = ()
    referenced_series_uids: tuple[str, ...] = ()
    referenced_image_uids: tuple[str, ...] = ()
    dose_summation_type: DoseSummationType | str = ""
    slice_position_mm: float | None = None
    roi_names: tuple[str, ...] = ()
    empty_roi_names: tuple[str, ...] = ()
    plan_label: str = ""
    plan_intent: str = ""
    attributes: tuple[tuple[str, str], ...] = ()

    def attribute(self, keyword: str) -> str:
        """Return a captured top-level attribute as text ('' when absent)."""
        return dict(self.attributes).get(keyword, "")


def _uids(
    items: Iterable[Dataset], keyword: str = "ReferencedSOPInstanceUID"
) -> tuple[str, ...]:
    return tuple(dict.fromkeys(str(i.get(keyword)) for i in items if i.get(keyword)))


def _slice_position(ds: Dataset) -> float | None:
    ipp, iop = ds.get("ImagePositionPatient"), ds.get("ImageOrientationPatient")
    if not ipp or not iop or len(ipp) != 3 or len(iop) != 6:  # noqa: PLR2004
        return None
    try:
        normal = np.cross(np.asarray(iop[:3], float), np.asarray(iop[3:], float))
        return float(np.dot(normal, np.asarray(ipp, float)))
    except (TypeError, ValueError):
        return None


def _struct_refs(ds: Dataset) -> tuple[tuple[str, ...], tuple[str, ...], str]:
    refs = structure_references(ds)
    frames = refs.frame_of_reference_uids
    return refs.series_uids, refs.image_uids, (frames[0] if frames else "")


def _rois(ds: Dataset) -> tuple[tuple[str, ...], tuple[str, ...]]:
    names = {
        int(i.ROINumber): str(i.get("ROIName", ""))
        for i in ds.get("StructureSetROISequence", [])
        if "ROINumber" in i
    }
    with_contours = {
        int(rc.ReferencedROINumber)
        for rc in ds.get("ROIContourSequence", [])
        if "ReferencedROINumber" in rc and len(rc.get("ContourSequence", [])) > 0
    }
    empty = tuple(n for num, n in names.items() if num not in with_contours)
    return tuple(names.values()), empty


def index_dataset(
    ds: Dataset, path: str, sha256: str, keywords: Sequence[str] = ()
) -> IndexedObject:
    """Build the index entry of a parsed header.

    Raises
    ------
    DicomParseError
        When the SOP Instance UID is missing.
    """
    sop = str(ds.get("SOPInstanceUID", "") or "")
    if not sop:
        raise DicomParseError(f"{path}: missing required attribute SOPInstanceUID")
    modality = normalise(Modality, ds.get("Modality"))
    frame = str(ds.get("FrameOfReferenceUID", "") or "")
    extra: dict[str, object] = {}
    if modality == Modality.RTDOSE:
        extra["referenced_plan_uids"] = _uids(ds.get("ReferencedRTPlanSequence", []))
        extra["referenced_structure_set_uids"] = _uids(
            ds.get("ReferencedStructureSetSequence", [])
        )
        extra["dose_summation_type"] = normalise(
            DoseSummationType, ds.get("DoseSummationType")
        )
    elif modality in PLAN_MODALITIES:
        extra["referenced_structure_set_uids"] = _uids(
            ds.get("ReferencedStructureSetSequence", [])
        )
        extra["plan_label"] = str(ds.get("RTPlanLabel", "") or "")
        extra["plan_intent"] = str(ds.get("PlanIntent", "") or "")
    elif modality == Modality.RTSTRUCT:
        series, images, struct_frame = _struct_refs(ds)
        extra["referenced_series_uids"] = series
        extra["referenced_image_uids"] = images
        frame = frame or struct_frame
        extra["roi_names"], extra["empty_roi_names"] = _rois(ds)
    elif modality in IMAGE_MODALITIES:
        extra["slice_position_mm"] = _slice_position(ds)
    attributes = tuple(
        (k, str(ds.get(k, "") or "")) for k in keywords if ds.get(k) is not None
    )
    return IndexedObject(
        path=path,
        sha256=sha256,
        modality=modality,
        sop_class_uid=str(ds.get("SOPClassUID", "") or ""),
        sop_instance_uid=sop,
        study_instance_uid=str(ds.get("StudyInstanceUID", "") or ""),
        series_instance_uid=str(ds.get("SeriesInstanceUID", "") or ""),
        frame_of_reference_uid=frame,
        patient_id=str(ds.get("PatientID", "") or ""),
        study_date=str(ds.get("StudyDate", "") or ""),
        patient_age=str(ds.get("PatientAge", "") or ""),
        attributes=attributes,
        **extra,  # type: ignore[arg-type]
    )


def index_bytes(
    data: bytes, path: str, sha256: str, keywords: Sequence[str] = ()
) -> IndexedObject:
    """Index an encoded object (Part-10 file or bare data set), header only."""
    try:
        ds = pydicom.dcmread(io.BytesIO(data), stop_before_pixels=True, force=True)
    except Exception as exc:  # pydicom raises many types on bad input
        raise DicomParseError(f"{path}: unreadable DICOM header ({exc})") from exc
    return index_dataset(ds, path, sha256, keywords)


def index_file(
    path: str | os.PathLike[str], keywords: Sequence[str] = ()
) -> IndexedObject:
    """Index a file on disk (its SHA-256 is of the bytes as stored)."""
    import hashlib

    data = Path(path).read_bytes()
    return index_bytes(data, str(path), hashlib.sha256(data).hexdigest(), keywords)


class Catalogue(Protocol):
    """Objects that arrived earlier, looked up by UID."""

    def by_sop(self, sop_instance_uid: str) -> IndexedObject | None:
        """Return the current version of an object, or None."""

    def by_series(
        self, series_instance_uid: str, exclude: frozenset[str] = frozenset()
    ) -> list[IndexedObject]:
        """Return the current objects of a series (but those whose UID is excluded)."""

    def structure_sets(self, patient_id: str, frame_uid: str) -> list[IndexedObject]:
        """Return the current structure sets of a patient in a frame of reference."""


@dataclass
class ResolvedDataset:
    """One RTDOSE with what it needs; ``problems`` lists what is missing."""

    dose: IndexedObject
    role: DoseRole
    plans: list[IndexedObject] = field(default_factory=list)
    structure_set: IndexedObject | None = None
    ct: list[IndexedObject] = field(default_factory=list)
    missing_plan_uids: list[str] = field(default_factory=list)
    #: The per-beam doses a summed plan dose was made of (:mod:`etl.ingest.beam_stage`).
    parts: list[IndexedObject] = field(default_factory=list)

    @property
    def patient_id(self) -> str:
        """The patient's identifier (the pseudonym once pseudonymised)."""
        return self.dose.patient_id

    @property
    def course_key(self) -> str:
        """The RT course the dose belongs to: its plan(s), else the dose itself."""
        uids = sorted(p.sop_instance_uid for p in self.plans) or sorted(
            self.dose.referenced_plan_uids
        )
        return "+".join(uids)[:64] if uids else self.dose.sop_instance_uid

    def members(self) -> list[IndexedObject]:
        """Every object of the dataset (dose, beam doses, plans, structure set, CT)."""
        found = [self.dose, *self.parts, *self.plans]
        if self.structure_set is not None:
            found.append(self.structure_set)
        return found + list(self.ct)


@dataclass
class Resolution:
    """Datasets found and the objects no dose needs."""

    datasets: list[ResolvedDataset]
    orphans: list[IndexedObject]
    duplicates: list[IndexedObject]


def _role(summation: DoseSummationType | str) -> DoseRole:
    kind = normalise(DoseSummationType, summation)
    if kind in _BEAM_TYPES:
        return DoseRole.BEAM
    if kind in _PLAN_SUM_TYPES:
        return DoseRole.PLAN_SUM
    return DoseRole.PLAN


def resolve(
    objects: Sequence[IndexedObject], catalogue: Catalogue | None = None
) -> Resolution:
    """Group objects by patient and resolve each RTDOSE to plan, structure set, CT.

    Identical copies (same SOP Instance UID and content) count once; of two different
    objects with one UID, the later path is used and the other listed as duplicate.

    Examples
    --------
    >>> resolve([]).datasets
    []
    """
    unique, duplicates = _deduplicate(objects)
    by_patient: dict[str, list[IndexedObject]] = defaultdict(list)
    for obj in unique.values():
        by_patient[obj.patient_id].append(obj)
    datasets: list[ResolvedDataset] = []
    for patient_id, items in sorted(by_patient.items()):
        patient = _Patient(patient_id, items, catalogue)
        datasets.extend(
            patient.resolve(dose)
            for dose in sorted(
                (o for o in items if o.modality == Modality.RTDOSE),
                key=lambda o: o.path,
            )
        )
    used = {o.sop_instance_uid for ds in datasets for o in ds.members()}
    orphans = [o for o in unique.values() if o.sop_instance_uid not in used]
    return Resolution(datasets, orphans, duplicates)


def _deduplicate(
    objects: Sequence[IndexedObject],
) -> tuple[dict[str, IndexedObject], list[IndexedObject]]:
    """Objects by SOP Instance UID (the later path wins) and the ones it replaced."""
    unique: dict[str, IndexedObject] = {}
    duplicates: list[IndexedObject] = []
    for obj in sorted(objects, key=lambda o: o.path):
        previous = unique.get(obj.sop_instance_uid)
        if previous is not None:
            duplicates.append(previous)
        unique[obj.sop_instance_uid] = obj
    return unique, duplicates


class _Patient:
    """One patient's objects (and the catalogue's) looked up for resolving doses."""

    def __init__(
        self,
        patient_id: str,
        items: list[IndexedObject],
        catalogue: Catalogue | None,
    ) -> None:
        self.patient_id = patient_id
        self.items = items
        self.catalogue = catalogue
        self.sops = {o.sop_instance_uid: o for o in items}
        self.series: dict[str, list[IndexedObject]] = defaultdict(list)
        for o in items:
            self.series[o.series_instance_uid].append(o)

    def find(self, uid: str) -> IndexedObject | None:
        """Return the object of a SOP Instance UID, here or in the catalogue."""
        hit = self.sops.get(uid)
        if hit is None and self.catalogue is not None:
            hit = self.catalogue.by_sop(uid)
        return hit

    def resolve(self, dose: IndexedObject) -> ResolvedDataset:
        """Return the dose with its plans, structure set and images."""
        ds = ResolvedDataset(dose, _role(dose.dose_summation_type))
        for uid in dose.referenced_plan_uids:
            plan = self.find(uid)
            if plan is None:
                ds.missing_plan_uids.append(uid)
            else:
                ds.plans.append(plan)
        ds.structure_set = self._structure_set(dose, ds.plans)
        if ds.structure_set is not None:
            for uid in ds.structure_set.referenced_series_uids:
                ds.ct.extend(self._images(uid))
        return ds

    def _structure_set(
        self, dose: IndexedObject, plans: list[IndexedObject]
    ) -> IndexedObject | None:
        """Return the structure set plans or dose name, else the frame's only one."""
        struct_uids = [
            *(u for p in plans for u in p.referenced_structure_set_uids),
            *dose.referenced_structure_set_uids,
        ]
        for uid in struct_uids:
            hit = self.find(uid)
            if hit is not None and hit.modality == Modality.RTSTRUCT:
                return hit
        same = [
            o
            for o in self.items
            if o.modality == Modality.RTSTRUCT
            and o.frame_of_reference_uid == dose.frame_of_reference_uid
        ]
        if not same and self.catalogue is not None:
            same = self.catalogue.structure_sets(
                self.patient_id, dose.frame_of_reference_uid
            )
        return same[0] if len(same) == 1 else None

    def _images(self, series_uid: str) -> list[IndexedObject]:
        """Return the images of a series: here and catalogued (arrived earlier)."""
        found = list(self.series.get(series_uid, []))
        if self.catalogue is not None:
            have = frozenset(o.sop_instance_uid for o in found)
            found += self.catalogue.by_series(series_uid, have)
        return [o for o in found if o.modality in IMAGE_MODALITIES]
