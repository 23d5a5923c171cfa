"""etl.deid.identity: the one hospital identifier -> pseudonym and date offset."""

from __future__ import annotations

import datetime

from etl.deid.identity import identify, known_pseudonym
from etl.deid.keys import CentreKey
from etl.deid.pseudonymise import date_offset_days, pseudonym, shift_date

KEY = CentreKey("AMS01", bytes(range(32)))


def test_identify_matches_the_deid_derivations():
    who = identify(KEY, " 123456 ")
    assert who.pseudonym == pseudonym(KEY, "123456")
    assert who.date_offset_days == date_offset_days(KEY, "123456")
    day = datetime.date(2025, 3, 1)
    assert who.shift(day) == shift_date(KEY, "123456", day)
    assert identify(CentreKey("AMS01", bytes(32)), "123456") != who


def test_pseudonym_alone_has_no_offset_and_keeps_dates():
    who = known_pseudonym(" AMS01-ABC ")
    assert (who.pseudonym, who.date_offset_days) == ("AMS01-ABC", None)
    assert who.shift(datetime.date(2025, 3, 1)) == datetime.date(2025, 3, 1)
