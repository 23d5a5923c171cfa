"""Start the Streamlit server with the pages' modules already imported.

``rtcohort serve`` runs ``python -m dashboards.launch run dashboards/app.py ...``
instead of ``python -m streamlit run ...``: the same Streamlit command line, but the
server process first imports every page module (and with them pandas, scipy, Altair,
lifelines, the FHIR models: about 2 s of CPU). Streamlit executes a page's file on its
first visit, and without this the first user to open a benchmark page waited for
those imports before the first chart. Importing here, before the server listens,
keeps them off every user's path and out of the threads that serve sessions
(no import runs concurrently with a session's script). The page files themselves are
still executed by ``st.navigation`` on each visit; importing them as modules only
defines their functions (each runs ``render()`` only as ``__main__``).
"""

from __future__ import annotations

import importlib
import pkgutil
import sys

import dashboards.pages

__all__ = ["main", "preload_pages"]


def preload_pages() -> list[str]:
    """Import every module of :mod:`dashboards.pages`; return their names.

    Examples
    --------
    >>> "dashboards.pages.outcomes" in preload_pages()
    True
    """
    names = [
        f"{dashboards.pages.__name__}.{info.name}"
        for info in pkgutil.iter_modules(dashboards.pages.__path__)
    ]
    for name in names:
        importlib.import_module(name)
    return names


def main() -> None:
    """Import the pages, then run Streamlit's command line with this one's arguments."""
    preload_pages()
    from streamlit.web.cli import main as streamlit_main

    sys.argv[0] = "streamlit"
    streamlit_main(prog_name="streamlit")


if __name__ == "__main__":
    main()
