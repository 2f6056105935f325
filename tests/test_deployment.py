"""The production files: docker-compose.yml, the Dockerfile and the La Fórmula example.

No Docker is needed: the files are parsed and checked against each other, against the
README's install command and against the Settings model.
"""

from __future__ import annotations

import json
import re
import shlex
from pathlib import Path
from typing import Any

import pytest
import yaml

from nicobot.config import load_settings

ROOT = Path(__file__).resolve().parents[1]
COMPOSE = ROOT / "docker-compose.yml"
DOCKERFILE = ROOT / "Dockerfile"
DOCKERIGNORE = ROOT / ".dockerignore"
EXAMPLE = ROOT / "examples" / "laformula"
ENV_EXAMPLE = EXAMPLE / ".env.example"
README = ROOT / "README.md"

EVOLUTION_IMAGE = "evoapicloud/evolution-api:v2.3.7"
RESTART_POLICIES = {"always", "unless-stopped", "on-failure"}
#: The heading in .env.example after which come the variables only docker-compose reads.
COMPOSE_ONLY_MARKER = "# docker-compose only"
VARIABLE_RE = re.compile(r"^\s*(#\s*)?([A-Z][A-Z0-9_]*)=(.*)$")


# ---------------------------------------------------------------- helpers


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    data = yaml.safe_load(COMPOSE.read_text(encoding="utf-8"))
    assert isinstance(data, dict)
    return data


@pytest.fixture(scope="module")
def services(compose: dict[str, Any]) -> dict[str, dict[str, Any]]:
    found = compose.get("services")
    assert isinstance(found, dict) and found, "docker-compose.yml has no services"
    return found


def env_example() -> tuple[dict[str, str], set[str], set[str]]:
    """(variables set, variables only mentioned in comments, compose-only variables)."""
    active: dict[str, str] = {}
    commented: set[str] = set()
    compose_only: set[str] = set()
    in_compose_section = False
    for line in ENV_EXAMPLE.read_text(encoding="utf-8").splitlines():
        if line.strip().lower().startswith(COMPOSE_ONLY_MARKER):
            in_compose_section = True
        match = VARIABLE_RE.match(line)
        if not match:
            continue
        name = match.group(2)
        if match.group(1):
            commented.add(name)
        else:
            assert name not in active, f".env.example sets {name} twice"
            active[name] = match.group(3)
            if in_compose_section:
                compose_only.add(name)
    return active, commented, compose_only


def compose_variables() -> set[str]:
    """Every ``${VAR}`` docker compose interpolates (``$$`` escapes are the container's)."""
    text = COMPOSE.read_text(encoding="utf-8").replace("$$", "")
    bare = re.findall(r"\$(?!\{)([A-Za-z_]\w*)", text)
    assert not bare, f"use ${{VAR}}, not $VAR, in docker-compose.yml: {bare}"
    return set(re.findall(r"\$\{([A-Za-z_]\w*)", text))


def dockerfile_instructions() -> list[tuple[str, str]]:
    """``(INSTRUCTION, arguments)`` pairs, continuation lines joined, comments dropped."""
    instructions: list[tuple[str, str]] = []
    pending = ""
    for raw in DOCKERFILE.read_text(encoding="utf-8").splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        line = pending + line
        pending = ""
        keyword, _, args = line.partition(" ")
        instructions.append((keyword.upper(), args.strip()))
    assert not pending, "the Dockerfile ends inside a continued line"
    return instructions


def pip_install_targets(command: str) -> list[str]:
    """What ``... pip install A B`` installs, from the first ``pip install`` in a shell line."""
    for part in re.split(r"&&|;", command):
        words = shlex.split(part)
        for index, word in enumerate(words[:-1]):
            if (word == "pip" or word.endswith("/pip")) and words[index + 1] == "install":
                return [w for w in words[index + 2 :] if not w.startswith("-")]
    raise AssertionError(f"no pip install in {command!r}")


def readme_first_command() -> str:
    blocks = re.findall(r"```(?:bash|sh|shell)\n(.*?)```", README.read_text(encoding="utf-8"), re.S)
    assert blocks, "the README has no shell code block"
    return blocks[0].strip()


def normalized(path: str) -> str:
    return str(Path(path)) if path not in (".", "./") else "."


# ---------------------------------------------------------------- docker-compose.yml


