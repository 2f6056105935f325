"""Message catalogues (Babel, gettext ``.po`` files) for pages and canned replies.

Catalogues live in ``<dir>/<lang>/LC_MESSAGES/<domain>.po``; they are compiled in
memory on first use, so no build step is needed. Plugins add their own directories
through :func:`add_catalogue_dir` (usually from their ``register_routes`` hook).
"""

from __future__ import annotations

import functools
import io
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING
from zoneinfo import ZoneInfo

if TYPE_CHECKING:  # Babel loads when a page or reply first needs it, not at import
    from babel.support import NullTranslations, Translations

LOCALE_DIR = Path(__file__).parent / "locale"
DEFAULT_DOMAIN = "messages"
_extra_dirs: list[tuple[Path, str]] = []


def _compile(po_path: Path) -> Translations:
    from babel.messages import mofile, pofile
    from babel.support import Translations

    with po_path.open("rb") as handle:
        catalog = pofile.read_po(handle)
    buffer = io.BytesIO()
    mofile.write_mo(buffer, catalog)
    buffer.seek(0)
    return Translations(buffer, domain=DEFAULT_DOMAIN)


@functools.cache
def _translations(language: str, extra: tuple[tuple[Path, str], ...]) -> NullTranslations:
    from babel.support import NullTranslations, Translations

    result: NullTranslations = NullTranslations()
    core = sorted((LOCALE_DIR / language / "LC_MESSAGES").glob("*.po"))  # messages.po and more
    extra_paths = [
        directory / language / "LC_MESSAGES" / f"{domain}.po" for directory, domain in extra
    ]
    for po_path in (*core, *extra_paths):
        if not po_path.is_file():
            continue
        compiled = _compile(po_path)
        if isinstance(result, Translations):
            result.merge(compiled)
        else:
            result = compiled
    return result


def add_catalogue_dir(directory: Path, domain: str = DEFAULT_DOMAIN) -> None:
    """Add a plugin's catalogues; its strings join the core's for every language."""
    entry = (Path(directory), domain)
    if entry not in _extra_dirs:
        _extra_dirs.append(entry)


def translations(language: str) -> NullTranslations:
    return _translations(language, tuple(_extra_dirs))


def gettext(language: str, message: str) -> str:
    return translations(language).ugettext(message)


def format_datetime(value: datetime | None, language: str, timezone: str) -> str:
    """A short, localised date and time in ``timezone``; today's messages show the time only."""
    if value is None:
        return ""
    from babel import dates

    zone = ZoneInfo(timezone)
    local = value.astimezone(zone)
    if local.date() == datetime.now(zone).date():
        return dates.format_time(local, format="short", locale=language)
    return dates.format_datetime(local, format="short", locale=language)
