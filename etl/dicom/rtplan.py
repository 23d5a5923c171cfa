"""Read an RT Plan: prescription per target, fractions, beams and technique."""

from __future__ import annotations

import itertools
import os
from dataclasses import dataclass

from pydicom.dataset import Dataset

from etl.dicom.enums import PLAN_MODALITIES, Modality, normalise
from etl.dicom.io import describe, read_dataset
from etl.errors import DicomParseError

__all__ = ["Beam", "DoseReference", "FractionGroup", "RTPlan", "read_rtplan"]

_RTPLAN_SOP_CLASSES = {"1.2.840.10008.5.1.4.1.1.481.5", "1.2.840.10008.5.1.4.1.1.481.8"}
_ROTATION_DEG = 1.0  # a beam whose gantry moves more than this is an arc


@dataclass(frozen=True)
class DoseReference:
    """A dose reference (prescription point or structure)."""

    number: int
    description: str
    reference_type: str  # TARGET or ORGAN_AT_RISK
    structure_type: str  # POINT, VOLUME, COORDINATES, SITE
    referenced_roi_number: int | None
    target_prescription_dose_gy: float | None
    delivery_maximum_dose_gy: float | None


@dataclass(frozen=True)
class Beam:
    """A treatment beam."""

    number: int
    name: str
    radiation_type: str  # PHOTON, ELECTRON, PROTON, ...
    beam_type: str  # STATIC or DYNAMIC
    technique: str  # ARC, DYNAMIC_MLC, STATIC (derived from the control points)
    treatment_delivery_type: str
    nominal_energy: float | None
    number_of_control_points: int


@dataclass(frozen=True)
class FractionGroup:
    """A fraction group: fractions planned and the beams it delivers."""

    number: int
    number_of_fractions_planned: int | None
    beam_numbers: tuple[int, ...]


@dataclass(frozen=True)
class RTPlan:
    """An RT Plan, reduced to what dose analysis needs."""

    sop_instance_uid: str
    frame_of_reference_uid: str
    label: str
    referenced_structure_set_uids: tuple[str, ...]
    dose_references: tuple[DoseReference, ...]
    fraction_groups: tuple[FractionGroup, ...]
    beams: tuple[Beam, ...]
    patient_positions: tuple[str, ...]

    @property
    def number_of_fractions(self) -> int | None:
        """Fractions planned, summed over fraction groups (None if not stated)."""
        values = [
            g.number_of_fractions_planned
            for g in self.fraction_groups
            if g.number_of_fractions_planned is not None
        ]
        return sum(values) if values else None

    @property
    def prescription_gy(self) -> dict[str, float]:
        """Target prescription dose (Gy) per target dose-reference description."""
        return {
            r.description or f"dose reference {r.number}": r.target_prescription_dose_gy
            for r in self.dose_references
            if r.target_prescription_dose_gy is not None
        }


def _opt_float(value: object) -> float | None:
    if value in (None, ""):
        return None
    try:
        return float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return None


def _technique(beam: Dataset) -> str:
    cps = list(beam.get("ControlPointSequence", []))
    angles = [_opt_float(cp.get("GantryAngle")) for cp in cps]
    known = [a for a in angles if a is not None]
    if len(known) > 1:
        moved = sum(
            min(abs(b - a) % 360, 360 - abs(b - a) % 360)
            for a, b in itertools.pairwise(known)
        )
        if moved > _ROTATION_DEG:
            return "ARC"
    if str(beam.get("BeamType", "")).upper() == "DYNAMIC" or len(cps) > 2:  # noqa: PLR2004
        return "DYNAMIC_MLC"
    return "STATIC"


def read_rtplan(source: str | os.PathLike[str] | Dataset) -> RTPlan:
    """Read an RTPLAN (or RT Ion Plan) object.

    Examples
    --------
    >>> from pydicom.data import get_testdata_file
    >>> plan = read_rtplan(get_testdata_file("rtplan.dcm"))
    >>> plan.number_of_fractions, plan.prescription_gy, plan.beams[0].radiation_type
    (30, {'PTV': 30.826203}, 'PHOTON')
    """
    where = describe(source)
    ds = read_dataset(source)
    sop_class = str(ds.get("SOPClassUID", ""))
    if (
        sop_class not in _RTPLAN_SOP_CLASSES
        and normalise(Modality, ds.get("Modality")) not in PLAN_MODALITIES
    ):
        raise DicomParseError(f"{where}: not an RT Plan (SOP class {sop_class})")
    refs = []
    for item in ds.get("DoseReferenceSequence", []):
        roi = item.get("ReferencedROINumber")
        refs.append(
            DoseReference(
                number=int(item.get("DoseReferenceNumber", 0) or 0),
                description=str(item.get("DoseReferenceDescription", "")),
                reference_type=str(item.get("DoseReferenceType", "")),
                structure_type=str(item.get("DoseReferenceStructureType", "")),
                referenced_roi_number=int(roi) if roi not in (None, "") else None,
                target_prescription_dose_gy=_opt_float(
                    item.get("TargetPrescriptionDose")
                ),
                delivery_maximum_dose_gy=_opt_float(item.get("DeliveryMaximumDose")),
            )
        )
    groups = []
    for fg in ds.get("FractionGroupSequence", []):
        n = fg.get("NumberOfFractionsPlanned")
        groups.append(
            FractionGroup(
                number=int(fg.get("FractionGroupNumber", 0) or 0),
                number_of_fractions_planned=int(n) if n not in (None, "") else None,
                beam_numbers=tuple(
                    int(b.ReferencedBeamNumber)
                    for b in fg.get("ReferencedBeamSequence", [])
                    if "ReferencedBeamNumber" in b
                ),
            )
        )
    beams = []
    for b in list(ds.get("BeamSequence", [])) + list(ds.get("IonBeamSequence", [])):
        cps = list(b.get("ControlPointSequence", []))
        beams.append(
            Beam(
                number=int(b.get("BeamNumber", 0) or 0),
                name=str(b.get("BeamName", "")),
                radiation_type=str(b.get("RadiationType", "")),
                beam_type=str(b.get("BeamType", "")),
                technique=_technique(b),
                treatment_delivery_type=str(b.get("TreatmentDeliveryType", "")),
                nominal_energy=_opt_float(cps[0].get("NominalBeamEnergy"))
                if cps
                else None,
                number_of_control_points=len(cps),
            )
        )
    return RTPlan(
        sop_instance_uid=str(ds.get("SOPInstanceUID", "")),
        frame_of_reference_uid=str(ds.get("FrameOfReferenceUID", "")),
        label=str(ds.get("RTPlanLabel", "")),
        referenced_structure_set_uids=tuple(
            str(r.ReferencedSOPInstanceUID)
            for r in ds.get("ReferencedStructureSetSequence", [])
            if "ReferencedSOPInstanceUID" in r
        ),
        dose_references=tuple(refs),
        fraction_groups=tuple(groups),
        beams=tuple(beams),
        patient_positions=tuple(
            str(s.PatientPosition)
            for s in ds.get("PatientSetupSequence", [])
            if s.get("PatientPosition")
        ),
    )
