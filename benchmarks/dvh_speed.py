"""DVH speed: a large synthetic case, and a side-by-side run against dicompyler-core.

Usage::

    .venv/bin/python benchmarks/dvh_speed.py            # both parts
    .venv/bin/python benchmarks/dvh_speed.py --large    # large case only
    .venv/bin/python benchmarks/dvh_speed.py --paired 5 [--code-root DIR ...] \\
        [--no-bytecode]

The dicompyler-core part needs ``benchmarks/.venv-dicompyler`` (gitignored)::

    python3 -m venv benchmarks/.venv-dicompyler
    benchmarks/.venv-dicompyler/bin/pip install dicompyler-core==0.5.6 \\
        "pydicom<3" scikit-image

(scikit-image is what dicompyler-core needs for its interpolation settings.)

The script downloads the dicompyler-core 0.5.6 source archive with that venv's pip
(if absent) and extracts its example plan (BSD licence) into ``benchmarks/_work/``;
nothing of dicompyler-core is committed.
"""

from __future__ import annotations

import argparse
import os
import resource
import subprocess
import sys
import tarfile
import textwrap
import time
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parent
WORK = ROOT / "_work"
DCVENV = ROOT / ".venv-dicompyler"
SDIST = "dicompyler-core-0.5.6"


def large_case() -> None:
    from etl.dose.dvh import compute_dvh
    from etl.dose.grid import DoseGrid

    t0 = time.perf_counter()
    sp = 2.5
    ni, nj, nk = 200, 160, 200  # 50 x 40 x 50 cm
    eye = np.eye(3)
    origin = np.array([-250.0, -200.0, -250.0]) + sp / 2
    x = origin[0] + sp * np.arange(ni)
    y = origin[1] + sp * np.arange(nj)
    z = origin[2] + sp * np.arange(nk)
    # A smooth plan-like dose: a 60 Gy high-dose region falling off, plus a bath.
    r2 = (
        (z[:, None, None] / 80) ** 2
        + (y[None, :, None] / 60) ** 2
        + (x[None, None, :] / 70) ** 2
    )
    dose = 60.0 * np.exp(-r2) + 2.0
    grid = DoseGrid(dose, origin, eye[0], eye[1], eye[2], (sp, sp, sp))
    rng = np.random.default_rng(0)
    structures: list[list[np.ndarray]] = []
    t = np.linspace(0, 2 * np.pi, 180, endpoint=False)
    # body: ellipse 44 x 34 cm over 200 planes (50 cm)
    zs = z[0] + sp * np.arange(200)
    structures.append(
        [
            np.column_stack([220 * np.cos(t), 170 * np.sin(t), np.full_like(t, zz)])
            for zz in zs
        ]
    )
    # 39 organs / targets: ellipsoids of 1-12 cm, contoured on the 2.5 mm planes
    for _ in range(39):
        c = rng.uniform([-120, -90, -150], [120, 90, 150])
        ax = rng.uniform(5, 60, 3)
        planes = zs[(zs > c[2] - ax[2]) & (zs < c[2] + ax[2])]
        cont = []
        for zz in planes:
            f = np.sqrt(max(1 - ((zz - c[2]) / ax[2]) ** 2, 0))
            cont.append(
                np.column_stack(
                    [
                        c[0] + ax[0] * f * np.cos(t),
                        c[1] + ax[1] * f * np.sin(t),
                        np.full_like(t, zz),
                    ]
                )
            )
        structures.append(cont)
    t_setup = time.perf_counter() - t0
    load = os.getloadavg()[0]
    t1 = time.perf_counter()
    c1 = time.process_time()
    vols = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for cont in structures:
            vols.append(compute_dvh(cont, grid).volume_cc)
    wall = time.perf_counter() - t1
    cpu = time.process_time() - c1
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print("\nDVH speed: large case (2.5 mm grid over 50 x 40 x 50 cm, 40 structures)")
    print(f"{'structures':<34}{len(structures)}")
    print(f"{'contour planes (total)':<34}{sum(len(c) for c in structures)}")
    print(f"{'body volume (cc)':<34}{vols[0]:.0f}")
    print(f"{'set-up (grid, contours) (s)':<34}{t_setup:.2f}")
    print(f"{'DVH wall time, all structures (s)':<34}{wall:.2f}   goal < 2")
    print(f"{'DVH CPU time, all structures (s)':<34}{cpu:.2f}")
    print(f"{'load average (1 min) at start':<34}{load:.2f}")
    print(f"{'peak RSS of the process (MB)':<34}{peak_mb:.0f}   goal < 1536")


