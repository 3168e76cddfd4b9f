"""The field types a datatype may use, and how a value of each is checked and stored.

In the generic API every value travels as a string. Each type turns the client's string into
its canonical text plus a typed copy (`value_number` or `value_time`), so later filters and
sorts compare numbers as numbers and dates as dates.
"""

from __future__ import annotations

import datetime as dt
import json
import math
import re
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation


class InvalidValue(ValueError):
    """The message says what a value of this type must look like."""


@dataclass(frozen=True)
class StoredValue:
    value: str
    value_number: float | None = None
    value_time: dt.datetime | None = None


_INTEGER = re.compile(r"^[+-]?\d+$")
_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
_INT64 = 2**63


def _text(raw: str) -> StoredValue:
    return StoredValue(raw)


def _integer(raw: str) -> StoredValue:
    text = raw.strip()
    if not _INTEGER.match(text):
        raise InvalidValue(f"expected an integer such as 42, got {raw!r}")
    number = int(text)
    if not -_INT64 <= number < _INT64:
        raise InvalidValue("integer is out of the 64-bit range")
    return StoredValue(str(number), value_number=float(number))


def _number(raw: str) -> StoredValue:
    try:
        number = Decimal(raw.strip())
    except InvalidOperation:
        raise InvalidValue(f"expected a number such as 3.5, got {raw!r}") from None
    if not number.is_finite() or not math.isfinite(float(number)):
        raise InvalidValue(f"expected a finite number, got {raw!r}")
    canonical = format(number.normalize(), "f") if number != 0 else "0"
    return StoredValue(canonical, value_number=float(number))


def _boolean(raw: str) -> StoredValue:
    text = raw.strip().lower()
    if text not in ("true", "false"):
        raise InvalidValue(f"expected true or false, got {raw!r}")
    return StoredValue(text, value_number=1.0 if text == "true" else 0.0)


def _date(raw: str) -> StoredValue:
    text = raw.strip()
    try:
        if not _DATE.match(text):
            raise ValueError
        day = dt.date.fromisoformat(text)
    except ValueError:
        raise InvalidValue(f"expected a date as YYYY-MM-DD, got {raw!r}") from None
    midnight = dt.datetime(day.year, day.month, day.day, tzinfo=dt.timezone.utc)
    return StoredValue(day.isoformat(), value_time=midnight)


def _datetime(raw: str) -> StoredValue:
    text = raw.strip()
    try:
        moment = dt.datetime.fromisoformat(text.replace("z", "Z"))
    except ValueError:
        raise InvalidValue(f"expected an ISO 8601 date and time such as 2024-05-01T12:00:00Z, got {raw!r}") from None
    if "T" not in text.upper() and " " not in text:
        raise InvalidValue(f"expected a date and a time, got {raw!r}")
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=dt.timezone.utc)
    moment = moment.astimezone(dt.timezone.utc)
    canonical = moment.replace(tzinfo=None).isoformat() + "Z"
    return StoredValue(canonical, value_time=moment)


def _json(raw: str) -> StoredValue:
    try:
        parsed = json.loads(raw)
    except ValueError as exc:
        raise InvalidValue(f"expected JSON text: {exc.msg} at line {exc.lineno} column {exc.colno}") from None
    return StoredValue(json.dumps(parsed, separators=(",", ":"), ensure_ascii=False))


def _reference(kind: str):
    def parse(raw: str) -> StoredValue:
        text = raw.strip()
        if not _INTEGER.match(text) or int(text) <= 0:
            raise InvalidValue(f"expected the id of a {kind}, got {raw!r}")
        number = int(text)
        return StoredValue(str(number), value_number=float(number))

    return parse


PARSERS = {
    "text": _text,
    "richtext": _text,
    "integer": _integer,
    "number": _number,
    "boolean": _boolean,
    "date": _date,
    "datetime": _datetime,
    "json": _json,
    "media": _reference("media item"),
    "content": _reference("content node"),
}

FIELD_TYPES = tuple(PARSERS)

# Types whose values name a row elsewhere, and the table that row must exist in.
REFERENCE_TABLES = {"media": "media", "content": "content_data"}


def parse_value(field_type: str, raw: str) -> StoredValue:
    """Check `raw` against `field_type`; raises InvalidValue with a message for the client."""
    return PARSERS[field_type](raw)
