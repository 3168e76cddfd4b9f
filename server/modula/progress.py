"""Progress of long work (migrations, plugin installs, imports) on stderr, leaving stdout to results:
a bar that rewrites itself on a terminal (tqdm), plain lines at a steady rate in logs and CI."""

from __future__ import annotations

import os
import sys
import time
from typing import TextIO

# In a log, a counter reports at every tenth of the work, but no more often than this.
LOG_INTERVAL_SECONDS = 2.0


class Progress:
    """Where a command reports what it is doing. `quiet` reports nothing (for library use)."""

    def __init__(self, stream: TextIO | None = None, *, quiet: bool = False) -> None:
        self.stream = stream if stream is not None else sys.stderr
        self.quiet = quiet

    @property
    def on_terminal(self) -> bool:
        return bool(getattr(self.stream, "isatty", lambda: False)())

    def step(self, message: str) -> None:
        """One finished step of a few: a line of its own."""
        if not self.quiet:
            print(message, file=self.stream, flush=True)

    def counter(self, label: str, total: int, unit: str = "rows") -> Counter:
        """A count of `total` items of work, advanced as they are done; close() ends it."""
        if self.quiet:
            return Counter(label, total, unit)
        if self.on_terminal:
            return _BarCounter(label, total, unit, self.stream)
        return _LogCounter(label, total, unit, self.stream)


class LoggedProgress(Progress):
    """Steps as records of `logger` rather than bare lines: `serve --log-format json` keeps every
    line of stderr one JSON object. Counters count silently."""

    def __init__(self, logger) -> None:
        super().__init__(quiet=True)
        self.logger = logger

    def step(self, message: str) -> None:
        self.logger.info("%s", message)


class Counter:
    """Counts silently; the subclasses show the count."""

    def __init__(self, label: str, total: int, unit: str) -> None:
        self.label, self.total, self.unit = label, total, unit
        self.done = 0
        self.started = time.monotonic()

    def advance(self, n: int = 1) -> None:
        self.done += n

    def close(self, *, failed: bool = False) -> None:
        pass

    def __enter__(self) -> Counter:
        return self

    def __exit__(self, kind, value, trace) -> None:
        self.close(failed=kind is not None)

    def rate(self) -> float:
        elapsed = time.monotonic() - self.started
        return self.done / elapsed if elapsed > 0 else 0.0


class _BarCounter(Counter):
    def __init__(self, label: str, total: int, unit: str, stream: TextIO) -> None:
        from tqdm import tqdm

        super().__init__(label, total, unit)
        width = _columns(stream)
        # A terminal that reports no size (0x0, as under `script`) would get a bar of width 0.
        self._bar = tqdm(total=total, desc=label, unit=f" {unit}", file=stream, leave=True,
                         ncols=None if width else 80, nrows=None if width else 24, dynamic_ncols=bool(width))

    def advance(self, n: int = 1) -> None:
        super().advance(n)
        self._bar.update(n)

    def close(self, *, failed: bool = False) -> None:
        self._bar.close()


def _columns(stream: TextIO) -> int:
    try:
        return os.get_terminal_size(stream.fileno()).columns
    except (OSError, ValueError, AttributeError):  # not a real terminal (io.UnsupportedOperation is an OSError)
        return 0


class _LogCounter(Counter):
    """`label: 500/5000 rows (10%)` lines at each tenth (at most one per LOG_INTERVAL_SECONDS), and
    a last line with the total and the rate, so a CI log stays short whatever the size."""

    def __init__(self, label: str, total: int, unit: str, stream: TextIO) -> None:
        super().__init__(label, total, unit)
        self.stream = stream
        self._next_tenth = 1
        self._last_line = self.started

    def advance(self, n: int = 1) -> None:
        super().advance(n)
        if self.total <= 0 or self.done >= self.total:
            return
        tenth = self.done * 10 // self.total
        now = time.monotonic()
        if tenth >= self._next_tenth and now - self._last_line >= LOG_INTERVAL_SECONDS:
            self._next_tenth = tenth + 1
            self._last_line = now
            print(f"{self.label}: {self.done}/{self.total} {self.unit} ({tenth * 10}%)", file=self.stream, flush=True)

    def close(self, *, failed: bool = False) -> None:
        if failed:
            return  # the error says what happened; a total here would read as success
        elapsed = time.monotonic() - self.started
        print(f"{self.label}: {self.done}/{self.total} {self.unit} in {elapsed:.1f} s ({self.rate():.0f} {self.unit}/s)",
              file=self.stream, flush=True)
