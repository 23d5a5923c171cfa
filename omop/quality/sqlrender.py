"""Evaluate the SqlRender expressions that occur in DQD control-file cells, safely.

A tiny recursive-descent parser, never ``eval``. The grammar covers what the v5.4
control files hold and a little more::

    expr    := term (('+' | '-') term)*
    term    := NUMBER | STRING | call | '(' expr ')' | '-' term
    call    := GETDATE '(' ')' | YEAR '(' expr ')'
             | DATEADD '(' unit ',' expr ',' expr ')'
    unit    := dd | day | d | mm | month | m | yy | year | yyyy

A quoted ``'YYYYMMDD'`` (or ``'YYYY-MM-DD'``) string is a date. ``+``/``-`` between a
date and a number adds days (SQL Server semantics). Anything else raises
:class:`SqlRenderError`.

Examples
--------
>>> evaluate("DATEADD(dd,1,GETDATE())", today=datetime.date(2024, 2, 28))
datetime.date(2024, 2, 29)
>>> evaluate("YEAR(GETDATE())+1", today=datetime.date(2024, 2, 28))
2025
>>> evaluate("'19500101'")
datetime.date(1950, 1, 1)
"""

from __future__ import annotations

import calendar
import datetime
import re

from omop.quality.errors import ControlFileError

__all__ = ["SqlRenderError", "Value", "evaluate"]

Value = int | float | datetime.date

_TOKEN = re.compile(
    r"\s*(?:(?P<num>\d+(?:\.\d*)?(?:[eE][-+]?\d+)?)|(?P<str>'[^']*')"
    r"|(?P<name>[A-Za-z_]+)|(?P<op>[-+(),]))"
)
_UNITS = {
    "dd": "day",
    "day": "day",
    "d": "day",
    "mm": "month",
    "month": "month",
    "m": "month",
    "yy": "year",
    "yyyy": "year",
    "year": "year",
}


class SqlRenderError(ControlFileError):
    """A control-file cell holds an expression outside the supported grammar."""


def _tokens(text: str) -> list[tuple[str, str]]:
    out: list[tuple[str, str]] = []
    pos = 0
    stripped = text.rstrip()
    while pos < len(stripped):
        match = _TOKEN.match(stripped, pos)
        if match is None or match.end() == pos:
            raise SqlRenderError(f"cannot parse {text!r} at character {pos + 1}")
        kind = match.lastgroup or ""
        out.append((kind, match.group(kind)))
        pos = match.end()
    return out


def _add_months(day: datetime.date, months: int) -> datetime.date:
    total = day.year * 12 + day.month - 1 + months
    year, month = divmod(total, 12)
    last = calendar.monthrange(year, month + 1)[1]
    return day.replace(year=year, month=month + 1, day=min(day.day, last))


class _Parser:
    def __init__(self, text: str, today: datetime.date) -> None:
        self.text = text
        self.tokens = _tokens(text)
        self.pos = 0
        self.today = today

    def fail(self, why: str) -> SqlRenderError:
        return SqlRenderError(f"cannot evaluate {self.text!r}: {why}")

    def peek(self) -> tuple[str, str] | None:
        return self.tokens[self.pos] if self.pos < len(self.tokens) else None

    def take(self, value: str | None = None) -> tuple[str, str]:
        token = self.peek()
        if token is None:
            raise self.fail("unexpected end")
        if value is not None and token[1].lower() != value:
            raise self.fail(f"expected {value!r}, found {token[1]!r}")
        self.pos += 1
        return token

    def parse(self) -> Value:
        value = self.expr()
        if self.peek() is not None:
            raise self.fail(f"unexpected {self.peek()[1]!r}")  # type: ignore[index]
        return value

    def expr(self) -> Value:
        value = self.term()
        while (token := self.peek()) is not None and token[1] in "+-":
            self.take()
            other = self.term()
            value = self.combine(value, token[1], other)
        return value

    def combine(self, left: Value, op: str, right: Value) -> Value:
        sign = 1 if op == "+" else -1
        if isinstance(left, datetime.date) and isinstance(right, int):
            return left + datetime.timedelta(days=sign * right)
        if isinstance(left, datetime.date) or isinstance(right, datetime.date):
            raise self.fail(f"cannot apply {op!r} to a date here")
        return left + sign * right

    def term(self) -> Value:
        kind, text = self.take()
        if kind == "num":
            return float(text) if any(c in text for c in ".eE") else int(text)
        if kind == "str":
            return self.date_literal(text[1:-1])
        if text == "(":
            value = self.expr()
            self.take(")")
            return value
        if text == "-":
            value = self.term()
            if isinstance(value, datetime.date):
                raise self.fail("cannot negate a date")
            return -value
        if kind == "name":
            return self.call(text.upper())
        raise self.fail(f"unexpected {text!r}")

    def date_literal(self, text: str) -> datetime.date:
        digits = text.replace("-", "")
        if not re.fullmatch(r"\d{8}", digits):
            raise self.fail(f"{text!r} is not a YYYYMMDD date")
        try:
            return datetime.date(int(digits[:4]), int(digits[4:6]), int(digits[6:]))
        except ValueError as exc:
            raise self.fail(str(exc)) from exc

    def call(self, name: str) -> Value:
        self.take("(")
        if name == "GETDATE":
            self.take(")")
            return self.today
        if name == "YEAR":
            day = self.expr()
            self.take(")")
            if not isinstance(day, datetime.date):
                raise self.fail("YEAR() needs a date")
            return day.year
        if name == "DATEADD":
            unit = _UNITS.get(self.take()[1].lower())
            if unit is None:
                raise self.fail("unknown DATEADD unit")
            self.take(",")
            amount = self.expr()
            self.take(",")
            day = self.expr()
            self.take(")")
            if not isinstance(amount, int) or not isinstance(day, datetime.date):
                raise self.fail("DATEADD(unit, integer, date) expected")
            if unit == "day":
                return day + datetime.timedelta(days=amount)
            return _add_months(day, amount * (12 if unit == "year" else 1))
        raise self.fail(f"unknown function {name}()")


def evaluate(text: str, *, today: datetime.date | None = None) -> Value:
    """Return the value of a control-file cell: a number, a date or an expression.

    Parameters
    ----------
    text
        The cell, e.g. ``"0"``, ``"'19500101'"``, ``"DATEADD(dd,1,GETDATE())"``.
    today
        The date ``GETDATE()`` stands for; the local date when omitted.

    Raises
    ------
    SqlRenderError
        When the text is empty or outside the supported grammar.
    """
    if not text.strip():
        raise SqlRenderError("empty expression")
    day = today if today is not None else datetime.date.today()  # noqa: DTZ011
    return _Parser(text, day).parse()
