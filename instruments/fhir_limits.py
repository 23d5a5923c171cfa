"""Bounds on FHIR JSON checked before parsing: size in bytes and nesting depth.

``json.loads`` recurses once per nesting level: a document nested a few thousand levels
deep ends in a ``RecursionError`` (and a 2 GB file is read whole into memory). The
bounds here are checked on the raw text, without recursion and without building any
object, so that bad input gets a :class:`~instruments.errors.FhirError` naming the file
and the reason instead.

The limits are generous for real resources: a QLQ-C30 ``QuestionnaireResponse`` is about
3 kB and nested 6 levels (8 inside a ``Bundle``; questionnaire groups add 2 per level).

Examples
--------
>>> json_depth(b'{"a": [1, {"b": "[[[["}]}')
3
>>> check_json_bounds(b"[" * 100 + b"]" * 100, source="d.json")  # doctest: +ELLIPSIS
Traceback (most recent call last):
...
instruments.errors.FhirError: d.json: JSON nested deeper than 64 levels (refused ...)
"""

from __future__ import annotations

import re

from instruments.errors import FhirError

__all__ = ["MAX_FHIR_BYTES", "MAX_JSON_DEPTH", "check_json_bounds", "json_depth"]

#: Largest FHIR JSON document read (bytes): 64 MiB, about 20,000 QLQ-C30 responses.
MAX_FHIR_BYTES = 64 * 1024 * 1024
#: Deepest nesting of JSON objects and arrays accepted.
MAX_JSON_DEPTH = 64

# A JSON string (an unterminated one runs to the end, so the scan never backtracks),
# or one bracket. Brackets inside strings are skipped with the string.
_TOKEN = re.compile(rb'"(?:[^"\\]|\\.)*+(?:"|\Z)|[\[{\]}]', re.DOTALL)
_OPEN = frozenset(b"[{")


def json_depth(data: bytes, *, stop_above: int | None = None) -> int:
    """Return the deepest nesting of objects and arrays in JSON text, without parsing.

    Parameters
    ----------
    data
        The JSON text (UTF-8 bytes).
    stop_above
        Return as soon as the depth exceeds this (the scan need not finish).

    Returns
    -------
    int
        Maximum nesting depth (0 for a scalar); brackets inside strings do not count.
    """
    depth = deepest = 0
    for match in _TOKEN.finditer(data):
        first = match.group()[0]
        if first in _OPEN:
            depth += 1
            if depth > deepest:
                deepest = depth
                if stop_above is not None and deepest > stop_above:
                    return deepest
        elif first != ord('"'):
            depth -= 1
    return deepest


def check_json_bounds(
    data: str | bytes,
    *,
    source: str = "$",
    max_bytes: int = MAX_FHIR_BYTES,
    max_depth: int = MAX_JSON_DEPTH,
) -> bytes:
    """Refuse JSON text larger than ``max_bytes`` or nested deeper than ``max_depth``.

    Parameters
    ----------
    data
        JSON text.
    source
        Name of the input (a file name) for the error message.
    max_bytes, max_depth
        The bounds.

    Returns
    -------
    bytes
        The text as UTF-8 bytes, ready for ``json.loads``.

    Raises
    ------
    FhirError
        Naming ``source`` and the bound exceeded.
    """
    raw = (
        data.encode("utf-8", errors="surrogatepass") if isinstance(data, str) else data
    )
    if len(raw) > max_bytes:
        raise FhirError(
            [
                f"{source}: {len(raw):,} bytes is larger than the limit of"
                f" {max_bytes:,} bytes for a FHIR document (refused before parsing)"
            ]
        )
    if json_depth(raw, stop_above=max_depth) > max_depth:
        raise FhirError(
            [
                f"{source}: JSON nested deeper than {max_depth} levels"
                " (refused before parsing)"
            ]
        )
    return raw
