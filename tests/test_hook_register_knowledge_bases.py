"""register_knowledge_bases: ``[knowledge] backend`` picks a plugin's knowledge base by name."""

from __future__ import annotations

import pytest

from nicobot import hookimpl
from nicobot.bot import Bot
from nicobot.config import load_settings
from nicobot.errors import ConfigError
from nicobot.plugins import make_plugin_manager
from nicobot.rag.chroma_store import ChromaKnowledgeBase


class CopyKnowledge(ChromaKnowledgeBase):
    name = "copy"


class CopyKnowledgePlugin:
    @hookimpl
    def register_knowledge_bases(self):
        return [CopyKnowledge]


def test_hook_register_knowledge_bases(tmp_path):
    pm = make_plugin_manager(load_entry_points=False)
    pm.register(CopyKnowledgePlugin(), name="copy-knowledge")
    bot = Bot(load_settings(tmp_path, environ={"NICOBOT_KNOWLEDGE__BACKEND": "copy"}), pm)
    assert type(bot.knowledge) is CopyKnowledge
    with pytest.raises(ConfigError, match="installed: chroma, copy"):
        Bot(load_settings(tmp_path, environ={"NICOBOT_KNOWLEDGE__BACKEND": "other"}), pm)
