"""Site-supplied item wording of licensed questionnaires.

EORTC questionnaires are licensed: rtcohort ships no item wording. A site that holds the
official language version writes it to a UTF-8 CSV file ``item,language,text``::

    item,language,text
    1,en,<item 1 as printed in the official English version>
    q1,de,<item 1 of the German version>

``item`` is the item number or its linkId (``q1``); ``language`` a BCP-47 tag (``en``,
``de-CH``). Without a file, or for an item or language the file lacks, forms show the
item number and a neutral topic label (``Item 9 (pain)``).

Examples
--------
>>> from instruments.registry import get_instrument
>>> Wording.empty().text(get_instrument("QLQ-C30").spec.items[8], "en")
'Item 9 (pain)'
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Mapping
from pathlib import Path

from instruments.errors import WordingFileError
from instruments.scoring import InstrumentSpec, ItemSpec

__all__ = ["Wording", "load_wording", "neutral_label", "parse_wording"]

_COLUMNS = ("item", "language", "text")


def neutral_label(item: ItemSpec) -> str:
    """Item number and neutral topic label, e.g. ``Item 9 (pain)``."""
    return f"Item {item.number} ({item.label})" if item.label else f"Item {item.number}"


class Wording:
    """Item texts by (item number, language).

    Parameters
    ----------
    texts
        ``(item number, language) -> text``.
    """

    def __init__(self, texts: Mapping[tuple[int, str], str]) -> None:
        self._texts = {(n, lang.lower()): t for (n, lang), t in texts.items()}

    @classmethod
    def empty(cls) -> Wording:
        """No wording: every item gets its neutral label."""
        return cls({})

    @property
    def languages(self) -> tuple[str, ...]:
        """Languages present in the file."""
        return tuple(sorted({lang for _, lang in self._texts}))

    def text(self, item: ItemSpec, language: str | None = None) -> str:
        """Return the site's wording of ``item`` in ``language``, else a neutral label.

        A regional tag falls back to its language (``de-CH`` -> ``de``).
        """
        if language:
            lang = language.lower()
            for candidate in (lang, lang.split("-")[0]):
                found = self._texts.get((item.number, candidate))
                if found:
                    return found
        return neutral_label(item)


def parse_wording(
    rows: Iterable[Mapping[str, str | None]],
    spec: InstrumentSpec,
    *,
    source: str = "wording file",
) -> Wording:
    """Parse wording rows for ``spec``, naming the line of the first problem.

    Raises
    ------
    WordingFileError
        A missing column, an unknown item, an empty language or text, or an item given
        twice for one language.
    """
    texts: dict[tuple[int, str], str] = {}
    known = {item.number for item in spec.items}
    for line, row in enumerate(rows, start=2):
        for column in _COLUMNS:
            if column not in row:
                raise WordingFileError(f"{source}: missing column {column!r}")
        where = f"{source} line {line}"
        raw = (row.get("item") or "").strip()
        number_text = raw[1:] if raw[:1].lower() == "q" else raw
        if not number_text.isdigit() or int(number_text) not in known:
            raise WordingFileError(f"{where} item: {spec.code} has no item {raw!r}")
        language = (row.get("language") or "").strip().lower()
        text = (row.get("text") or "").strip()
        if not language or not text:
            field = "language" if not language else "text"
            raise WordingFileError(f"{where} {field}: empty")
        key = (int(number_text), language)
        if key in texts:
            raise WordingFileError(f"{where}: item {raw} given twice for {language}")
        texts[key] = text
    return Wording(texts)


def load_wording(path: Path | str, spec: InstrumentSpec) -> Wording:
    """Read a site wording file (UTF-8 CSV ``item,language,text``) for ``spec``."""
    file = Path(path)
    try:
        content = file.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as exc:
        raise WordingFileError(f"{file}: cannot read ({exc})") from None
    return parse_wording(csv.DictReader(io.StringIO(content)), spec, source=str(file))
