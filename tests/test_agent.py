"""The agent through litellm's real code path, against a fake LLM server, with litellm in
the server's process and in its own child process."""

from __future__ import annotations

import asyncio
import os
import signal

import pytest

from nicobot import hookimpl
from nicobot.testing import FakeLLM


@pytest.fixture(params=["inline", "separate"])
def nicobot_env(request, fake_llm: FakeLLM) -> dict[str, str]:
    return {
        **fake_llm.env,
        "NICOBOT_LLM__TIMEOUT_SECONDS": "1",
        "NICOBOT_LLM__HISTORY_MESSAGES": "4",
        "NICOBOT_LLM__PROCESS": request.param,
    }


async def chat(client, message: str, **extra):
    response = await client.post(
        "/api/chat", json={"phone_number": "5491100000001", "message": message, **extra}
    )
    assert response.status_code == 200
    return await response.get_json()


async def test_prompt_has_persona_context_and_a_bounded_history(nicobot_client, fake_llm):
    first = await chat(nicobot_client, "uno", prompt_context="Bought boots last week")
    assert first["reply"] == "Echo: uno"
    assert first["mode"] == "llm"
    for text in ("dos", "tres", "cuatro"):
        await chat(nicobot_client, text, session_id=first["session_id"])
    messages = fake_llm.last_messages()
    assert messages[0]["role"] == "system"
    assert messages[0]["content"].startswith("You are Nico, the friendly assistant for Test Shop.")
    assert {
        "role": "system",
        "content": "About this conversation: Bought boots last week",
    } in messages
    turns = [m for m in messages if m["role"] != "system"]
    # the last four messages of the history, then the new one
    assert [(m["role"], m["content"]) for m in turns] == [
        ("user", "dos"),
        ("assistant", "Echo: dos"),
        ("user", "tres"),
        ("assistant", "Echo: tres"),
        ("user", "cuatro"),
    ]


async def test_a_slow_llm_gets_the_customer_an_apology(nicobot_client, nicobot_bot, fake_llm):
    fake_llm.latency = 3
    turn = await chat(nicobot_client, "hola")
    assert turn["mode"] == "apology"
    assert turn["reply"].startswith("Sorry")
    [_, reply] = await nicobot_bot.store.list_messages(turn["session_id"])
    assert reply.meta["error"] == "timeout"


async def test_an_llm_error_gets_the_customer_an_apology(nicobot_client, nicobot_bot, fake_llm):
    fake_llm.fail_status = 500
    turn = await chat(nicobot_client, "hola")
    assert turn["mode"] == "apology"
    [_, reply] = await nicobot_bot.store.list_messages(turn["session_id"])
    assert "error" in reply.meta


async def test_before_and_after_reply_hooks(nicobot_client, nicobot_bot, fake_llm):
    class Shouting:
        @hookimpl
        async def before_reply(self, bot, context):
            context.llm_messages.insert(1, {"role": "system", "content": "Shout."})

        @hookimpl
        def after_reply(self, bot, context, reply):
            return reply.upper()

    nicobot_bot.pm.register(Shouting())
    turn = await chat(nicobot_client, "hola")
    assert turn["reply"] == "ECHO: HOLA"
    assert fake_llm.last_messages()[1] == {"role": "system", "content": "Shout."}


async def test_non_text_messages_get_the_canned_reply(nicobot_bot, fake_llm):
    from nicobot import IncomingMessage, MessageKind

    turn = await nicobot_bot.converse(
        IncomingMessage(
            channel="simulator", address="5550001", text="", message_id="a1", kind=MessageKind.AUDIO
        )
    )
    assert turn.mode == "non_text"
    assert "text" in turn.reply
    assert fake_llm.requests == []


class TestSpanish:
    @pytest.fixture
    def nicobot_env(self, fake_llm):
        return {**fake_llm.env, "NICOBOT_LANGUAGE": "es", "NICOBOT_LLM__TIMEOUT_SECONDS": "0.5"}

    async def test_the_apology_is_in_the_bots_language(self, nicobot_client, fake_llm):
        fake_llm.latency = 2
        turn = await chat(nicobot_client, "hola")
        assert turn["reply"].startswith("Perdón")


