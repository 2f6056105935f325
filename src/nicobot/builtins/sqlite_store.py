"""The default store: SQLite."""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..hookspecs import hookimpl

if TYPE_CHECKING:
    from ..store import Store


@hookimpl
def register_stores() -> list[type[Store]]:
    from ..store.sqlite import SQLiteStore

    return [SQLiteStore]
