"""The HTML pages: login, chat and admin."""

from __future__ import annotations

import secrets
from typing import TYPE_CHECKING, Any

from quart import (
    Blueprint,
    current_app,
    g,
    redirect,
    render_template,
    request,
    session,
    url_for,
)

from ..admin import AdminTab
from ..catalogue import available_channel_plugins
from ..operator import transcript
from ..plugins import collect_components
from .auth import (
    ADMIN,
    admin_required,
    client_address,
    csrf_ok,
    end_admin_sessions,
    is_local_path,
    password_matches,
    start_admin_session,
    throttle,
)
from .charts import day_chart
from .common import current_bot

if TYPE_CHECKING:
    from ..bot import Bot

blueprint = Blueprint("pages", __name__)


def _safe_next(target: str | None) -> str:
    if not target:
        return url_for("pages.chat")
    return target if is_local_path(target) else url_for("pages.chat")


@blueprint.route("/login", methods=["GET", "POST"])
async def login() -> Any:
    failed = False
    blocked = False
    next_url = _safe_next(request.args.get("next"))
    if request.method == "POST":
        client = (ADMIN, client_address())
        form = await request.form
        if throttle().blocked(client):
            blocked = True
        elif not await csrf_ok():
            failed = True
        elif password_matches(form.get("password", "")):
            throttle().succeeded(client)
            await start_admin_session()
            return redirect(next_url)
        else:
            throttle().failed(client)
            failed = True
    status = 429 if blocked else 401 if failed else 200
    return (
        await render_template(
            "login.html",
            failed=failed,
            blocked=blocked,
            next_url=next_url,
            temporary=current_app.config["NICOBOT_TEMPORARY_PASSWORD"],
        ),
        status,
    )


@blueprint.post("/logout")
@admin_required
async def logout() -> Any:
    await end_admin_sessions()
    return redirect(url_for("pages.login"))


@blueprint.post("/language")
async def set_language() -> Any:
    form = await request.form
    if not await csrf_ok():
        return redirect(url_for("pages.chat"))
    if form.get("lang") in ("en", "es"):
        session["lang"] = form["lang"]
    return redirect(_safe_next(form.get("next")))


async def fresh_simulator_number(bot: Bot) -> str:
    """A number no simulated chat uses yet, so that a new chat is a new conversation."""
    for _attempt in range(20):
        number = "54911" + "".join(secrets.choice("0123456789") for _ in range(8))
        if not await bot.store.search_sessions(number, channel="simulator", limit=1):
            return number
    return number


@blueprint.get("/")
@admin_required
async def chat() -> Any:
    bot = current_bot()
    cursor = await bot.store.latest_change()
    sessions = await bot.store.list_sessions(limit=200)
    selected = request.args.get("session")
    current = await bot.store.get_session(selected) if selected else None
    channel = bot.channels.get(current.channel) if current else None
    return await render_template(
        "chat.html",
        bot=bot,
        sessions=[s.to_dict() for s in sessions],
        current=current.to_dict() if current else None,
        messages=await transcript(bot, current.id) if current else [],
        can_reply=channel is not None and channel.configured,
        simulator="simulator" in bot.channels,
        new_chat=request.args.get("new") == "1",
        fresh_number=await fresh_simulator_number(bot),
        channel_labels={c.name: c.label for c in bot.channels.all()},
        handoff_minutes=bot.settings.pipeline.handoff_minutes,
        cursor=cursor,
    )


def admin_tabs() -> list[AdminTab]:
    cached: list[AdminTab] | None = current_app.extensions.get("nicobot_admin_tabs")
    if cached is None:
        found = collect_components(current_bot().pm, "register_admin_tabs", "admin tab")
        cached = sorted((tab for tab, _ in found.values()), key=lambda t: (t.order, t.name))
        current_app.extensions["nicobot_admin_tabs"] = cached
    return cached


@blueprint.get("/admin")
@admin_required
async def admin() -> Any:
    bot = current_bot()
    tabs = admin_tabs()
    names = [t.name for t in tabs]
    active = request.args.get("tab")
    if active not in names:
        active = names[0] if names else None
    statuses = await bot.channels.statuses() if active == "channels" else {}
    cards = [
        {
            "name": c.name,
            "label": c.label,
            "supports_qr": c.supports_qr,
            "capabilities": c.capabilities(),
            "local": c.is_local,
            "status": statuses[c.name].to_dict() if c.name in statuses else {},
        }
        for c in bot.channels.all()
    ]
    available = available_channel_plugins(bot.installed_channels)
    return await render_template(
        "admin.html",
        bot=bot,
        tabs=tabs,
        active=active,
        prompt=bot.prompt_settings(),
        channel_cards=cards,
        available_plugins=available,
        saved=request.args.get("saved") == "1",
        cursor=await bot.store.latest_change(),
        **(await _dashboard_context(bot) if active == "dashboard" else {}),
    )


async def _dashboard_context(bot: Bot) -> dict[str, Any]:
    from babel import dates

    raw = request.args.get("days", "30")
    days = int(raw) if raw in ("7", "30", "90") else 30
    figures = await bot.store.dashboard(days, bot.settings.bot.timezone)
    language = g.get("lang") or bot.settings.bot.language
    labels = {
        d.day.isoformat(): dates.format_skeleton("MMMd", d.day, locale=language)
        for d in figures.days
    }
    return {
        "dashboard": figures,
        "dashboard_days": days,
        "chart": day_chart(figures.days, labels),
        "day_labels": labels,
        "channel_names": [(c.name, c.label) for c in bot.channels.all()],
    }


@blueprint.post("/admin/prompt")
@admin_required
async def save_prompt() -> Any:
    form = await request.form
    changes = {key: form.get(key) for key in ("name", "persona", "business", "system_prompt")}
    if form.get("reset"):
        changes = dict.fromkeys(changes)
    await current_bot().update_prompt(
        {k: (v if v is None or v.strip() else None) for k, v in changes.items()}
    )
    return redirect(url_for("pages.admin", tab="prompt", saved=1))