def _example_data() -> Path:
    target = WORK / "example_data"
    if (target / "rtss.dcm").exists():
        return target
    WORK.mkdir(exist_ok=True)
    archive = WORK / f"{SDIST}.tar.gz"
    if not archive.exists():
        subprocess.run(
            [str(DCVENV / "bin" / "pip"), "download", "--no-deps",
             "--no-binary", ":all:", "dicompyler-core==0.5.6", "-d", str(WORK)],
            check=True,
        )  # fmt: skip
    prefix = f"{SDIST}/tests/testdata/example_data/"
    target.mkdir(exist_ok=True)
    with tarfile.open(archive) as tar:
        for m in tar.getmembers():
            if m.name.startswith(prefix) and m.isfile():
                m.name = m.name[len(prefix) :]
                tar.extract(m, target, filter="data")
    return target


_DC_SCRIPT = textwrap.dedent(
    """
    import sys, time, warnings
    warnings.simplefilter("ignore")
    t0 = time.perf_counter()
    from dicompylercore import dicomparser, dvhcalc
    folder, mode = sys.argv[1], sys.argv[2]
    rtss = dicomparser.DicomParser(folder + "/rtss.dcm")
    kw = {}
    if mode == "finest":
        kw = dict(interpolation_resolution=(0.625, 0.625),
                  interpolation_segments_between_planes=2)
    t1 = time.perf_counter()
    c1 = time.process_time()
    out = []
    for key, s in rtss.GetStructures().items():
        if s.get("type") in ("POINT", "MARKER"):
            continue
        d = dvhcalc.get_dvh(folder + "/rtss.dcm", folder + "/rtdose.dcm", key, **kw)
        out.append((s["name"], d.volume, d.mean))
    t2 = time.perf_counter()
    for name, vol, mean in out:
        print("ROI", name, vol, mean)
    print("TIME", t2 - t1, t2 - t0, time.process_time() - c1)
    """
)