def test_every_service_restarts_and_pins_its_image(services):
    for name, service in services.items():
        assert service.get("restart") in RESTART_POLICIES, f"{name}: no restart policy"
        image = service.get("image")
        if image is None:
            assert "build" in service, f"{name}: neither image nor build"
            continue
        assert "@sha256:" in image or ":" in image.rsplit("/", 1)[-1], f"{name}: {image} unpinned"
        tag = image.rsplit("/", 1)[-1].partition(":")[2].partition("@")[0]
        assert tag and tag != "latest", f"{name}: image {image} is not pinned"


def test_gateway_image_is_the_tested_version(services):
    assert services["evolution-api"]["image"] == EVOLUTION_IMAGE


def test_named_volumes_are_declared_and_used(compose, services):
    declared = set(compose.get("volumes") or {})
    used: set[str] = set()
    for name, service in services.items():
        for volume in service.get("volumes", []):
            if isinstance(volume, dict):
                source = volume.get("source", "")
                if volume.get("type", "volume") != "volume":
                    continue
            else:
                source = volume.split(":", 1)[0]
            if not source or source.startswith((".", "/", "~", "$")):
                continue  # a bind mount
            assert source in declared, f"{name}: volume {source!r} is not declared"
            used.add(source)
    assert declared == used, f"declared but unused volumes: {declared - used}"


def test_published_ports_are_loopback_only(services):
    for name, service in services.items():
        for port in service.get("ports", []):
            if isinstance(port, dict):
                assert port.get("host_ip") == "127.0.0.1", f"{name}: {port} is not loopback"
            else:
                assert str(port).startswith("127.0.0.1:"), f"{name}: {port} is not loopback"


def test_only_nicobot_and_the_gateway_publish_ports(services):
    publishing = {name for name, service in services.items() if service.get("ports")}
    assert publishing == {"nicobot", "evolution-api"}


def test_nicobot_service(services):
    nicobot = services["nicobot"]
    assert nicobot["build"]["dockerfile"] == "Dockerfile"
    assert nicobot["env_file"] in (".env", [".env"])
    assert "evolution-api" in nicobot["depends_on"]
    assert "127.0.0.1:7070:7070" in nicobot["ports"]
    mounts = {v.split(":")[1]: v.split(":")[0] for v in nicobot["volumes"]}
    assert normalized(mounts["/app/project"]) == "examples/laformula"
    assert not mounts["/app/data"].startswith((".", "/")), "data must be a named volume"


def test_gateway_settings(services):
    env = services["evolution-api"]["environment"]
    assert env["AUTHENTICATION_API_KEY"].startswith("${EVOLUTION_API_KEY")
    assert env["DATABASE_PROVIDER"] == "postgresql"
    assert env["DATABASE_CONNECTION_URI"].startswith("postgresql://")
    assert "@postgres:5432/" in env["DATABASE_CONNECTION_URI"]
    assert env["DATABASE_SAVE_DATA_INSTANCE"] == "true"
    assert env["CACHE_REDIS_ENABLED"] == "true"
    assert env["CACHE_REDIS_URI"] == "redis://redis:6379/6"
    assert env["TZ"] == "UTC"
    assert env["TELEMETRY_ENABLED"] == "false"
    assert env["LOG_LEVEL"] == "ERROR,WARN,INFO"
    assert env["WEBHOOK_GLOBAL_ENABLED"] == "false"
    depends = services["evolution-api"]["depends_on"]
    assert depends["postgres"]["condition"] == "service_healthy"
    assert "healthcheck" in services["postgres"]
    assert services["postgres"]["image"].startswith("postgres:")
    assert services["redis"]["image"].startswith("redis:")


def test_compose_variables_match_env_example():
    active, _, compose_only = env_example()
    used = compose_variables()
    assert used, "docker-compose.yml interpolates no variables"
    missing = used - set(active)
    assert not missing, f"docker-compose.yml uses {sorted(missing)}, not set in .env.example"
    assert compose_only, f"no {COMPOSE_ONLY_MARKER!r} section in .env.example"
    unused = compose_only - used
    assert not unused, f".env.example lists {sorted(unused)} for docker-compose, which ignores them"


