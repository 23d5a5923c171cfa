"""Run the fuzz cases of tests/test_fuzz.py through the commands, under a memory cap.

Usage: ``python -m tests.fuzz_child MANIFEST.json RESULTS.json CAP_BYTES DEADLINE_S``.
The manifest lists ``[command, path]`` pairs (command: import, prom or toxicity);
the environment names the database, data folder and key file. Each case runs through
``rtcohort`` as a user would (the typer app, in this process) until the deadline;
the results (exit code, output, exception) and the peak RSS are written as JSON.
"""

from __future__ import annotations

import json
import os
import resource
import sys
import time
import traceback
from pathlib import Path


def main() -> None:
    manifest, results, cap, deadline_s = sys.argv[1:5]
    resource.setrlimit(resource.RLIMIT_AS, (int(cap), int(cap)))
    started = time.monotonic()
    from typer.testing import CliRunner

    import etl

    assert Path(etl.__file__).resolve().parents[1] == Path.cwd().resolve(), etl.__file__
    from rtcohort.cli import app
    from tests.memory import peak_rss

    runner = CliRunner()
    key = ["--centre", os.environ["FUZZ_CENTRE"], "--key-file", os.environ["FUZZ_KEY"]]
    done = []
    for command, path in json.loads(Path(manifest).read_text()):
        if time.monotonic() - started > float(deadline_s):
            break
        args = [command, path] if command == "import" else [command, "import", path]
        result = runner.invoke(app, [*args, *key])
        exc = result.exception
        trace = None
        if "internal error" in result.output:  # the traceback, for the report
            again = runner.invoke(app, ["--debug", *args, *key])
            if again.exc_info is not None:
                trace = "".join(traceback.format_exception(*again.exc_info)[-6:])
        done.append(
            {
                "case": path,
                "code": result.exit_code,
                "output": result.output[-2000:],
                "exception": None
                if exc is None or isinstance(exc, SystemExit)
                else f"{type(exc).__name__}: {exc}",
                "traceback": trace,
            }
        )
    Path(results).write_text(json.dumps({"cases": done, "peak_bytes": peak_rss()}))


if __name__ == "__main__":
    main()
