"""``rtcohort dvh`` defers modules it does not use, which still work when used."""

from __future__ import annotations

import io
import shutil
from pathlib import Path

import numpy as np
import pydicom
import pytest
from PIL import Image
from pydicom.encaps import encapsulate
from pydicom.uid import JPEG2000Lossless

from etl.dose._planes import median
from etl.phantom.spec import spec_from_options
from etl.phantom.write import write_phantom
from rtcohort.cli._lazy import DEFERRED_MODULES
from tests.etl.dvh_csv import dvh_csv_rows
from tests.etl.dvh_process import run_dvh_probe

_PROBE = """
deferred = %r
# A deferred module not yet run is still an importlib.util._LazyModule (type() does
# not trigger the load).
not_run = sorted(
    n for n in deferred
    if n not in sys.modules or type(sys.modules[n]).__name__ == "_LazyModule"
)
never = sorted(n for n in ("numpy.ma", "scipy", "scipy.ndimage") if n in sys.modules)

# Used now: each loads on first attribute access and works.
import numpy as np
import PIL.ImageCms
import pydicom.examples
import requests
import urllib.request
from pydicom.pixels.processing import apply_icc_profile

srgb = PIL.ImageCms.createProfile("sRGB")
transform = PIL.ImageCms.buildTransform(srgb, srgb, "RGB", "RGB")
rgb = np.arange(4 * 5 * 3, dtype=np.uint8).reshape(4, 5, 3) * 4
out = apply_icc_profile(rgb.copy(), transform=transform)
used = {
    "requests_ok": requests.codes.ok,
    "url_host": urllib.request.Request("http://example.org/x").host,
    "ct_example": pydicom.examples.get_path("ct").name,
    "icc_max_diff": int(np.abs(out.astype(int) - rgb.astype(int)).max()),
}
print(json.dumps({"not_run": not_run, "never": never, "used": used}))
"""


def _run_dvh(plan: Path, out: Path) -> dict[str, object]:
    result: dict[str, object] = run_dvh_probe(plan, out, _PROBE % (DEFERRED_MODULES,))
    return result


def test_dvh_defers_unused_modules_which_still_work(tmp_path: Path) -> None:
    write_phantom(tmp_path / "plan", spec_from_options("sphere", 10.0), seed=1)
    result = _run_dvh(tmp_path / "plan", tmp_path / "out.csv")
    assert result["not_run"] == sorted(DEFERRED_MODULES)
    assert result["never"] == []
    assert result["used"] == {
        "requests_ok": 200,
        "url_host": "example.org",
        "ct_example": "CT_small.dcm",
        "icc_max_diff": result["used"]["icc_max_diff"],  # type: ignore[index]
    }
    assert result["used"]["icc_max_diff"] <= 1  # type: ignore[index,operator]


def _to_16_bits(ds: pydicom.Dataset) -> np.ndarray:
    """Rescale an RTDOSE to 16-bit stored values (JPEG 2000 in Pillow: up to 16)."""
    dose = ds.pixel_array.astype(np.float64) * float(ds.DoseGridScaling)
    scaling = float(f"{dose.max() / 65535:.9e}")
    ds.DoseGridScaling = f"{scaling:.9e}"
    ds.BitsAllocated, ds.BitsStored, ds.HighBit = 16, 16, 15
    stored = np.round(dose / scaling).astype(np.uint16)
    ds.PixelData = stored.tobytes()
    return stored


def test_dvh_of_a_jpeg2000_rtdose_equals_the_uncompressed(tmp_path: Path) -> None:
    """Pillow (deferred PIL.ImageCms, PIL.Image) still decodes compressed dose."""
    plain, j2k = tmp_path / "plain", tmp_path / "j2k"
    write_phantom(plain, spec_from_options("sphere", 10.0), seed=1)
    shutil.copytree(plain, j2k)
    ds = pydicom.dcmread(plain / "RTDOSE.dcm")
    stored = _to_16_bits(ds)
    ds.save_as(plain / "RTDOSE.dcm")
    frames = []
    for frame in stored:
        buf = io.BytesIO()
        Image.fromarray(frame).save(
            buf, format="JPEG2000", irreversible=False, no_jp2=True
        )
        frames.append(buf.getvalue())
    ds.PixelData = encapsulate(frames)
    ds["PixelData"].VR = "OB"
    ds.file_meta.TransferSyntaxUID = JPEG2000Lossless
    ds.save_as(j2k / "RTDOSE.dcm", enforce_file_format=True)
    _run_dvh(plain, tmp_path / "plain.csv")
    _run_dvh(j2k, tmp_path / "j2k.csv")
    rows = dvh_csv_rows((tmp_path / "plain.csv").read_text())
    assert len(rows) == 1  # the sphere
    assert dvh_csv_rows((tmp_path / "j2k.csv").read_text()) == rows


@pytest.mark.parametrize("n", [1, 2, 3, 8, 9, 101])
def test_median_equals_numpy_median_bit_for_bit(n: int) -> None:
    rng = np.random.default_rng(n)
    values = rng.normal(2.5, 0.7, n)
    assert median(values) == float(np.median(values))
    values[n // 2] = np.nan
    assert np.isnan(median(values))
