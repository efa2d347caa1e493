"""What the handlers need from the runtime, as protocols: the service injects the adapters."""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol

from events.recorded import NewEvent


class EventRecorder(Protocol):
    async def record(self, event: NewEvent) -> bool:
        """Append `event` durably; True if new, False if it was recorded before. Raises on failure."""
        ...


# Whether a failure to record may pass if tried again (database down, deadlock) or never will.
IsTransient = Callable[[BaseException], bool]
