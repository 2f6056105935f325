"""Admin page tabs and the decorator that protects admin routes."""

from __future__ import annotations

from dataclasses import dataclass

from .web.auth import admin_required

__all__ = ["AdminTab", "admin_required"]


@dataclass(frozen=True, slots=True)
class AdminTab:
    """A tab on the admin page.

    ``label`` is an English message id, translated through the catalogues;
    ``template`` is a Jinja template name, rendered inside the admin page with the
    running ``bot`` in its context. Lower ``order`` comes first.
    """

    name: str
    label: str
    template: str
    order: int = 100
