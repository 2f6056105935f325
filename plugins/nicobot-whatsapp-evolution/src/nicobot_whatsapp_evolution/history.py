"""What the channel remembers across restarts to tell a late message from a history
replay: the instance's last offline window and the newest customer message seen.

Kept through the core's channel state (``ChannelContext.load_state``/``save_state``),
so a restarted nicobot knows them; written only when they change (the offline gateway
floods ``connection.update``, which costs nothing here)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable
from datetime import UTC, datetime, timedelta

from .parsing import Freshness

OFFLINE_FROM = "offline_from"
OFFLINE_UNTIL = "offline_until"
LAST_SEEN = "last_seen"
#: The newest message seen is saved when it moved on by this much (a crash then makes
#: the catch-up window a little larger; dedup absorbs the overlap).
SEEN_SAVE_STEP = timedelta(seconds=10)
OPEN = "open"

Load = Callable[[str], Awaitable[str | None]]
Save = Callable[[str, str | None], Awaitable[None]]


def _parse(value: str | None) -> datetime | None:
    if not value:
        return None
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        return None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


class ConnectionHistory:
    def __init__(self, load: Load | None, save: Save | None) -> None:
        self._load, self._save = load, save
        self.online: bool | None = None
        self.offline_from: datetime | None = None
        #: When the last offline window ended (the last open), or None if none is known.
        self.offline_until: datetime | None = None
        self.last_seen: datetime | None = None
        self._saved_seen: datetime | None = None

    async def load(self) -> None:
        if self._load is None:
            return
        self.offline_from = _parse(await self._load(OFFLINE_FROM))
        self.offline_until = _parse(await self._load(OFFLINE_UNTIL))
        self.last_seen = self._saved_seen = _parse(await self._load(LAST_SEEN))

    async def _put(self, key: str, value: datetime | None) -> None:
        if self._save is not None:
            await self._save(key, value.isoformat() if value else None)

    def freshness(self, max_age_seconds: float, max_late_seconds: float) -> Freshness:
        window = None
        if self.offline_until is not None:
            window = (self.offline_from, self.offline_until)
        return Freshness(max_age_seconds, max_late_seconds, window)

    async def note_state(self, state: str, now: datetime) -> bool:
        """Record a connection state; True when the instance has just come online.

        Never seen online before (a new pairing): everything before counts as written
        offline. Online once but unknown since this process started: an "open" makes no
        window (nothing says the instance was offline)."""
        if state == OPEN:
            if self.online is True:
                return False
            if self.online is None and self.offline_until is not None:
                self.offline_from = now
                await self._put(OFFLINE_FROM, now)
            self.online = True
            self.offline_until = now
            await self._put(OFFLINE_UNTIL, now)
            return True
        if self.online is not False:
            fresh = self.online is None and self.offline_until is None
            self.online = False
            self.offline_from = None if fresh else now
            await self._put(OFFLINE_FROM, self.offline_from)
        return False

    async def note_seen(self, timestamps: Iterable[datetime]) -> None:
        newest = max(timestamps, default=None)
        if newest is None or (self.last_seen is not None and newest <= self.last_seen):
            return
        self.last_seen = newest
        if self._saved_seen is None or newest - self._saved_seen >= SEEN_SAVE_STEP:
            self._saved_seen = newest
            await self._put(LAST_SEEN, newest)
