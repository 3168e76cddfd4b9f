"""How the outbox worker retries: attempts, exponential backoff, leases and concurrency."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class DeliveryPolicy:
    max_attempts: int = 8  # then the entry is dead (an admin may retry it)
    backoff_seconds: float = 1.0  # before the second attempt; doubled after each failure
    backoff_max_seconds: float = 300.0
    per_plugin: int = 4  # deliveries of one plugin running at once in one process
    batch: int = 32  # deliveries running at once in one process, all plugins together
    lease_seconds: float = 60.0  # a claimed entry is this worker's; a killed worker's comes back after it
    poll_seconds: float = 0.25  # between looks at the table when nothing is due

    @classmethod
    def from_settings(cls, settings) -> DeliveryPolicy:
        return cls(max_attempts=settings.outbox_max_attempts, backoff_seconds=settings.outbox_backoff_seconds,
                   backoff_max_seconds=settings.outbox_backoff_max_seconds, per_plugin=settings.outbox_per_plugin,
                   lease_seconds=settings.outbox_lease_seconds, poll_seconds=settings.outbox_poll_seconds)

    def retry_in(self, attempts: int) -> float | None:
        """Seconds until the next attempt after `attempts` failed ones; None: no attempt is left."""
        if attempts >= self.max_attempts:
            return None
        return min(self.backoff_max_seconds, self.backoff_seconds * 2 ** (attempts - 1))
