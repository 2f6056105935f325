"""The admin page's own tabs: Dashboard, Prompt, Channels and Failed sends."""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..hookspecs import hookimpl

if TYPE_CHECKING:
    from ..admin import AdminTab


@hookimpl
def register_admin_tabs() -> list[AdminTab]:
    from ..admin import AdminTab

    return [
        AdminTab(name="dashboard", label=_("Dashboard"), template="admin/dashboard.html", order=5),
        AdminTab(name="prompt", label=_("Prompt"), template="admin/prompt.html", order=10),
        AdminTab(name="channels", label=_("Channels"), template="admin/channels.html", order=30),
        AdminTab(
            name="business", label=_("Hours and contacts"), template="admin/business.html", order=35
        ),
        AdminTab(
            name="deliveries", label=_("Failed sends"), template="admin/deliveries.html", order=40
        ),
    ]


def _(message: str) -> str:
    """Mark a tab label for the catalogues; the admin page translates it."""
    return message
