"""API errors in the page's language.

The API's ``{"error": ...}`` texts are English for scripts. Requests from the pages
(the admin's cookie session) get them translated: a text is looked up as it is, then
matched against the templates below, whose ``%(name)s`` parts are carried over as they
came (a file name, a channel's own error).
"""

from __future__ import annotations

import functools
import re

from .. import i18n


def _(message: str) -> str:
    """Mark a template for the catalogues."""
    return message


#: What an unexpected failure answers (the traceback goes to the log, never to the client).
INTERNAL_ERROR = _("internal error; see the server log")

TEMPLATES = (
    _("no such session"),
    _("authentication required"),
    _("missing or wrong CSRF token; reload the page"),
    INTERNAL_ERROR,
    _("request too large"),
    _("the body must be a JSON object"),
    _("%(key)s is required"),
    _("%(key)s must be a string"),
    _("%(key)s is longer than %(limit)s characters"),
    _("%(key)s must be a whole number"),
    _("%(key)s must be between %(low)s and %(high)s"),
    _("'minutes' must be a positive number"),
    _("'status' must be pending, sending, sent or failed"),
    _("'phone_number' must be 6 to 15 digits, optionally with a leading +"),
    _("'format' must be json or csv"),
    _("'days' must be 7, 30 or 90"),
    _("no failed delivery with that id"),
    _("the simulator channel is disabled"),
    _("only simulator sessions can be written to from here"),
    _("the bot is paused in this conversation; resume it first"),
    _("the reply is taking long; it will appear in the conversation"),
    _("no channel named %(name)s"),
    _("the channel %(name)s is not installed"),
    _("%(channel)s is not configured; see the docs for its settings"),
    _("send at least one of name, persona, business, system_prompt"),
    _("no channel takes webhooks at %(slug)s"),
    _("no document %(source)s"),
    _("the chroma knowledge base is not in use (see [knowledge] backend)"),
    _("the file needs a name"),
    _("%(name)s: unsupported file type (use .md, .txt, .html or .pdf)"),
    _("send the files as multipart/form-data in the field 'file'"),
    _("no file: send one or more in the field 'file'"),
    _("'q' is required: the question to search for"),
    _("%(name)s: larger than %(megabytes)s MB"),
    _("%(name)s: the file is empty"),
    _("%(channel)s: %(reason)s"),
)

_PLACEHOLDER = re.compile(r"%\((\w+)\)s")


@functools.cache
def _patterns() -> tuple[tuple[re.Pattern[str], str], ...]:
    compiled = []
    for template in TEMPLATES:
        pieces = _PLACEHOLDER.split(template)
        regex = "".join(
            f"(?P<{piece}>.+?)" if i % 2 else re.escape(piece) for i, piece in enumerate(pieces)
        )
        compiled.append((re.compile(f"^{regex}$", re.DOTALL), template))
    return tuple(compiled)


def translate_error(message: str, language: str) -> str:
    """``message`` in ``language`` when a template matches it, else as it came."""
    if language == "en":
        return message
    for pattern, template in _patterns():
        found = pattern.match(message)
        if found:
            return i18n.gettext(language, template) % found.groupdict()
    return message
