"""The agent: history and a message in, a reply out. Channel-agnostic."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from . import i18n, offline_answer
from .answer_kind import Kind, asked_kind, of_the_kind, states_kind
from .knowledge import KnowledgeBase, Snippet
from .llm_process import LLMRunner, client_for, runner_for
from .models import ChatSession, Message, Role

if TYPE_CHECKING:
    from .config import Settings

log = logging.getLogger("nicobot.agent")

#: litellm's call enforces the LLM timeout; the agent waits this much longer at most
#: (a child process that hangs).
CALL_MARGIN_SECONDS = 5.0
VALIDATE_SECONDS = 60.0
#: The parts of a several-part question answered, at most.
MAX_PARTS = 3


#: Before the retrieved passages, in the prompt.
KNOWLEDGE_PREAMBLE = (
    "Information from the business's documents, with sources. Answer only from it; if it "
    "does not answer the customer's question, say that you do not know and offer to pass "
    "them to a person. Never guess prices, dates or conditions:"
)
#: In the prompt when no passage matched the customer's message well enough.
NO_KNOWLEDGE = (
    "No information from the business's documents matches this message. If it asks "
    "something about the business, say that you do not know and offer to pass the customer "
    "to a person; do not answer from general knowledge. Greetings and thanks need no "
    "information: answer them briefly."
)


def _(message: str) -> str:
    """Mark a canned message for extraction; it is translated when used."""
    return message


CANNED_DEFAULTS: dict[str, str] = {
    "apology": _(
        "Sorry, I can't answer right now. Please try again in a few minutes, "
        "or ask to talk to a person."
    ),
    "non_text": _("Sorry, I can only read text messages for now. Could you write it to me?"),
    "offline_intro": _("This is what I found in our documents:"),
    "offline_fallback": _(
        "Thanks for your message! I couldn't find that in our information. "
        "A person from our team will get back to you soon."
    ),
    "handoff": _("Got it, I'll pass you on to a person from our team."),
    "delayed": _("Sorry for the late reply."),
    "opt_out": _(
        "Done, we won't write to you again. If you want to talk to us later, write %(keyword)s."
    ),
    "opt_in": _("Welcome back! How can I help you?"),
    "handoff_closed": _(
        "Got it, I'll pass you on to a person from our team. We're closed now: "
        "a person will write to you %(when)s."
    ),
    "offline_fallback_closed": _(
        "Thanks for your message! I couldn't find that in our information. "
        "We're closed now: a person from our team will write to you %(when)s."
    ),
    "out_of_office": _(
        "Thanks for your message! We're closed now. We open %(when)s and we'll answer you then."
    ),
    "rate_limited": _(
        "You're writing faster than I can answer. I'll reply to your latest messages in a moment."
    ),
}


def canned_message(settings: Settings, key: str) -> str:
    """The bot's own words for ``key``: from ``[messages]`` or the language default."""
    configured: str | None = getattr(settings.messages, key)
    if configured:
        return configured
    return i18n.gettext(settings.bot.language, CANNED_DEFAULTS[key])


@dataclass(slots=True)
class ReplyContext:
    """Everything one turn of the agent works with; hooks may edit ``llm_messages``."""

    session: ChatSession
    text: str
    history: list[Message]
    snippets: list[Snippet]
    llm_messages: list[dict[str, Any]] = field(default_factory=list)


@dataclass(slots=True)
class AgentReply:
    text: str
    snippets: list[Snippet]
    mode: str  # "llm", "offline" or "apology"
    error: str | None = None
    llm_seconds: float | None = None

    def meta(self) -> dict[str, Any]:
        meta: dict[str, Any] = {"mode": self.mode}
        if self.snippets:
            meta["sources"] = [s.to_dict() for s in self.snippets]
        if self.error:
            meta["error"] = self.error
        if self.llm_seconds is not None:
            meta["llm_seconds"] = round(self.llm_seconds, 3)
        return meta


def missing_keys_reason(model: str, check: Mapping[str, Any]) -> str | None:
    """What litellm's ``validate_environment`` says is missing for ``model``, if anything."""
    if not check.get("keys_in_environment", True):
        missing = ", ".join(check.get("missing_keys") or []) or "an API key"
        return f"{model} needs {missing}"
    return None


