"""nicobot-postgres: nicobot's store in PostgreSQL, shared by several workers and machines.

Choose it in ``nicobot.toml``::

    [store]
    backend = "postgres"
    url = "postgresql://nicobot:secret@db:5432/nicobot"
"""

from __future__ import annotations

from .store import PostgresStore

__all__ = ["PostgresStore", "__version__"]

__version__ = "0.1.0"
