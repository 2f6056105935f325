"""Bounds on what a request may carry, checked before anything parses it.

JSON bodies (the API's and the webhooks') are limited in size and nesting depth: a body
nested a thousand levels deep would otherwise exhaust the parser's recursion, and every
route answers such input with a 4xx and ``{"error": ...}``. Path values are bounded too:
an integer id that does not fit in 64 bits, or a name longer than any the app makes, is
simply not found.
"""

from __future__ import annotations

import re

import numpy as np

MAX_JSON_BYTES = 4 * 1024 * 1024
MAX_JSON_DEPTH = 64
MAX_ID = 2**63 - 1
MAX_PATH_VALUE_CHARS = 1024
#: Bodies that are forms, not JSON: the JSON checks leave them alone.
FORM_TYPES = frozenset({"multipart/form-data", "application/x-www-form-urlencoded"})

# A JSON string, or an unterminated one running to the end of the body: every match at a
# quote succeeds, so removing strings takes one pass whatever the body holds.
_STRING = re.compile(rb'"(?:[^"\\]|\\.)*+(?:"|\\?\Z)', re.DOTALL)
_NOT_BRACKETS = bytes(b for b in range(256) if b not in b"[]{}")
_OPENERS = np.frombuffer(b"[{", dtype=np.uint8)


class BodyRejected(Exception):
    """A request body refused before parsing; ``status`` is the 4xx to answer."""

    def __init__(self, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.status = status


def json_depth(body: bytes) -> int:
    """How deeply arrays and objects nest in ``body`` (brackets inside strings ignored);
    linear in its length, whether or not it is valid JSON."""
    if body.count(b"[") + body.count(b"{") == 0:
        return 0
    brackets = _STRING.sub(b"", body).translate(None, _NOT_BRACKETS)
    if not brackets:
        return 0
    codes = np.frombuffer(brackets, dtype=np.uint8)
    steps = np.where(np.isin(codes, _OPENERS), 1, -1).astype(np.int32)
    return int(np.cumsum(steps).max(initial=0))


def check_json_body(body: bytes, *, require_utf8: bool = True) -> None:
    """Raise :class:`BodyRejected` for a body too large or too deep to parse as JSON."""
    if len(body) > MAX_JSON_BYTES:
        raise BodyRejected(f"the body is larger than {MAX_JSON_BYTES // (1024 * 1024)} MB", 413)
    if body.count(b"[") + body.count(b"{") > MAX_JSON_DEPTH and json_depth(body) > MAX_JSON_DEPTH:
        raise BodyRejected(f"the JSON nests deeper than {MAX_JSON_DEPTH} levels")
    if require_utf8:
        try:
            body.decode("utf-8")
        except UnicodeDecodeError:
            raise BodyRejected("the body is not UTF-8 text") from None


def path_value_ok(value: object) -> bool:
    """Whether a URL path value is within the bounds of anything the app stores."""
    if isinstance(value, int):
        return 0 <= value <= MAX_ID
    if isinstance(value, str):
        return len(value) <= MAX_PATH_VALUE_CHARS and "\x00" not in value
    return True
