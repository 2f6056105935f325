"""Stores keep conversations, transcripts and webhook dedup records."""

from .base import Store

__all__ = ["Store"]