def compare_dicompyler() -> None:
    if not (DCVENV / "bin" / "python").exists():
        print("\n(dicompyler-core venv missing; see the module docstring)")
        return
    folder = _example_data()
    script = WORK / "dc_run.py"
    script.write_text(_DC_SCRIPT)

    from etl.dicom.rtdose import read_rtdose
    from etl.dicom.rtstruct import read_rtstruct
    from etl.dose.dvh import compute_dvh

    load_start = os.getloadavg()[0]
    # ours, in-process (reading included)
    t0 = time.perf_counter()
    c0 = time.process_time()
    grid = read_rtdose(folder / "rtdose.dcm")
    ss = read_rtstruct(folder / "rtss.dcm")
    ours = {}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for roi in ss.rois:
            if roi.contour_type == "CLOSED_PLANAR" and roi.contours:
                d = compute_dvh(roi.contours, grid)
                ours[roi.name] = (d.volume_cc, d.mean_gy)
    ours_in = time.perf_counter() - t0
    ours_cpu = time.process_time() - c0

    def dc(mode: str) -> tuple[float, float, dict[str, tuple[float, float]]]:
        t = time.perf_counter()
        res = subprocess.run(
            [str(DCVENV / "bin" / "python"), str(script), str(folder), mode],
            capture_output=True, text=True, check=True,
        )  # fmt: skip
        whole = time.perf_counter() - t
        rows: dict[str, tuple[float, float]] = {}
        inproc = float("nan")
        for line in res.stdout.splitlines():
            parts = line.split()
            if parts[0] == "TIME":
                inproc = float(parts[1])
            elif parts[0] == "ROI":
                rows[" ".join(parts[1:-2])] = (float(parts[-2]), float(parts[-1]))
        return inproc, whole, rows

    dc_in, dc_whole, dc_rows = dc("default")
    fine_in, fine_whole, _ = dc("finest")
    t = time.perf_counter()
    subprocess.run(
        [str(Path(sys.executable).parent / "rtcohort"), "dvh", str(folder), "--csv",
         str(WORK / "ours.csv")],
        capture_output=True, check=True,
    )  # fmt: skip
    ours_whole = time.perf_counter() - t

    print(f"\nDVH speed: dicompyler-core 0.5.6 example plan ({len(ours)} structures)")
    print(
        f"load average (1 min): {load_start:.2f} at start, "
        f"{os.getloadavg()[0]:.2f} at end; rtcohort in-process CPU {ours_cpu:.2f} s"
    )
    print(f"{'':<40}{'in-process (s)':>16}{'whole process (s)':>20}")
    rows = [
        ("rtcohort (etl.dose.dvh)", ours_in, ours_whole),
        ("dicompyler-core default", dc_in, dc_whole),
        ("dicompyler-core 0.625 mm, 2 segments", fine_in, fine_whole),
    ]
    for label, t_in, t_whole in rows:
        print(f"{label:<40}{t_in:>16.2f}{t_whole:>20.2f}")
    for label, t_in, t_whole in rows[1:]:
        ratio_in, ratio_whole = t_in / ours_in, t_whole / ours_whole
        print(f"{'ratio vs ' + label:<40}{ratio_in:>15.1f}x{ratio_whole:>19.1f}x")
    head = ("structure", "volume ours", "dicompyler", "mean ours", "dicompyler")
    print(f"\n{head[0]:<16}{head[1]:>12}{head[2]:>12}{head[3]:>11}{head[4]:>12}")
    for name, (vol, mean) in ours.items():
        dv, dm = dc_rows.get(name, (float("nan"), float("nan")))
        print(f"{name:<16}{vol:>12.2f}{dv:>12.2f}{mean:>11.2f}{dm:>12.2f}")


_OURS_INPROC = textwrap.dedent(
    """
    import sys, time, warnings
    warnings.simplefilter("ignore")
    from etl.dicom.rtdose import read_rtdose
    from etl.dicom.rtstruct import read_rtstruct
    from etl.dose.dvh import compute_dvh
    folder = sys.argv[1]
    t0 = time.perf_counter()
    c0 = time.process_time()
    grid = read_rtdose(folder + "/rtdose.dcm")
    for roi in read_rtstruct(folder + "/rtss.dcm").rois:
        if roi.contour_type == "CLOSED_PLANAR" and roi.contours:
            compute_dvh(roi.contours, grid)
    print("TIME", time.perf_counter() - t0, time.process_time() - c0)
    """
)


def _timed(argv: list[str], **kwargs: Any) -> tuple[float, float, float, float]:
    """Wall and CPU time of a whole process; the in-process wall and CPU it prints."""
    r0 = resource.getrusage(resource.RUSAGE_CHILDREN)
    t = time.perf_counter()
    res = subprocess.run(argv, capture_output=True, text=True, check=True, **kwargs)
    wall = time.perf_counter() - t
    r1 = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = r1.ru_utime + r1.ru_stime - r0.ru_utime - r0.ru_stime
    t_in = c_in = float("nan")
    for line in res.stdout.splitlines():
        if line.startswith("TIME"):
            parts = line.split()
            t_in, c_in = float(parts[1]), float(parts[-1])
    return wall, cpu, t_in, c_in


