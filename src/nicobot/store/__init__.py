"""Stores keep conversations, transcripts and webhook dedup records."""

from .base import LostClaim, Store

__all__ = ["LostClaim", "Store"]
