"""The plugin manager: built-in plugins, entry points, and calling hooks."""

from __future__ import annotations

import importlib
import inspect
import os
from dataclasses import dataclass
from importlib import metadata
from typing import Any

import pluggy

from . import hookspecs
from .errors import PluginError

__all__ = ["DEFAULT_PLUGINS", "PluginError", "call_hook", "make_plugin_manager"]

ENTRY_POINT_GROUP = "nicobot"
LOAD_PLUGINS_ENV = "NICOBOT_LOAD_PLUGINS"

DEFAULT_PLUGINS = (
    "nicobot.builtins.simulator",
    "nicobot.builtins.sqlite_store",
    "nicobot.builtins.core_admin",
    "nicobot.builtins.chroma_knowledge",
)


@dataclass(frozen=True, slots=True)
class PluginInfo:
    name: str
    version: str | None
    hooks: tuple[str, ...]
    builtin: bool


def _plugin_version(name: str, module: Any) -> str | None:
    dist = getattr(module, "__nicobot_dist__", None)
    if dist is not None:
        return str(dist.version)
    return None


def make_plugin_manager(load_entry_points: bool = True) -> pluggy.PluginManager:
    """A manager with the built-ins and, unless told not to, the installed plugins."""
    pm = pluggy.PluginManager(ENTRY_POINT_GROUP)
    pm.add_hookspecs(hookspecs)
    for module_name in DEFAULT_PLUGINS:
        pm.register(importlib.import_module(module_name), name=module_name)
    if load_entry_points:
        _load_entry_points(pm)
    return pm


def _load_entry_points(pm: pluggy.PluginManager) -> None:
    wanted = os.environ.get(LOAD_PLUGINS_ENV)
    allowed = {n.strip() for n in wanted.split(",") if n.strip()} if wanted is not None else None
    for entry_point in metadata.entry_points(group=ENTRY_POINT_GROUP):
        if allowed is not None and entry_point.name not in allowed:
            continue
        if pm.get_plugin(entry_point.name) is not None:
            continue
        try:
            module = entry_point.load()
        except Exception as exc:
            raise PluginError(f"plugin {entry_point.name!r} failed to load: {exc}") from exc
        if entry_point.dist is not None:
            module.__nicobot_dist__ = entry_point.dist
        pm.register(module, name=entry_point.name)


def describe_plugins(pm: pluggy.PluginManager) -> list[PluginInfo]:
    infos = []
    for name, module in pm.list_name_plugin():
        hooks = tuple(sorted(h.name for h in pm.get_hookcallers(module) or ()))
        infos.append(
            PluginInfo(
                name=name,
                version=_plugin_version(name, module),
                hooks=hooks,
                builtin=name in DEFAULT_PLUGINS,
            )
        )
    return sorted(infos, key=lambda info: (not info.builtin, info.name))


def collect_components(
    pm: pluggy.PluginManager, hook_name: str, kind: str
) -> dict[str, tuple[Any, str]]:
    """Call a ``register_*`` hook and index what it returns by ``.name``.

    Returns ``{name: (component, plugin_name)}``; two plugins offering the same name
    raise :class:`PluginError` naming both.
    """
    found: dict[str, tuple[Any, str]] = {}
    caller = getattr(pm.hook, hook_name)
    for impl in caller.get_hookimpls():
        result = impl.function()
        for component in result or ():
            name = component.name
            if name in found:
                other = found[name][1]
                raise PluginError(
                    f"{kind} {name!r} is provided by both {other!r} and {impl.plugin_name!r}"
                )
            found[name] = (component, impl.plugin_name)
    return found


async def call_hook(pm: pluggy.PluginManager, hook_name: str, **kwargs: Any) -> list[Any]:
    """Call a hook whose implementations may be async; await what comes back."""
    results = getattr(pm.hook, hook_name)(**kwargs)
    return [await r if inspect.isawaitable(r) else r for r in results]
