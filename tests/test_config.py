"""Configuration: nicobot.toml, .env and the environment, with one-line errors."""

from __future__ import annotations

import pytest

from nicobot.config import ConfigError, load_settings


def write(project, toml: str = "", env: str = ""):
    project.mkdir(exist_ok=True)
    (project / "nicobot.toml").write_text(toml, encoding="utf-8")
    if env:
        (project / ".env").write_text(env, encoding="utf-8")
    return project


def test_defaults(tmp_path):
    settings = load_settings(write(tmp_path / "p"), environ={})
    assert settings.server.port == 7070
    assert settings.server.host == "127.0.0.1"
    assert settings.llm.timeout_seconds == 25
    assert settings.llm.model == ""
    assert settings.bot.language == "en"
    assert settings.data_path == (tmp_path / "p" / "data").resolve()
    assert settings.admin_password is None


def test_file_then_dotenv_then_environment(tmp_path):
    project = write(
        tmp_path / "p",
        '[bot]\nname = "Nico"\nlanguage = "es"\n[llm]\nmodel = "openai/a"\n',
        "NICOBOT_ADMIN_PASSWORD=from-dotenv\nNICOBOT_MODEL=openai/b\nNICOBOT_PORT=8000\n",
    )
    settings = load_settings(project, environ={"NICOBOT_PORT": "9000"})
    assert settings.bot.language == "es"
    assert settings.llm.model == "openai/b"
    assert settings.server.port == 9000
    assert settings.admin_password == "from-dotenv"
    nested = load_settings(project, environ={"NICOBOT_LLM__TIMEOUT_SECONDS": "5"})
    assert nested.llm.timeout_seconds == 5


@pytest.mark.parametrize(
    ("toml", "env", "expected"),
    [
        (
            "[llm]\ntimeout_seconds = -1\n",
            {},
            "llm.timeout_seconds: Input should be greater than 0",
        ),
        ("[server]\nport = 'abc'\n", {}, "server.port:"),
        ("[bot]\nlanguage = 'fr'\n", {}, "bot.language:"),
        ("[bot]\ntimezone = 'Mars/Olympus'\n", {}, "bot.timezone: unknown time zone"),
        ("[bot]\nnmae = 'typo'\n", {}, "bot.nmae: unknown key"),
        ("[bot\n", {}, "not valid TOML"),
        ("", {"NICOBOT_PORT": "99999"}, "server.port:"),
    ],
)
def test_errors_are_one_line_naming_the_key(tmp_path, toml, env, expected):
    project = write(tmp_path / "p", toml)
    with pytest.raises(ConfigError) as error:
        load_settings(project, environ=env)
    message = str(error.value)
    assert expected in message
    assert "\n" not in message
    assert message.startswith("nicobot.toml: ")


def test_missing_project_directory(tmp_path):
    with pytest.raises(ConfigError, match="does not exist"):
        load_settings(tmp_path / "nowhere", environ={})


def test_channel_tables_are_passed_through(tmp_path):
    project = write(tmp_path / "p", "[channels.whatsapp]\ninstance = 'laformula'\n")
    settings = load_settings(project, environ={"NICOBOT_CHANNELS__WHATSAPP__DEBOUNCE_SECONDS": "3"})
    assert settings.channels["whatsapp"] == {"instance": "laformula", "debounce_seconds": "3"}
