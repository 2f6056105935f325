"""A customer's question as the knowledge base is asked it: chat shorthand spelled out and
the business's own synonyms added.

Customers write "q sale el envío a caba?" where the documents say "¿Qué cuesta el envío a
la Ciudad de Buenos Aires?". Neither a lexical nor a small semantic embedder knows that
"q" is "que" or that "caba" is the city. :data:`CHAT_SHORTHAND` holds the shorthand of
Spanish and Portuguese chat, which is replaced by the word it stands for; ``[knowledge]
synonyms`` holds the business's own terms (a neighbourhood, a product's nickname), which
are kept and followed by what they mean: "caba (Ciudad de Buenos Aires)".
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from functools import lru_cache

#: Shorthand of Spanish (Rioplatense) and Portuguese chat, and the words it stands for.
#: Only forms that mean one thing in a customer's question.
CHAT_SHORTHAND: Mapping[str, str] = {
    "q": "que",
    "k": "que",
    "xq": "porque",
    "pq": "porque",
    "porq": "porque",
    "x": "por",
    "x ej": "por ejemplo",
    "xej": "por ejemplo",
    "tmb": "también",
    "tmbn": "también",
    "tb": "también",
    "tbm": "também",
    "hs": "horas",
    "hrs": "horas",
    "finde": "fin de semana",
    "dsp": "después",
    "dps": "después",
    "msj": "mensaje",
    "xfa": "por favor",
    "porfa": "por favor",
    "pls": "por favor",
    "cdo": "cuando",
    "dnd": "donde",
    "tel": "teléfono",
    "nro": "número",
    "ud": "usted",
    "uds": "ustedes",
    "vc": "você",
    "vcs": "vocês",
    "info": "información",
    "dto": "descuento",
    "vit": "vitamina",
    "bs as": "Buenos Aires",
    "bsas": "Buenos Aires",
}


def search_text(
    text: str, synonyms: Mapping[str, str] | None = None, shorthand: bool = True
) -> str:
    """``text`` with chat shorthand spelled out (when ``shorthand``) and each of the
    business's ``synonyms`` followed by its meaning in parentheses."""
    replace = _compile(tuple(CHAT_SHORTHAND.items()) if shorthand else ())
    explain = _compile(tuple((synonyms or {}).items()))
    if replace is not None:
        text = replace.pattern.sub(lambda m: replace.meaning(m.group(0)), text)
    if explain is not None:
        text = explain.pattern.sub(lambda m: f"{m.group(0)} ({explain.meaning(m.group(0))})", text)
    return text


class _Terms:
    def __init__(self, terms: tuple[tuple[str, str], ...]) -> None:
        self.meanings = {_key(term): meaning for term, meaning in terms}
        # longest first, so that "x ej" wins over "x"
        alternatives = sorted(self.meanings, key=len, reverse=True)
        words = (r"\s+".join(map(re.escape, term.split())) for term in alternatives)
        self.pattern = re.compile(rf"(?<!\w)(?:{'|'.join(words)})(?!\w)", re.IGNORECASE)

    def meaning(self, found: str) -> str:
        return self.meanings[_key(found)]


def _key(term: str) -> str:
    return " ".join(term.lower().split())


@lru_cache(maxsize=64)
def _compile(terms: tuple[tuple[str, str], ...]) -> _Terms | None:
    usable = tuple((term, meaning) for term, meaning in terms if term.strip() and meaning.strip())
    return _Terms(usable) if usable else None
