"""The plugin manager: built-in plugins, entry points, validation and registration hooks."""

from __future__ import annotations

import difflib
import importlib
import inspect
import os
from collections.abc import Iterable
from dataclasses import dataclass
from importlib import metadata
from typing import Any

import pluggy

from . import hookspecs
from .errors import PluginError

__all__ = [
    "DEFAULT_PLUGINS",
    "PluginError",
    "call_registration",
    "check_plugins",
    "make_plugin_manager",
]

ENTRY_POINT_GROUP = "nicobot"
LOAD_PLUGINS_ENV = "NICOBOT_LOAD_PLUGINS"

DEFAULT_PLUGINS = (
    "nicobot.builtins.simulator",
    "nicobot.builtins.sqlite_store",
    "nicobot.builtins.core_admin",
    "nicobot.builtins.chroma_knowledge",
)

#: Hooks called once while the bot is built; they must be plain functions.
REGISTRATION_HOOKS = (
    "register_channels",
    "register_stores",
    "register_knowledge_bases",
    "register_commands",
    "register_routes",
    "register_admin_tabs",
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
    """A manager with the built-ins and, unless told not to, the installed plugins.

    Built-ins register first, then the entry points in the order of their names. Raises
    :class:`PluginError` (naming the plugin) for a plugin that fails to load or
    implements something that is not a nicobot hook."""
    pm = pluggy.PluginManager(ENTRY_POINT_GROUP)
    pm.add_hookspecs(hookspecs)
    for module_name in DEFAULT_PLUGINS:
        pm.register(importlib.import_module(module_name), name=module_name)
    if load_entry_points:
        _load_entry_points(pm)
    check_plugins(pm)
    return pm


def _load_entry_points(pm: pluggy.PluginManager) -> None:
    wanted = os.environ.get(LOAD_PLUGINS_ENV)
    allowed = {n.strip() for n in wanted.split(",") if n.strip()} if wanted is not None else None
    entry_points = sorted(metadata.entry_points(group=ENTRY_POINT_GROUP), key=lambda e: e.name)
    for entry_point in entry_points:
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
        register_plugin(pm, module, entry_point.name)


def register_plugin(pm: pluggy.PluginManager, plugin: object, name: str) -> None:
    """``pm.register`` with an error that names the plugin."""
    try:
        pm.register(plugin, name=name)
    except pluggy.PluginValidationError as exc:
        reason = "; ".join(line.strip() for line in str(exc).splitlines() if line.strip())
        raise PluginError(f"plugin {name!r}: {reason}") from None
    except ValueError as exc:  # the name or the object is already registered
        raise PluginError(f"plugin {name!r}: {exc}") from None


def _hook_names() -> list[str]:
    return sorted(
        name
        for name, fn in inspect.getmembers(hookspecs, inspect.isfunction)
        if hasattr(fn, "nicobot_spec")
    )


def check_plugins(pm: pluggy.PluginManager) -> None:
    """Refuse what would otherwise fail silently or late, naming the plugin: a function
    marked ``@hookimpl`` that is not a nicobot hook (a misspelling), an ``async def``
    registration hook, and pluggy wrappers (nicobot calls each implementation itself)."""
    try:
        pm.check_pending()
    except pluggy.PluginValidationError as exc:
        raise PluginError(_unknown_hook_message(pm, exc.plugin)) from None
    for hook_name in _hook_names():
        for impl in getattr(pm.hook, hook_name).get_hookimpls():
            if impl.hookwrapper or impl.wrapper:
                raise PluginError(
                    f"plugin {impl.plugin_name!r}: {hook_name} is a pluggy wrapper; nicobot "
                    "hooks take plain implementations (see docs/plugins/hooks.md)"
                )
            if hook_name in REGISTRATION_HOOKS and _is_async(impl.function):
                raise PluginError(
                    f"plugin {impl.plugin_name!r}: {hook_name} must be a plain def, not "
                    "async def (registration hooks run before the event loop)"
                )


def _is_async(function: Any) -> bool:
    return inspect.iscoroutinefunction(function) or inspect.isasyncgenfunction(function)


def _unknown_hook_message(pm: pluggy.PluginManager, plugin: object) -> str:
    name = pm.get_name(plugin) or repr(plugin)
    known = _hook_names()
    unknown = sorted(
        impl_name
        for impl_name in vars(pm.hook)
        if not impl_name.startswith("_")
        and not getattr(pm.hook, impl_name).has_spec()
        and any(i.plugin is plugin for i in getattr(pm.hook, impl_name).get_hookimpls())
    )
    hook = unknown[0] if unknown else "a hook"
    close = difflib.get_close_matches(hook, known, n=1)
    hint = f" (did you mean {close[0]!r}?)" if close else ""
    return f"plugin {name!r} implements {hook!r}, which is not a nicobot hook{hint}"


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


def call_registration(
    pm: pluggy.PluginManager, hook_name: str, **kwargs: Any
) -> list[tuple[str, Any]]:
    """Call a registration hook plugin by plugin, through pluggy's hook caller.

    Returns ``[(plugin_name, result), ...]`` in pluggy's call order; an implementation
    that raises or returns an awaitable is a :class:`PluginError` naming its plugin."""
    return [
        (impl.plugin_name, result)
        for impl in _registration_impls(pm, hook_name)
        for result in _call_one(pm, impl, hook_name, kwargs)
    ]


def _registration_impls(pm: pluggy.PluginManager, hook_name: str) -> list[pluggy.HookImpl]:
    return list(reversed(getattr(pm.hook, hook_name).get_hookimpls()))


def _call_one(
    pm: pluggy.PluginManager, impl: pluggy.HookImpl, hook_name: str, kwargs: dict[str, Any]
) -> list[Any]:
    others = [i.plugin for i in getattr(pm.hook, hook_name).get_hookimpls() if i is not impl]
    only = pm.subset_hook_caller(hook_name, others)
    try:
        results: list[Any] = only(**kwargs)
    except Exception as exc:
        raise PluginError(
            f"plugin {impl.plugin_name!r}: {hook_name} failed: {type(exc).__name__}: {exc}"
        ) from exc
    for result in results:
        if inspect.isawaitable(result):
            if inspect.iscoroutine(result):
                result.close()
            raise PluginError(
                f"plugin {impl.plugin_name!r}: {hook_name} returned an awaitable; "
                "it must be a plain def"
            )
    return results


def collect_components(
    pm: pluggy.PluginManager, hook_name: str, kind: str
) -> dict[str, tuple[Any, str]]:
    """Call a ``register_*`` hook and index what it returns by ``.name``.

    Returns ``{name: (component, plugin_name)}``; two plugins offering the same name
    raise :class:`PluginError` naming both, as does a result that is not a list of
    named components."""
    found: dict[str, tuple[Any, str]] = {}
    for plugin_name, result in call_registration(pm, hook_name):
        for component in _as_components(result, plugin_name, hook_name):
            name = component.name
            if name in found:
                other = found[name][1]
                raise PluginError(
                    f"{kind} {name!r} is provided by both {other!r} and {plugin_name!r}"
                )
            found[name] = (component, plugin_name)
    return found


def _as_components(result: Any, plugin_name: str, hook_name: str) -> Iterable[Any]:
    if result is None:
        return ()
    if not isinstance(result, list | tuple):
        raise PluginError(
            f"plugin {plugin_name!r}: {hook_name} must return a list, not {type(result).__name__}"
        )
    for component in result:
        if not isinstance(getattr(component, "name", None), str):
            raise PluginError(
                f"plugin {plugin_name!r}: {hook_name} returned {component!r}, which has no name"
            )
    return result


def plugin_commands(builtin: set[str]) -> dict[str, Any]:
    """The click commands plugins add (``register_commands``), by name; a name taken
    by a built-in command or by another plugin is a :class:`PluginError` naming both."""
    import click

    pm = make_plugin_manager()
    owners = dict.fromkeys(builtin, "nicobot")
    commands: dict[str, click.Command] = {}
    for impl in _registration_impls(pm, "register_commands"):
        holder = click.Group()
        _call_one(pm, impl, "register_commands", {"cli": holder})
        for name, command in holder.commands.items():
            if name in owners:
                raise PluginError(
                    f"command {name!r} is provided by both {owners[name]!r} and "
                    f"{impl.plugin_name!r}"
                )
            owners[name] = impl.plugin_name
            commands[name] = command
    return commands
