"""Fixtures for the knowledge tests: projects on disk and real Chroma stores in tmp dirs."""

from __future__ import annotations

import shutil
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest
from knowledge_helpers import EXAMPLES, write_project

import nicobot
from nicobot.rag.chroma_store import ChromaKnowledgeBase


@pytest.fixture
def project(tmp_path: Path) -> Path:
    return write_project(tmp_path / "project")


@pytest.fixture
def laformula(tmp_path: Path) -> Path:
    """A project holding a copy of La Formula's sample documents."""
    directory = write_project(tmp_path / "laformula", name="Nico")
    shutil.rmtree(directory / "knowledge")
    shutil.copytree(EXAMPLES, directory / "knowledge")
    return directory


KBFactory = Callable[..., ChromaKnowledgeBase]


@pytest.fixture
async def open_kb() -> AsyncIterator[KBFactory]:
    """Build knowledge bases for project directories; all are closed at the end."""
    opened: list[ChromaKnowledgeBase] = []

    def factory(directory: Path) -> ChromaKnowledgeBase:
        kb = ChromaKnowledgeBase.from_settings(nicobot.load_settings(directory))
        opened.append(kb)
        return kb

    yield factory
    for kb in opened:
        await kb.close()
