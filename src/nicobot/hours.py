"""Business hours: open ranges per weekday in the bot's time zone, and holidays.

All pure: :class:`BusinessHours` answers whether the business is open at a moment, when it
opens next and when it closed last, and :func:`describe_when` says "tomorrow at 9:00".
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from typing import TYPE_CHECKING
from zoneinfo import ZoneInfo

from . import i18n

if TYPE_CHECKING:
    from .config import Settings

WEEKDAYS = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
#: How far ahead (and back) the next opening is looked for.
SEARCH_DAYS = 400


def _(message: str) -> str:
    return message


WHEN_TODAY = _("today at %(time)s")
WHEN_TOMORROW = _("tomorrow at %(time)s")
WHEN_WEEKDAY = _("on %(weekday)s at %(time)s")
WHEN_DATE = _("on %(date)s at %(time)s")
CLOSED = _("closed")

Range = tuple[time, time | None]  # None as the end: until midnight


def parse_range(text: str) -> Range:
    """``"09:00-13:30"`` (``"24:00"`` as an end means midnight)."""
    start_text, separator, end_text = text.replace(" ", "").partition("-")
    if not separator:
        raise ValueError(f"{text!r} is not a range such as 09:00-18:00")
    try:
        start = time.fromisoformat(start_text)
        end = None if end_text == "24:00" else time.fromisoformat(end_text)
    except ValueError:
        raise ValueError(f"{text!r} is not a range such as 09:00-18:00") from None
    if end is not None and end <= start:
        raise ValueError(f"{text!r} ends before it starts")
    return start, end


@dataclass(frozen=True, slots=True)
class BusinessHours:
    zone: ZoneInfo
    week: tuple[tuple[Range, ...], ...]  # Monday first
    holidays: frozenset[date]

    @classmethod
    def from_settings(cls, settings: Settings) -> BusinessHours:
        section = settings.hours
        week = tuple(
            tuple(sorted(parse_range(r) for r in getattr(section, day) or ())) for day in WEEKDAYS
        )
        return cls(
            zone=ZoneInfo(settings.bot.timezone),
            week=week,
            holidays=frozenset(date.fromisoformat(d) for d in section.holidays),
        )

    @property
    def configured(self) -> bool:
        """False when no weekday has hours: the business counts as always open."""
        return any(self.week)

    def _ranges(self, day: date) -> list[tuple[datetime, datetime]]:
        if day in self.holidays:
            return []
        found = []
        for start, end in self.week[day.weekday()]:
            opens = datetime.combine(day, start, self.zone)
            closes = (
                datetime.combine(day + timedelta(days=1), time(0), self.zone)
                if end is None
                else datetime.combine(day, end, self.zone)
            )
            found.append((opens, closes))
        return found

    def is_open(self, at: datetime) -> bool:
        if not self.configured:
            return True
        local = at.astimezone(self.zone)
        return any(opens <= local < closes for opens, closes in self._ranges(local.date()))

    def open_now(self) -> bool:
        return self.is_open(datetime.now(self.zone))

    def next_opening(self, at: datetime) -> datetime | None:
        """The next moment the business opens after ``at`` (None if never)."""
        local = at.astimezone(self.zone)
        for offset in range(SEARCH_DAYS):
            for opens, _closes in self._ranges(local.date() + timedelta(days=offset)):
                if opens > local:
                    return opens
        return None

    def last_closing(self, at: datetime) -> datetime | None:
        """When the business last closed at or before ``at`` (None if never)."""
        local = at.astimezone(self.zone)
        for offset in range(SEARCH_DAYS):
            for _opens, closes in reversed(self._ranges(local.date() - timedelta(days=offset))):
                if closes <= local:
                    return closes
        return None

    def describe_week(self, language: str) -> list[tuple[str, str]]:
        """Each weekday's name and its hours ("09:00-13:00, 14:00-18:00"), for the pages."""
        from babel import dates

        monday = date(2024, 1, 1)
        rows = []
        for index, ranges in enumerate(self.week):
            name = dates.format_date(monday + timedelta(days=index), "EEEE", locale=language)
            text = ", ".join(
                f"{start:%H:%M}-{end:%H:%M}" if end else f"{start:%H:%M}-24:00"
                for start, end in ranges
            )
            rows.append((name, text or i18n.gettext(language, CLOSED)))
        return rows


def describe_when(moment: datetime, now: datetime, language: str) -> str:
    """``moment`` as a customer reads it: "today at 14:00", "el lunes a las 9:00"."""
    from babel import dates

    local_now = now.astimezone(moment.tzinfo)
    clock = dates.format_time(moment, "short", locale=language)
    days = (moment.date() - local_now.date()).days
    if days == 0:
        return i18n.gettext(language, WHEN_TODAY) % {"time": clock}
    if days == 1:
        return i18n.gettext(language, WHEN_TOMORROW) % {"time": clock}
    if days < 7:
        weekday = dates.format_date(moment, "EEEE", locale=language)
        return i18n.gettext(language, WHEN_WEEKDAY) % {"weekday": weekday, "time": clock}
    day = dates.format_skeleton("MMMMd", moment, locale=language)
    return i18n.gettext(language, WHEN_DATE) % {"date": day, "time": clock}
