"""Entry point of the web app: ``streamlit run dashboards/app.py`` ."""

from __future__ import annotations

import sys
from pathlib import Path

if __package__ in (None, ""):  # run as a script: make the packages importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from dashboards.ui.shell import run

run()