def test_env_example_points_at_the_compose_services(services):
    active, commented, _ = env_example()
    required = {
        "NICOBOT_ADMIN_PASSWORD",
        "NICOBOT_SECRET_KEY",
        "NICOBOT_WEBHOOK_SECRET",
        "NICOBOT_PUBLIC_URL",
        "EVOLUTION_API_URL",
        "EVOLUTION_API_KEY",
        "EVOLUTION_INSTANCE_NAME",
    }
    assert required <= set(active)
    assert {"NICOBOT_MODEL", "OPENAI_API_KEY", "EVOLUTION_WEBHOOK_SECRET"} <= commented
    assert active["NICOBOT_PUBLIC_URL"] == "http://nicobot:7070"
    assert active["EVOLUTION_API_URL"] == "http://evolution-api:8080"
    assert active["EVOLUTION_INSTANCE_NAME"] == "laformula"
    assert {"nicobot", "evolution-api"} <= set(services)
    secrets = ("PASSWORD", "SECRET", "_KEY")
    for name, value in active.items():
        if any(part in name for part in secrets):
            assert value == "", f".env.example must not ship a value for {name}"


# ---------------------------------------------------------------- Dockerfile


def test_dockerfile_installs_what_the_readme_installs():
    readme_targets = pip_install_targets(readme_first_command())
    copied: set[str] = set()
    installs: list[list[str]] = []
    for keyword, args in dockerfile_instructions():
        if keyword == "COPY" and "--from" not in args:
            copied.update(normalized(s) for s in shlex.split(args)[:-1] if not s.startswith("--"))
        elif keyword == "RUN" and "pip install" in args:
            installs.append(pip_install_targets(args))
            for target in readme_targets:
                wanted = "pyproject.toml" if normalized(target) == "." else normalized(target)
                assert wanted in copied, f"the Dockerfile installs {target} before copying it"
    assert len(installs) == 1, "the Dockerfile should install nicobot in one pip step"
    assert installs[0] == readme_targets


def test_dockerfile_copies_what_exists():
    for keyword, args in dockerfile_instructions():
        if keyword == "COPY" and "--from" not in args:
            for source in shlex.split(args)[:-1]:
                if not source.startswith("--"):
                    assert (ROOT / source).exists(), f"COPY {source}: no such path"


def test_dockerfile_runs_as_non_root_with_a_healthcheck():
    instructions = dockerfile_instructions()
    froms = [args for keyword, args in instructions if keyword == "FROM"]
    assert all(args.split()[0] == "python:3.11-slim" for args in froms)
    users = [args for keyword, args in instructions if keyword == "USER"]
    assert users and users[-1].split(":")[0] not in ("root", "0")
    checks = [args for keyword, args in instructions if keyword == "HEALTHCHECK"]
    assert len(checks) == 1 and "/healthz" in checks[0] and "curl" not in checks[0]
    assert ("EXPOSE", "7070") in instructions
    volumes = [args for keyword, args in instructions if keyword == "VOLUME"]
    assert volumes and "/app/data" in volumes[-1]
    cmd = [args for keyword, args in instructions if keyword == "CMD"][-1]
    assert json.loads(cmd) == [
        "nicobot",
        "serve",
        "--project",
        "/app/project",
        "--host",
        "0.0.0.0",
    ]


def test_dockerignore_keeps_secrets_and_state_out():
    rules = [
        line.strip()
        for line in DOCKERIGNORE.read_text(encoding="utf-8").splitlines()
        if line.strip() and not line.startswith("#")
    ]
    for rule in ("**/.env", "**/data", ".venv", ".git"):
        assert rule in rules


# ---------------------------------------------------------------- the La Fórmula example


def test_example_loads_with_the_env_example_values():
    active, _, _ = env_example()
    settings = load_settings(EXAMPLE, environ=active)
    assert settings.bot.name == "Nico"
    assert settings.bot.language == "es"
    assert settings.bot.timezone == "America/Argentina/Buenos_Aires"
    assert settings.llm.model == ""
    assert settings.server.public_url == "http://nicobot:7070"
    assert settings.channels["whatsapp"]["instance"] == "laformula"
    assert settings.admin_password is None  # blank in the example: must be filled in


def test_example_whatsapp_settings_parse():
    from nicobot_whatsapp_evolution import config

    active, _, _ = env_example()
    settings = load_settings(EXAMPLE, environ=active)
    whatsapp = config.merge_config(
        settings.channels["whatsapp"], {**active, "EVOLUTION_API_KEY": "k"}
    )
    assert whatsapp.url == "http://evolution-api:8080"
    assert whatsapp.instance == "laformula"
    assert whatsapp.debounce_seconds > 0


def test_example_readme_has_the_run_command():
    text = (EXAMPLE / "README.md").read_text(encoding="utf-8")
    assert readme_first_command() in text
