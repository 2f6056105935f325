"""RAG through litellm's real code path: retrieved passages reach the prompt with their
sources, and the reply records which ones it used."""

from __future__ import annotations

import pytest


@pytest.fixture
def nicobot_env(fake_llm):
    return dict(fake_llm.env)


async def chat(client, message: str) -> dict:
    response = await client.post(
        "/api/chat", json={"phone_number": "5491100000001", "message": message}
    )
    assert response.status_code == 200
    return await response.get_json()


async def test_retrieved_passages_and_sources_reach_the_prompt(
    nicobot_client, nicobot_bot, fake_llm
):
    turn = await chat(nicobot_client, "What are your opening hours on Saturday?")
    assert turn["mode"] == "llm"
    system = [m["content"] for m in fake_llm.last_messages() if m["role"] == "system"]
    [knowledge] = [text for text in system if text.startswith("Information from the business")]
    assert "(about.md > " in knowledge
    assert "Saturdays from 10:00 to 14:00" in knowledge
    [_, reply] = await nicobot_bot.store.list_messages(turn["session_id"])
    assert reply.meta["sources"][0]["source"] == "about.md"
    assert reply.meta["sources"][0]["score"] >= nicobot_bot.settings.knowledge.min_score


async def test_unrelated_questions_get_no_passages(nicobot_client, nicobot_bot, fake_llm):
    turn = await chat(nicobot_client, "zzz qqq xyzzy")
    system = [m["content"] for m in fake_llm.last_messages() if m["role"] == "system"]
    assert not any(text.startswith("Information from the business") for text in system)
    [_, reply] = await nicobot_bot.store.list_messages(turn["session_id"])
    assert "sources" not in reply.meta


class TestOffline:
    @pytest.fixture
    def nicobot_env(self):
        return {}

    async def test_offline_answers_quote_the_best_passage(self, nicobot_client):
        turn = await chat(nicobot_client, "opening hours")
        assert turn["mode"] == "offline"
        assert turn["reply"].startswith("This is what I found in our documents:")
        assert "Monday to Friday" in turn["reply"]

    async def test_offline_fallback_when_nothing_matches(self, nicobot_client):
        turn = await chat(nicobot_client, "zzz qqq xyzzy")
        assert turn["reply"].startswith("Thanks for your message!")
