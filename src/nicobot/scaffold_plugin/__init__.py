"""Files that ``nicobot plugin new`` writes: a working channel plugin package.

The templates are the ``*.tmpl`` files beside this module; ``{{key}}`` marks a value.
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass
from pathlib import Path

FILES = Path(__file__).parent / "files"
PLACEHOLDER = re.compile(r"\{\{(\w+)\}\}")
DIST_PREFIX = "nicobot-"
NAME = re.compile(r"[a-z][a-z0-9]*(?:-[a-z0-9]+)*")
CHANNEL_NAME = re.compile(r"[a-z][a-z0-9_]*")
MAX_NAME = 40
#: Channel names nicobot itself uses.
TAKEN = frozenset({"simulator"})

#: Template -> path in the new package (``{package}`` is the import name).
LAYOUT = {
    "pyproject.toml.tmpl": "pyproject.toml",
    "README.md.tmpl": "README.md",
    "CHANGELOG.md.tmpl": "CHANGELOG.md",
    "__init__.py.tmpl": "src/{package}/__init__.py",
    "plugin.py.tmpl": "src/{package}/plugin.py",
    "channel.py.tmpl": "src/{package}/channel.py",
    "test_channel.py.tmpl": "tests/test_channel.py",
}


@dataclass(frozen=True, slots=True)
class PluginNames:
    """Every name a new plugin needs, derived from the one the user gave."""

    dist: str  # nicobot-instagram: the distribution (PyPI) name and the folder
    package: str  # nicobot_instagram: the import name
    channel: str  # instagram: the channel's name, webhook slug and entry-point name
    label: str  # Instagram: shown on the pages
    channel_class: str  # InstagramChannel
    config_class: str  # InstagramConfig
    env_prefix: str  # INSTAGRAM: for INSTAGRAM_WEBHOOK_SECRET
    secret_header: str  # x-instagram-secret
    secret_header_title: str  # X-Instagram-Secret
    nicobot_version: str


def _words(channel: str) -> list[str]:
    return [w for w in channel.split("_") if w]


def plugin_names(
    name: str, channel_name: str | None = None, label: str | None = None
) -> PluginNames:
    """Validate ``name`` (``nicobot-instagram`` or ``instagram``) and derive the rest;
    raise :class:`ValueError` with a one-line reason."""
    from ..version import __version__

    raw = name.strip()
    short = raw.removeprefix(DIST_PREFIX)
    if not short or not NAME.fullmatch(short) or len(short) > MAX_NAME:
        raise ValueError(
            f"bad plugin name {name!r}: use lowercase letters, digits and dashes, starting "
            "with a letter, like nicobot-instagram or instagram"
        )
    channel = channel_name.strip() if channel_name is not None else short.replace("-", "_")
    if not CHANNEL_NAME.fullmatch(channel) or len(channel) > MAX_NAME:
        raise ValueError(
            f"bad channel name {channel!r}: use lowercase letters, digits and underscores, "
            "starting with a letter"
        )
    if channel in TAKEN:
        raise ValueError(f"channel name {channel!r} is nicobot's own: choose another")
    words = _words(channel)
    title = "".join(w.capitalize() for w in words)
    dashed = "-".join(words)
    return PluginNames(
        dist=DIST_PREFIX + short,
        package=(DIST_PREFIX + short).replace("-", "_"),
        channel=channel,
        label=(label or "").strip() or " ".join(w.capitalize() for w in words),
        channel_class=f"{title}Channel",
        config_class=f"{title}Config",
        env_prefix=channel.upper(),
        secret_header=f"x-{dashed}-secret",
        secret_header_title="X-" + "-".join(w.capitalize() for w in words) + "-Secret",
        nicobot_version=__version__,
    )


def render(template: str, names: PluginNames) -> str:
    values = asdict(names)
    label = values["label"]
    # The label lands inside Python and TOML strings: keep it to one safe line.
    values["label"] = label.replace("\\", "").replace('"', "'").replace("\n", " ")
    return PLACEHOLDER.sub(lambda match: str(values[match.group(1)]), template)


def write_plugin(directory: Path, names: PluginNames) -> Path:
    """Write the package into ``directory/<dist>``, which must not exist; return it."""
    target = directory / names.dist
    if target.exists():
        raise FileExistsError(f"{target} already exists")
    files = {
        destination.format(package=names.package): render(
            (FILES / template).read_text(encoding="utf-8"), names
        )
        for template, destination in LAYOUT.items()
    }
    for relative, text in files.items():
        path = target / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    (target / "src" / names.package / "py.typed").write_text("", encoding="utf-8")
    return target