class Agent:
    """Builds the prompt, calls the LLM through litellm, and never leaves a customer unanswered."""

    def __init__(self, settings: Settings, knowledge: KnowledgeBase | None) -> None:
        self.settings = settings
        self.knowledge = knowledge
        self._offline_decided = False
        self._offline: str | None = None
        self._warm_up: asyncio.Future[str | None] | None = None
        client = client_for(settings.llm.model, settings.llm.api_base)
        self.llm: LLMRunner = runner_for(settings.llm.process, client)

    async def offline(self) -> str | None:
        """Why replies come from the knowledge base alone, or None when an LLM answers."""
        if not self._offline_decided:
            self._offline = await self._offline_reason()
            self._offline_decided = True
            if self._offline:
                log.warning("answering offline from the knowledge base: %s", self._offline)
        return self._offline

    async def _offline_reason(self) -> str | None:
        llm = self.settings.llm
        if not llm.model:
            return "no model is configured ([llm] model)"
        await self.llm.start()  # litellm is imported now, not on a first message
        if llm.api_key or llm.api_base:
            return None
        check = await self.llm.call("validate_environment", VALIDATE_SECONDS, model=llm.model)
        return missing_keys_reason(llm.model, check)

    @property
    def llm_state(self) -> str:
        """``offline``, ``loading`` (litellm still importing) or ``ready``."""
        if not self.settings.llm.model:
            return "offline"
        return "ready" if self.llm.ready else "loading"

    async def close(self) -> None:
        """Stop the LLM process, if any (after the pipeline's last turn)."""
        if self._warm_up is not None:
            self._warm_up.cancel()
        await self.llm.stop()

    def warm_up(self) -> None:
        """Start importing litellm in the background when a model is configured."""
        if self.settings.llm.model:
            self._warm_up = asyncio.ensure_future(self.offline())
            self._warm_up.add_done_callback(_report_warm_up)

    async def retrieve(self, text: str) -> list[Snippet]:
        """The passages that answer ``text``: those of :meth:`search` that clear
        ``min_score``."""
        found = await self.search(text)
        return [s for s in found if s.score >= self.settings.knowledge.min_score]

    async def search(self, text: str) -> list[Snippet]:
        """The best passages for ``text``, sure or not, best first. A question in several
        parts ("¿cuánto sale el shampoo y dónde quedan?") also has each part searched on its
        own; each one's best passage follows the first, so every part can be answered
        (they come before it when it does not state the price or time a part asks and the
        part's own does, that part's first). Each search adds the words of the topics it
        asks about (``[knowledge] topic_words``). A question (or part) asking a price keeps
        only passages that state one; one asking how long puts those that state a time
        first (:mod:`nicobot.answer_kind`)."""
        if self.knowledge is None or not text.strip():
            return []
        knowledge = self.settings.knowledge
        language = self.settings.bot.language
        text = knowledge.search_text(text)
        top_k = knowledge.top_k
        found = await self.knowledge.query(knowledge.query_text(text, language), k=top_k)
        parts = offline_answer.question_parts(text)
        if len(parts) < 2:
            return of_the_kind(asked_kind(text), found)
        if not found:
            return found
        answers_of_parts: list[tuple[Kind, Snippet]] = []
        for part in parts[:MAX_PARTS]:
            kind = asked_kind(part)
            # a part asking a price (or a time) may find its answer below a description
            answers = await self.knowledge.query(
                knowledge.query_text(part, language), k=top_k if kind else 1
            )
            answers_of_parts.extend((kind, a) for a in of_the_kind(kind, answers)[:1])
        best, rest = found[0], found[1:]
        unmet = [
            a
            for kind, a in answers_of_parts
            if not states_kind(kind, best.text) and states_kind(kind, a.text)
        ]
        if not unmet:
            return _unique([best, *(a for _kind, a in answers_of_parts), *rest])
        # a part asks a price (or a time) the whole question's best does not state: the
        # parts' own answers come first, that part's before the others
        return _unique([*unmet, *(a for _kind, a in answers_of_parts), best, *rest])

    def system_prompt(self, persona: Mapping[str, Any] | None = None) -> str:
        """The system prompt with ``{name}``, ``{persona}`` and ``{business}`` filled in."""
        values = dict(self.settings.bot.model_dump(), **(persona or {}))
        template = str(values["system_prompt"])
        try:
            return template.format(
                name=values["name"], persona=values["persona"], business=values["business"]
            )
        except (KeyError, IndexError, ValueError):
            return template  # a prompt with other braces is used as written

    def build_messages(
        self, context: ReplyContext, persona: Mapping[str, Any] | None = None
    ) -> list[dict[str, str]]:
        messages = [{"role": "system", "content": self.system_prompt(persona)}]
        if context.snippets:
            sources = "\n\n".join(
                f"[{i}] ({s.source}{' > ' + s.heading if s.heading else ''})\n{s.text}"
                for i, s in enumerate(context.snippets, 1)
            )
            messages.append({"role": "system", "content": f"{KNOWLEDGE_PREAMBLE}\n\n{sources}"})
        elif self.knowledge is not None:
            messages.append({"role": "system", "content": NO_KNOWLEDGE})
        if context.session.prompt_context:
            messages.append(
                {
                    "role": "system",
                    "content": "About this conversation: " + context.session.prompt_context,
                }
            )
        window = self.settings.llm.history_messages
        for message in context.history[-window:] if window else []:
            if message.role is Role.USER:
                messages.append({"role": "user", "content": message.text})
            elif message.role in (Role.ASSISTANT, Role.OPERATOR):
                messages.append({"role": "assistant", "content": message.text})
        messages.append({"role": "user", "content": context.text})
        return messages

    def offline_answer(self, snippets: list[Snippet], question: str = "") -> AgentReply:
        """The reply with no LLM: what answers in the best passages, or the fallback."""
        if not snippets:
            return AgentReply(canned_message(self.settings, "offline_fallback"), [], "offline")
        quoted, used = offline_answer.compose(
            self.settings.knowledge.search_text(question), snippets
        )
        intro = canned_message(self.settings, "offline_intro")
        return AgentReply(f"{intro}\n\n{quoted}", used, "offline")

    async def complete(self, llm_messages: list[dict[str, Any]]) -> str:
        llm = self.settings.llm
        kwargs: dict[str, Any] = {
            "model": llm.model,
            "messages": llm_messages,
            "timeout": llm.timeout_seconds,
            "temperature": llm.temperature,
            "max_tokens": llm.max_tokens,
            "max_retries": llm.max_retries,
        }
        if llm.api_base:
            kwargs["api_base"] = llm.api_base
        if llm.api_key:
            kwargs["api_key"] = llm.api_key
        content = await self.llm.call(
            "acompletion", llm.timeout_seconds + CALL_MARGIN_SECONDS, **kwargs
        )
        if not content or not str(content).strip():
            raise ValueError("the model returned an empty reply")
        return str(content).strip()

    async def reply(self, context: ReplyContext) -> AgentReply:
        started = time.perf_counter()
        try:
            if await self.offline():
                return self.offline_answer(context.snippets, context.text)
            text = await self.complete(context.llm_messages)
        except TimeoutError:
            log.warning(
                "LLM timed out after %ss in session %s",
                self.settings.llm.timeout_seconds,
                context.session.id,
            )
            return AgentReply(
                canned_message(self.settings, "apology"), [], "apology", error="timeout"
            )
        except Exception as exc:  # any provider failure becomes an apology, never silence
            log.warning("LLM call failed in session %s: %s", context.session.id, _short(exc))
            return AgentReply(
                canned_message(self.settings, "apology"), [], "apology", error=_short(exc)
            )
        return AgentReply(text, context.snippets, "llm", llm_seconds=time.perf_counter() - started)


def _unique(snippets: list[Snippet]) -> list[Snippet]:
    seen: set[tuple[str, str | None, str]] = set()
    unique = []
    for snippet in snippets:
        key = (snippet.source, snippet.chunk_id, snippet.text)
        if key not in seen:
            seen.add(key)
            unique.append(snippet)
    return unique


def _report_warm_up(warm_up: asyncio.Future[str | None]) -> None:
    error = None if warm_up.cancelled() else warm_up.exception()
    if error is not None:
        log.warning("the LLM is not ready (tried again on the next message): %s", _short(error))


def _short(exc: BaseException) -> str:
    text = f"{type(exc).__name__}: {exc}"
    return text if len(text) <= 300 else text[:297] + "..."
