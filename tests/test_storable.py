"""db/storable.py: the quick check by JSON's encoder never lets through what the walk refuses, and
the answer (path and problem) is the walk's in every case."""

from __future__ import annotations

import pytest

from modula.db import storable


def nested(depth: int, leaf):
    value = leaf
    for _ in range(depth):
        value = {"a": [value]}
    return value


CASES = [
    {"title": "plain", "n": 1, "x": 1.5, "ok": True, "none": None},
    {"emoji": "😀 café", "text that says \\u0000": "\\u0000"},
    {"nul": "a\x00b"},
    {"key\x00": 1},
    {"deep": nested(10, "x\ud800")},
    {"inf": float("inf")},
    {"list": [1, float("nan")]},
    nested(60, "fine"),  # 120 levels: deeper than the quick check vouches for, and too deep for the walk
    nested(20, "fine"),
    ["\udfff"],
]


@pytest.mark.parametrize("value", CASES)
def test_the_quick_check_agrees_with_the_walk(value, monkeypatch):
    answer = storable.unstorable(value, ("variables",))
    if storable._plainly_storable(value):
        assert answer is None
    monkeypatch.setattr(storable, "_plainly_storable", lambda value: False)
    assert storable.unstorable(value, ("variables",)) == answer


def test_the_walk_names_the_value_and_what_is_wrong():
    assert storable.unstorable({"a": [1, "x\x00"]}, ("variables",)) == (
        ("variables", "a", 1), "holds a NUL character (\\u0000), which text cannot store")
    assert storable.unstorable({"big": float("-inf")}) == (("big",), "is -inf, not a finite number")
    assert storable.unstorable(nested(60, "fine"))[1] == "is nested too deeply"
    assert storable.unstorable(nested(20, "fine")) is None
