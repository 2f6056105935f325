"""Files that ``nicobot init`` writes."""

from __future__ import annotations

import secrets
from pathlib import Path

from .fileperms import create_private_file

CONFIG_TEMPLATE = '''# nicobot project settings. Every key is optional; see docs/configuration.md.
# Secrets (API keys, the admin password) belong in .env, not here.

[bot]
name = "{name}"
business = "{business}"
persona = "{persona}"
language = "{language}"          # "en" or "es": pages and the bot's canned replies
timezone = "UTC"                 # for dates on the pages, e.g. "America/Argentina/Buenos_Aires"
system_prompt = """
{system_prompt}
"""

[llm]
# Any litellm model name, e.g. "openai/gpt-4o-mini" (set OPENAI_API_KEY in .env).
# Empty: the bot answers offline with the best matching passage of knowledge/.
model = ""
timeout_seconds = 25
history_messages = 20

[server]
host = "127.0.0.1"
port = 7070
data_dir = "data"

[knowledge]
top_k = 4
min_score = 0.2

[channels.simulator]
debounce_seconds = 0
'''

SYSTEM_PROMPTS = {
    "en": (
        "You are {name}, {persona} for {business}.\n"
        "Answer briefly and warmly, in the customer's language.\n"
        "Use only the information you are given. Never invent prices, stock or dates;\n"
        "if you do not know, say so and offer to pass the customer to a person."
    ),
    "es": (
        "Sos {name}, {persona} de {business}.\n"
        "Respondé breve y con calidez, en el idioma del cliente.\n"
        "Usá solo la información que te damos. Nunca inventes precios, stock ni fechas;\n"
        "si no sabés algo, decilo y ofrecé pasar con una persona del equipo."
    ),
}

PERSONAS = {"en": "the friendly assistant", "es": "el asistente virtual"}

SAMPLE_DOCS = {
    "en": (
        "about.md",
        "# About us\n\nSample content: replace it with your business's own documents.\n\n"
        "## Opening hours\n\nWe are open Monday to Friday from 9:00 to 18:00, "
        "and Saturdays from 10:00 to 14:00. We are closed on Sundays and public holidays.\n\n"
        "## Contact\n\nWrite to us here any time to talk to a person from our team: we "
        "answer during opening hours.\n",
    ),
    "es": (
        "nosotros.md",
        "# Sobre nosotros\n\nContenido de ejemplo: reemplazalo por los documentos de tu negocio."
        "\n\n## Horarios\n\nAbrimos de lunes a viernes de 9 a 18 y los sábados de 10 a 14. "
        "Domingos y feriados, cerrado.\n\n## Contacto\n\nEscribinos por acá cuando quieras "
        "para hablar con una persona del equipo: respondemos en horario de atención.\n",
    ),
}

GITIGNORE = "data/\n.env\n"


def env_file(admin_password: str) -> str:
    return (
        "# Secrets for this nicobot project. Keep this file out of version control.\n"
        f"NICOBOT_ADMIN_PASSWORD={admin_password}\n"
        f"NICOBOT_SECRET_KEY={secrets.token_hex(32)}\n"
        f"NICOBOT_WEBHOOK_SECRET={secrets.token_urlsafe(24)}\n"
        "# LLM provider key, for example:\n"
        "# OPENAI_API_KEY=sk-...\n"
        "# WhatsApp through Evolution API:\n"
        "# EVOLUTION_API_URL=http://127.0.0.1:8080\n"
        "# EVOLUTION_API_KEY=...\n"
        "# EVOLUTION_INSTANCE_NAME=mybot\n"
        "# NICOBOT_PUBLIC_URL=http://nicobot:7070\n"
    )


def _toml_string(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"')


def write_project(
    target: Path, *, name: str, business: str, language: str, admin_password: str
) -> list[Path]:
    """Write a new project; keep an existing .env and knowledge/ files. Returns what was written."""
    target.mkdir(parents=True, exist_ok=True)
    written: list[Path] = []
    config = CONFIG_TEMPLATE.format(
        name=_toml_string(name),
        business=_toml_string(business),
        persona=_toml_string(PERSONAS[language]),
        language=language,
        system_prompt=SYSTEM_PROMPTS[language],
    )
    (target / "nicobot.toml").write_text(config, encoding="utf-8")
    written.append(target / "nicobot.toml")
    env_path = target / ".env"
    if create_private_file(env_path, env_file(admin_password)):  # 0600 from its first byte
        written.append(env_path)
    knowledge = target / "knowledge"
    knowledge.mkdir(exist_ok=True)
    if not any(knowledge.iterdir()):
        filename, text = SAMPLE_DOCS[language]
        (knowledge / filename).write_text(text, encoding="utf-8")
        written.append(knowledge / filename)
    gitignore = target / ".gitignore"
    if not gitignore.exists():
        gitignore.write_text(GITIGNORE, encoding="utf-8")
        written.append(gitignore)
    return written
