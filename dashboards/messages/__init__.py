"""The message catalogue: every interface text of the web app, one file per language.

``en.toml`` ships; a translation is a copy with the same keys named by its language tag
(``fi.toml``), chosen by ``RTCOHORT_LANGUAGE``. Keys are ``section.name``; a key the
chosen language lacks falls back to English, a key English lacks is a programming error.

Examples
--------
>>> t("prom.step", step=2, total=6)
'Step 2 of 6'
"""

from __future__ import annotations

import os
import tomllib
from functools import cache
from pathlib import Path

__all__ = ["available_languages", "catalogue", "language", "t"]

_HERE = Path(__file__).parent
_DEFAULT = "en"


def available_languages() -> tuple[str, ...]:
    """Language tags that have a catalogue file."""
    return tuple(sorted(p.stem for p in _HERE.glob("*.toml")))


@cache
def catalogue(lang: str) -> dict[str, str]:
    """Return the flat ``{section.key: text}`` catalogue of ``lang`` (may be empty)."""
    path = _HERE / f"{lang}.toml"
    if not path.exists():
        return {}
    data = tomllib.loads(path.read_text(encoding="utf-8"))
    flat: dict[str, str] = {}
    for section, entries in data.items():
        for key, text in entries.items():
            flat[f"{section}.{key}"] = str(text)
    return flat


def language() -> str:
    """Return the interface language (``RTCOHORT_LANGUAGE``, default ``en``)."""
    return os.environ.get("RTCOHORT_LANGUAGE", _DEFAULT).strip().lower() or _DEFAULT


def t(key: str, **values: object) -> str:
    """Return the text of ``key`` in the interface language, placeholders filled.

    Raises
    ------
    KeyError
        When not even the English catalogue has ``key``.
    """
    lang = language()
    text = catalogue(lang).get(key) or catalogue(lang.split("-")[0]).get(key)
    if text is None:
        text = catalogue(_DEFAULT)[key]
    return text.format(**values) if values else text