class TestConfiguredWords:
    @pytest.fixture
    def nicobot_env(self, fake_llm):
        return {**fake_llm.env, "NICOBOT_MESSAGES__APOLOGY": "Uy, volvé a escribir en un rato."}

    async def test_messages_table_overrides_the_default(self, nicobot_client, fake_llm):
        fake_llm.fail_status = 400
        turn = await chat(nicobot_client, "hola")
        assert turn["reply"] == "Uy, volvé a escribir en un rato."


async def test_completions_on_an_openai_compatible_server_run_in_the_server(
    nicobot_client, nicobot_bot, nicobot_env
):
    runner = nicobot_bot.agent.llm
    assert (await chat(nicobot_client, "uno"))["reply"] == "Echo: uno"
    assert runner.pid == os.getpid()
    if nicobot_env["NICOBOT_LLM__PROCESS"] == "separate":
        assert runner.child.pid is None  # litellm's child starts only for litellm's calls


async def test_stopping_while_the_llm_process_starts_leaves_no_process(nicobot_project):
    from nicobot.agent import Agent
    from nicobot.config import load_settings

    environ = {
        **os.environ,
        "NICOBOT_MODEL": "openai/gpt-4o-mini",  # no key nor api_base: the start checks keys
        "NICOBOT_LLM__PROCESS": "separate",
    }
    agent = Agent(load_settings(nicobot_project, environ=environ), None)
    agent.warm_up()
    for _ in range(1000):
        if agent.llm.pid is not None:
            break
        await asyncio.sleep(0.01)
    child = agent.llm.pid
    assert child is not None and not agent.llm.ready  # still importing litellm
    await asyncio.wait_for(agent.close(), 30)
    assert agent.llm.pid is None
    with pytest.raises(ProcessLookupError):
        os.kill(child, 0)  # stopped and reaped, and no second one was started
    assert agent.llm_state == "loading"


def test_the_code_chooses_the_client():
    from nicobot.llm_process import client_for

    assert client_for("openai/fake-model", "http://127.0.0.1:8000/v1") == "openai"
    assert client_for("openai/gpt-4o-mini", None) == "litellm"  # the hosted API: litellm
    assert client_for("anthropic/claude-3-5-haiku", "http://127.0.0.1:8000") == "litellm"
    assert client_for("hosted_vllm/fake-model", "http://127.0.0.1:8000/v1") == "litellm"


class TestThroughLitellm:
    """A provider other than an OpenAI-compatible ``openai/`` server goes through litellm:
    vLLM's own provider name, on the same fake server."""

    @pytest.fixture(params=["inline", "separate"])
    def nicobot_env(self, request, fake_llm: FakeLLM) -> dict[str, str]:
        return {
            **fake_llm.env,
            "NICOBOT_MODEL": "hosted_vllm/fake-model",
            "NICOBOT_LLM__TIMEOUT_SECONDS": "30",  # litellm's first call imports more
            "NICOBOT_LLM__PROCESS": request.param,
        }

    async def test_the_llm_process_comes_back_after_it_dies(
        self, nicobot_client, nicobot_bot, nicobot_env
    ):
        runner = nicobot_bot.agent.llm
        assert (await chat(nicobot_client, "uno"))["reply"] == "Echo: uno"
        if nicobot_env["NICOBOT_LLM__PROCESS"] == "inline":
            assert runner.pid == os.getpid()
            return
        first_pid = runner.pid
        assert first_pid not in (None, os.getpid())
        os.kill(first_pid, signal.SIGKILL)
        for _ in range(1000):
            if not runner.ready:
                break
            await asyncio.sleep(0.01)
        assert not runner.ready
        turn = await chat(nicobot_client, "dos")
        assert (turn["reply"], turn["mode"]) == ("Echo: dos", "llm")
        assert runner.pid not in (None, first_pid)

    async def test_replies_and_apologies(self, nicobot_client, nicobot_bot, fake_llm):
        turn = await chat(nicobot_client, "hola")
        assert (turn["mode"], turn["reply"]) == ("llm", "Echo: hola")
        assert fake_llm.last_messages()[-1]["content"] == "hola"
        fake_llm.fail_status = 500
        failed = await chat(nicobot_client, "otra")
        assert failed["mode"] == "apology"
        [*_, reply] = await nicobot_bot.store.list_messages(failed["session_id"])
        assert reply.meta["error"]
