"""Each field type's canonical text and typed copy, and what it refuses."""

from __future__ import annotations

import datetime as dt

import pytest

from modula.cms.field_types import InvalidValue, parse_value


@pytest.mark.parametrize("field_type, raw, canonical, number", [
    ("integer", " -007 ", "-7", -7.0),
    ("number", "1e3", "1000", 1000.0),
    ("number", "-0.0", "0", 0.0),
    ("number", "2.50", "2.5", 2.5),
    ("boolean", "False", "false", 0.0),
    ("media", "12", "12", 12.0),
])
def test_numbers_get_canonical_text_and_a_number(field_type, raw, canonical, number):
    stored = parse_value(field_type, raw)
    assert (stored.value, stored.value_number, stored.value_time) == (canonical, number, None)


def test_datetime_is_normalised_to_utc():
    stored = parse_value("datetime", "2024-03-10T23:30:00-05:00")
    assert stored.value == "2024-03-11T04:30:00Z"
    assert stored.value_time == dt.datetime(2024, 3, 11, 4, 30, tzinfo=dt.timezone.utc)


def test_date_keeps_the_day_and_a_midnight_time():
    stored = parse_value("date", "2024-02-29")
    assert stored.value == "2024-02-29"
    assert stored.value_time == dt.datetime(2024, 2, 29, tzinfo=dt.timezone.utc)


def test_json_is_compacted_and_keeps_unicode():
    assert parse_value("json", '{ "name" : "Zoë" , "n": [1, 2] }').value == '{"name":"Zoë","n":[1,2]}'


@pytest.mark.parametrize("field_type, raw", [
    ("integer", "1.0"), ("integer", "9" * 30), ("number", "inf"), ("number", "NaN"), ("number", "1e999"),
    ("boolean", "1"), ("date", "2024-13-01"), ("date", "24-1-1"), ("datetime", "2024-01-01"),
    ("json", "{'a': 1}"), ("media", "0"), ("content", "-3"), ("content", "abc"),
])
def test_bad_values_are_refused_with_a_message(field_type, raw):
    with pytest.raises(InvalidValue) as raised:
        parse_value(field_type, raw)
    assert str(raised.value)