def paired_whole_process(n: int, code_roots: Sequence[str], bytecode: bool) -> None:
    """Median of ``n`` paired runs: rtcohort dvh against dicompyler-core.

    Each round runs ``rtcohort dvh`` (once per code root: a checkout put first on
    PYTHONPATH and used as the working directory, which ``python -m`` puts first on
    ``sys.path`` -- from another folder the checkout there would win; e.g. this one and
    an older one) and dicompyler-core's default, in turn, so that the load of the
    machine weighs on all alike; then the in-process times (reading and DVHs, imports
    excluded) of each code root and of dicompyler-core (``get_dvh`` of every ROI).

    With ``bytecode`` each code root has its own cache of compiled modules
    (``PYTHONPYCACHEPREFIX`` under ``_work/pycache``, filled by one untimed run), as an
    installed package has; without, a checkout under ``PYTHONDONTWRITEBYTECODE=1`` is
    compiled from source on every run (dicompyler-core's venv has its bytecode).
    """
    if not (DCVENV / "bin" / "python").exists():
        print("\n(dicompyler-core venv missing; see the module docstring)")
        return
    folder = _example_data()
    script = WORK / "dc_run.py"
    script.write_text(_DC_SCRIPT)
    ours_script = WORK / "ours_inproc.py"
    ours_script.write_text(_OURS_INPROC)
    labels = [f"rtcohort dvh ({root})" for root in code_roots]
    envs = []
    for i, root in enumerate(code_roots):
        env = {**os.environ, "PYTHONPATH": root}
        if bytecode:
            env.pop("PYTHONDONTWRITEBYTECODE", None)
            env["PYTHONPYCACHEPREFIX"] = str(WORK / "pycache" / str(i))
        envs.append(env)
    ours_cmd = [sys.executable, "-m", "rtcohort.cli", "dvh", str(folder), "--csv",
                str(WORK / "ours.csv")]  # fmt: skip
    dc_cmd = [str(DCVENV / "bin" / "python"), str(script), str(folder), "default"]
    for env, root in zip(envs, code_roots, strict=True):  # untimed: fill caches
        _timed(ours_cmd, env=env, cwd=root)
    names = [*labels, "dicompyler-core"]
    # per name: whole-process wall, CPU; in-process wall, CPU
    runs: dict[str, list[tuple[float, float, float, float]]] = {k: [] for k in names}
    load_start = os.getloadavg()[0]
    for _ in range(n):
        for label, env, root in zip(labels, envs, code_roots, strict=True):
            runs[label].append(_timed(ours_cmd, env=env, cwd=root))
        dc = _timed(dc_cmd)
        runs["dicompyler-core"].append(dc)
        for label, env, root in zip(labels, envs, code_roots, strict=True):
            w, c, _, _ = runs[label][-1]
            cmd = [sys.executable, str(ours_script), str(folder)]
            runs[label][-1] = (w, c, *_timed(cmd, env=env, cwd=root)[2:])
    kind = "bytecode cached" if bytecode else "compiled from source each run"
    print(f"\nmedian of {n} paired runs (example plan; rtcohort {kind})")
    print(
        f"load average (1 min): {load_start:.2f} at start, "
        f"{os.getloadavg()[0]:.2f} at end"
    )
    heads = ("whole wall", "whole CPU", "in-proc wall", "in-proc CPU")
    print(f"{'':<44}" + "".join(f"{h:>17}" for h in heads))
    dc_med = np.median(np.array(runs["dicompyler-core"]), axis=0)
    for name in names:
        med = np.median(np.array(runs[name]), axis=0)
        cells = "".join(
            f"{m:>8.2f} s{d / m:>7.1f}x" for m, d in zip(med, dc_med, strict=True)
        )
        print(f"{name[-44:]:<44}{cells}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--large", action="store_true", help="large case only")
    parser.add_argument(
        "--paired",
        type=int,
        metavar="N",
        help="only the whole-process comparison, median of N paired runs",
    )
    parser.add_argument(
        "--code-root",
        action="append",
        default=[],
        help="with --paired: a checkout to time (repeat; default this one)",
    )
    parser.add_argument(
        "--no-bytecode",
        action="store_true",
        help="with --paired: no bytecode cache for rtcohort (compile each run)",
    )
    args = parser.parse_args()
    if args.paired:
        roots = args.code_root or [str(ROOT.parent)]
        paired_whole_process(args.paired, roots, bytecode=not args.no_bytecode)
        return
    if not args.large:
        compare_dicompyler()
    large_case()


if __name__ == "__main__":
    main()
