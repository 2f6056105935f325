"""Retrieval for nicobot: readers, chunking, embedders and the Chroma knowledge base.

Nothing here imports chromadb or litellm at module import; they load on first use.
"""

from __future__ import annotations

SUPPORTED_SUFFIXES = (".md", ".markdown", ".txt", ".html", ".htm", ".pdf")
