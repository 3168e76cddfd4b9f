"""Failed logins are limited per (username, client address) and per client address, so passwords
cannot be guessed at speed and one address cannot spray guesses across many accounts.

The counts live in this process's memory: with several server processes each keeps its own, so
the effective limit is the per-process limit times the number of processes. That still turns
millions of guesses into a handful; a shared store (the database, Redis) would make it exact.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable
from typing import Any

from modula.errors import ModulaError

PER_USER_AND_ADDRESS = 5
PER_ADDRESS = 20
WINDOW_SECONDS = 15 * 60
# Beyond this many tracked keys, stale ones are swept so memory stays bounded under attack.
_SWEEP_ABOVE = 10_000


class LoginLimiter:
    """Counts failed logins in a sliding window and refuses further attempts past the limits."""

    def __init__(self, *, per_user_and_address: int = PER_USER_AND_ADDRESS, per_address: int = PER_ADDRESS,
                 window_seconds: float = WINDOW_SECONDS, clock: Callable[[], float] = time.monotonic) -> None:
        self.per_user_and_address = per_user_and_address
        self.per_address = per_address
        self.window = window_seconds
        self.clock = clock
        self._failures: dict[tuple[str, ...], deque[float]] = {}

    def check(self, username: str, address: str | None) -> None:
        """Raise LOGIN_RATE_LIMITED when this attempt must not even be tried."""
        now = self.clock()
        waits = [
            self._wait(self._user_key(username, address), self.per_user_and_address, now),
            self._wait(self._address_key(address), self.per_address, now),
        ]
        wait = max(waits)
        if wait > 0:
            raise ModulaError("LOGIN_RATE_LIMITED",
                              f"too many failed logins: try again in {int(wait // 60) + 1} minute(s)")

    def failed(self, username: str, address: str | None) -> None:
        now = self.clock()
        if len(self._failures) > _SWEEP_ABOVE:
            self._sweep(now)
        for key in (self._user_key(username, address), self._address_key(address)):
            self._failures.setdefault(key, deque()).append(now)

    def succeeded(self, username: str, address: str | None) -> None:
        """The user proved the password: their own count starts over (the address's does not, or
        one valid account would let an address reset its budget for guessing others)."""
        self._failures.pop(self._user_key(username, address), None)

    def _wait(self, key: tuple[str, ...], limit: int, now: float) -> float:
        """Seconds until `key` may try again (0: now)."""
        times = self._failures.get(key)
        if not times:
            return 0
        while times and times[0] <= now - self.window:
            times.popleft()
        if not times:
            del self._failures[key]
            return 0
        if len(times) < limit:
            return 0
        return times[-limit] + self.window - now

    def _sweep(self, now: float) -> None:
        for key in [k for k, times in self._failures.items() if not times or times[-1] <= now - self.window]:
            del self._failures[key]

    @staticmethod
    def _user_key(username: str, address: str | None) -> tuple[str, ...]:
        return ("user", username.casefold(), address or "")

    @staticmethod
    def _address_key(address: str | None) -> tuple[str, ...]:
        return ("address", address or "")


def login_limiter(app_state: Any) -> LoginLimiter:
    """The application's limiter, made on its first use and kept on the app state (one per app,
    so tests with separate apps never share counts)."""
    limiter = getattr(app_state, "login_limiter", None)
    if limiter is None:
        limiter = app_state.login_limiter = LoginLimiter()
    return limiter
