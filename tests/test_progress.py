"""Progress as it reaches the user: a bar rewriting itself on a terminal, a few plain lines in a log."""

from __future__ import annotations

import io

import pytest

from modula import progress as progress_module
from modula.progress import Progress


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_in_a_log_a_counter_writes_a_line_at_each_tenth_and_a_total(monkeypatch):
    monkeypatch.setattr(progress_module, "LOG_INTERVAL_SECONDS", 0)
    log = io.StringIO()
    with Progress(log).counter("importing", 5000, "nodes") as counter:
        for _ in range(5000):
            counter.advance()
    lines = log.getvalue().splitlines()
    assert lines[:9] == [f"importing: {n * 500}/5000 nodes ({n * 10}%)" for n in range(1, 10)]
    assert lines[9].startswith("importing: 5000/5000 nodes in ") and lines[9].endswith(" nodes/s)")
    assert len(lines) == 10
    assert "\r" not in log.getvalue()


def test_in_a_log_lines_are_at_most_one_per_interval(monkeypatch):
    monkeypatch.setattr(progress_module, "LOG_INTERVAL_SECONDS", 3600)
    log = io.StringIO()
    with Progress(log).counter("importing", 5000, "nodes") as counter:
        for _ in range(5000):
            counter.advance()
    assert log.getvalue().splitlines()[:-1] == []  # only the total: no hour went by


def test_a_failed_count_ends_without_a_total_that_would_read_as_success():
    log = io.StringIO()
    with pytest.raises(RuntimeError):
        with Progress(log).counter("importing", 10, "nodes") as counter:
            counter.advance(3)
            raise RuntimeError("line 4 is bad")
    assert log.getvalue() == ""


def test_on_a_terminal_the_counter_rewrites_one_line():
    terminal = Terminal()
    with Progress(terminal).counter("importing", 100, "nodes") as counter:
        for _ in range(100):
            counter.advance()
    shown = terminal.getvalue()
    assert "\r" in shown and shown.endswith("\n") and shown.count("\n") == 1
    assert "importing: 100%" in shown and "100/100" in shown


def test_steps_are_lines_and_quiet_progress_writes_nothing():
    log = io.StringIO()
    Progress(log).step("manifest read: shop 1.0.0")
    Progress(log, quiet=True).step("not shown")
    with Progress(log, quiet=True).counter("importing", 2) as counter:
        counter.advance(2)
    assert log.getvalue() == "manifest read: shop 1.0.0\n"
