"""What kind of answer a question asks for, and whether a passage can hold one.

A question that asks a price ("¿cuánto sale la crema de cacao?", "how much is the kit?",
"quanto custa?") is answered only by a passage that states one: a price, or that it is
free. The product's description is about the same thing, and a semantic embedder ranks it
first, but it cannot answer: the bot should quote the price list, or say it does not know.
"""

from __future__ import annotations

import re

from .offline_answer import question_parts
from .rag.hashing import fold

#: Questions asking a price, on folded text (lower case, no accents), in es, pt and en.
#: "precio" but not "precios": "¿los precios incluyen IVA?" asks about prices in general.
_ASKS_PRICE = re.compile(
    r"\b(?:"
    r"cuanto (?:sale|salen|cuesta|cuestan|esta|estan|vale|valen|me sale|me cuesta|seria)"
    r"|que (?:sale|salen|cuesta|cuestan|precio|valor)"
    r"|precio|costo del|costos? de"
    r"|quanto (?:custa|custam|sai|fica|e)|preco"
    r"|how much (?:is|are|does|do|for)|price|costs?"
    r")\b"
)
#: Passages stating a price or that something costs nothing.
_STATES_PRICE = re.compile(
    r"\$\s?\d|\b\d[\d.,]*\s?(?:pesos|ars|usd|reais)\b"
    r"|\b(?:gratis|gratuit[oa]s?|free)\b|\bsin (?:cargo|costo)\b|\bsem custo\b"
)


def asks_price(question: str) -> bool:
    return _ASKS_PRICE.search(fold(question)) is not None


def states_price(passage: str) -> bool:
    return _STATES_PRICE.search(fold(passage)) is not None


def can_answer(question: str, passage: str) -> bool:
    """False for a passage that holds no answer of the kind the question asks for."""
    return not asks_price(question) or states_price(passage)


def answers_whole(question: str, passage: str) -> bool:
    """:func:`can_answer` for a whole question. One in several parts ("¿cuánto sale el
    shampoo y cuánto tarda el envío?") is checked part by part (:meth:`nicobot.Agent.search`):
    any passage may answer one of its parts."""
    return len(question_parts(question)) >= 2 or can_answer(question, passage)
