"""What kind of answer a question asks for, and whether a passage can hold one.

A question that asks a price ("¿cuánto sale la crema de cacao?", "how much is the kit?",
"quanto custa?") is answered only by a passage that states one: a price, or that it is
free. The product's description is about the same thing, and a semantic embedder ranks it
first, but it cannot answer: the bot should quote the price list, or say it does not know.

A question that asks how long something takes or lasts ("¿hasta cuándo tengo para
cambiarla?", "how long does delivery take?", "quanto tempo demora?") is most likely
answered by a passage that states a time ("30 días corridos", "24 a 48 horas", "seis
meses"): among the passages found for it, those come first. They are not required, as
prices are: "¿cuánto tarda?" may be answered by "te llega en el día".

Short questions about what every shop is asked ("¿dónde quedan?", "a q hora abren",
"do you ship to Uruguay?", "como les pago") share no word with the passage that answers
("Dirección: Gurruchaga 1450", "Horarios de atención", "Formas de pago"), and a small
embedder finds them no closer to it than to any passage that says "local". :data:`TOPICS`
names those subjects and the words documents file them under; :func:`with_topic_words`
adds those words to the question the knowledge base is asked ("¿dónde quedan? (dirección,
ubicación)"), in the bot's language.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal

from .knowledge import Snippet
from .offline_answer import question_parts
from .rag.hashing import fold

#: Questions asking a price, on folded text (lower case, no accents), in es, pt and en.
#: Only the forms that ask one: "¿el precio incluye IVA?" or "¿por qué sale rechazada la
#: tarjeta?" do not, nor "precios" ("¿los precios incluyen IVA?" asks about prices in general).
_ASKS_PRICE = re.compile(
    r"\b(?:"
    r"cuanto (?:sale|salen|cuesta|cuestan|esta|estan|vale|valen|es el(?! plazo)|es la"
    r"|cobr\w+|me sale"
    r"|me cuesta|seria)"
    r"|(?<!por )(?<!lo )que (?:sale|salen|cuesta|cuestan|precio)"
    r"|(?:el |cual es el |a que )?precio (?:de|del|tiene|tienen)\b|^precio\b"
    r"|(?:el |cual es el )?(?:valor|costo) (?:de|del)\b"
    r"|quanto (?:custa|custam|sai|fica|esta)|(?:qual (?:e )?o )?(?:preco|valor) (?:de|do|da)\b"
    r"|how much (?:is|are|for|would|will)|how much does .{1,40} cost|price (?:of|for)"
    r"|what does .{1,40} cost"
    r")"
)
_AMOUNT = r"\d[\d.,]*(?:\s?mil)?"
#: Passages stating a price or that something costs nothing.
_STATES_PRICE = re.compile(
    r"(?:\$|\b(?:ars|usd|u\$[sd]|brl|eur|r\$))\s?\d"
    rf"|{_AMOUNT}\s?(?:\$|\b(?:pesos?|dolares?|reales|reais|euros?)\b)"
    r"|\b(?:gratis|gratuit[oa]s?|free|bonificad[oa]s?|de graca)\b"
    r"|\b(?:sin|sem|no tiene|at no|no) (?:cargo|costo|custo|cost|charge)\b"
)
#: A table or list with a price column: "| Producto | Precio |" and amounts under it.
_PRICE_HEADER = re.compile(r"\b(?:precios?|price|prices|precos?|valor)\b")
_BARE_AMOUNT = re.compile(r"\b\d{1,3}(?:[.,]\d{3})+\b|\b\d{4,}\b")


#: Questions asking how long something takes, lasts or may wait, on folded text.
_ASKS_DURATION = re.compile(
    r"\b(?:"
    r"cuanto (?:me |se |te |nos )?(?:tarda|tardan|demora|demoran|dura|duran)"
    r"|cuanto tiempo|en cuanto (?:tiempo|llega)|(?:para )?cuando (?:me |nos )?llega"
    r"|cuant[oa]s (?:minutos|horas|dias|semanas|meses|anos)|que plazo"
    r"|plazo (?:de|para)(?! pago)"
    r"|hasta cuando (?:\w+ ){0,3}?(?:tengo|tenes|tiene|puedo|podes|puede|pueden|se puede"
    r"|vale|valen|dura|duran|sirve|es valid\w*)"
    r"|how long|how much time|how many (?:minutes|hours|days|weeks|months|years)"
    r"|when (?:will|does|do) (?:it|they|my \w+|the \w+) (?:arrive|get here|come)"
    r"|quanto tempo|quant[oa]s (?:horas|dias|semanas|meses)|ate quando|demora quanto"
    r"|quando (?:chega|vai chegar)|(?:o |qual (?:e )?o )?prazo (?:de|para|do|da)"
    r")\b"
)
#: ...unless they ask when the shop opens ("¿cuántas horas abren?", "how many days are you
#: open?") or until what time of day ("¿hasta cuándo puedo retirar hoy?").
_ASKS_HOURS = re.compile(
    r"\b(?:abren|abrimos|atienden|atiende|cierran|abrem|fecham|atendem"
    r"|(?:are|is) (?:you|the (?:shop|store)) open|you(?: a)?re open|open on)\b"
    r"|hasta cuando (?:\w+ ){0,3}?(?:comprar|pedir|retirar|pasar|buscar)"
)
_COUNT = (
    r"\d+|un|una|uno|dos|tres|cuatro|cinco|seis|siete|ocho|nueve|diez|doce|quince|veinte"
    r"|treinta|cuarenta|one|two|three|four|five|six|seven|ten|twelve|thirty|um|uma|duas"
    r"|quatro|sete|oito|dez|quinze|trinta"
)
#: Passages stating a time span ("30 días", "24 a 48 horas", "48hs", "un año", "en el día").
_STATES_DURATION = re.compile(
    rf"\b(?:{_COUNT})(?:\s?(?:a|o|y|to|or|-|/)\s?\d+)?\s?"
    r"(?:(?:business|working|calendar) )?"
    r"(?:minutos?|horas?|dias?|semanas?|mes|meses|anos?|minutes?|hours?|days?|weeks?"
    r"|months?|years?)\b"
    # "48hs", "24/48 hs"; not the end of opening hours ("de 9 a 18 hs")
    r"|(?<!\ba )\b\d+(?:/\d+)?\s?(?:hs|hrs)\b"
    r"|\b(?:en el dia|el mismo dia|same day|no mesmo dia|next day|al dia siguiente"
    r"|within a (?:day|week|month))\b"
)


def asks_duration(question: str) -> bool:
    folded = fold(question)
    return _ASKS_DURATION.search(folded) is not None and _ASKS_HOURS.search(folded) is None


def states_duration(passage: str) -> bool:
    return _STATES_DURATION.search(fold(passage)) is not None


def stating_a_time_first(snippets: list[Snippet]) -> list[Snippet]:
    """``snippets`` for a question asking how long: those that state a time first (in
    their order), unless the first one does already."""
    if not snippets or states_duration(snippets[0].text):
        return snippets
    return sorted(snippets, key=lambda s: not states_duration(s.text))


#: What a question asks for: a price, a time, or nothing in particular (None).
Kind = Literal["price", "time"] | None


def asked_kind(question: str) -> Kind:
    """``"price"`` (:func:`asks_price`), else ``"time"`` (:func:`asks_duration`), else None."""
    if asks_price(question):
        return "price"
    return "time" if asks_duration(question) else None


def states_kind(kind: Kind, passage: str) -> bool:
    """Whether ``passage`` states what a question of ``kind`` asks for."""
    if kind == "price":
        return states_price(passage)
    return kind is None or states_duration(passage)


def of_the_kind(kind: Kind, snippets: list[Snippet]) -> list[Snippet]:
    """``snippets`` as a question (or part) of ``kind`` is answered from: only those that
    state a price when it asks one; those that state a time first when it asks how long."""
    if kind == "price":
        return [s for s in snippets if states_price(s.text)]
    return stating_a_time_first(snippets) if kind == "time" else snippets


def whole_asks_duration(question: str) -> bool:
    """:func:`asks_duration` for a whole question (see :func:`whole_asks_price`)."""
    return len(question_parts(question)) < 2 and asks_duration(question)


def asks_price(question: str) -> bool:
    return _ASKS_PRICE.search(fold(question)) is not None


def states_price(passage: str) -> bool:
    text = fold(passage)
    if _STATES_PRICE.search(text):
        return True
    return bool(_PRICE_HEADER.search(text) and _BARE_AMOUNT.search(text))


def whole_asks_price(question: str) -> bool:
    """:func:`asks_price` for a whole question. One in several parts ("¿cuánto sale el
    shampoo y cuánto tarda el envío?") is checked part by part (:meth:`nicobot.Agent.search`):
    as a whole it asks for nothing in particular."""
    return len(question_parts(question)) < 2 and asks_price(question)


def unused_reason(score: float, min_score: float, price_asked: bool, passage: str) -> str | None:
    """Why the bot does not answer from a passage: ``"min_score"`` (it scores under it),
    ``"no_price"`` (the question asks a price, ``price_asked``, and it states none), or None
    when it does."""
    if score < min_score:
        return "min_score"
    if price_asked and not states_price(passage):
        return "no_price"
    return None


@dataclass(frozen=True, slots=True)
class Topic:
    """A subject customers of any shop ask about, and the words documents file it under."""

    name: str
    asked: re.Pattern[str]  # on folded text
    words: Mapping[str, str]  # language -> the words added to the question


def _asked(*forms: str) -> re.Pattern[str]:
    return re.compile(r"\b(?:" + "|".join(forms) + r")(?!\w)")


#: The end of a question, or of one of its parts.
_END = r"\s*(?:[?!.,;]|$)"
_DAY = (
    r"(?:el |los |este |esta |en )?(?:lunes|martes|miercoles|jueves|viernes|sabados?"
    r"|domingos?|feriados?|finde|fin de semana|enero|febrero|verano|diciembre)"
)

#: Only forms that ask about the subject itself, in es (with voseo), pt and en: "¿dónde
#: quedan?" asks where the shop is, "¿dónde está mi pedido?" and "¿dónde está la fecha de
#: vencimiento?" do not; "¿abren los domingos?" asks the hours, "¿abren una sucursal?" does
#: not. A bare verb counts only at the end of the question or before a day or a time.
TOPICS: tuple[Topic, ...] = (
    Topic(
        "location",
        _asked(
            r"donde (?:queda|quedan|esta|estan|estas|se encuentra|se encuentran|los encuentro"
            rf"|los ubico)(?: ustedes| exactamente| el local| la tienda| el negocio)?{_END}",
            r"donde (?:tienen|es|queda|esta) el local|donde (?:estan|quedan) ubicad[oa]s"
            r"|(?:estan|esta) ubicad[oa]s",
            rf"(?:la |su |tu )?(?:direccion|ubicacion)(?: del local| de la tienda)?{_END}"
            r"|(?:direccion|ubicacion) (?:del local|de la tienda|del negocio)",
            r"where (?:are you|is (?:the|your) (?:shop|store|place))"
            r"|(?:your|the (?:shop|store)'?s?) address|what(?:'s| is) (?:the|your) address",
            rf"onde (?:fica|ficam|estao|voces (?:estao|ficam))(?: a loja| o local)?{_END}"
            rf"|onde fica a loja|(?:o )?endereco(?: da loja| do local)?{_END}"
            r"|endereco (?:da loja|do local)",
        ),
        {"es": "dirección, ubicación", "en": "address, location"},
    ),
    Topic(
        "opening hours",
        _asked(
            r"(?:a |hasta )?que hora (?:abren|abre|abris|cierran|cierra|cerras|atienden"
            r"|estan abiertos|hay gente)",
            r"horarios?(?! de (?:entrega|envios?|la moto|del correo|despacho))",
            rf"(?:abren|abris|abre|cierran|cerras|cierra|atienden)(?:{_END}"
            rf"| (?:hoy|manana|ahora|al mediodia|todos los dias|{_DAY}))"
            r"|(?:estan|esta) abiert[oa]s?",
            r"what time (?:do|does) (?:you|the (?:shop|store)) (?:open|close)"
            r"|(?:opening|store|business) hours|what are your hours"
            r"|(?:are|is) (?:you|the (?:shop|store)) open"
            r"|when (?:do|does) (?:you|the (?:shop|store)) (?:open|close)",
            r"que horas? (?:abre|abrem|fecha|fecham)|horario de funcionamento"
            r"|(?:abre|abrem|fecha|fecham) (?:hoje|amanha|(?:no|nos|aos|de) (?:sabados?"
            r"|domingos?|feriados?))",
        ),
        {"es": "horarios de atención", "en": "opening hours"},
    ),
    Topic(
        "payment",
        _asked(
            r"como (?:te |les |se )?(?:puedo |podes )?(?:pago|pagar|paga|abono)",
            r"(?:medios|formas) de pago|con que (?:puedo )?pag\w*",
            r"how (?:can|do) i pay|payment methods?|pay with",
            r"formas? de pagamento|como (?:eu )?(?:pago|posso pagar)",
        ),
        {"es": "formas de pago", "en": "payment methods"},
    ),
    Topic(
        "shipping",
        _asked(
            rf"(?<!me )(?<!te )(?:mandan|envian|despachan)(?:{_END}"
            r"| (?:a|al|para|hasta|por correo|a todo|por todo)\b)",
            r"hacen envios?",
            r"ship|ships|shipped|shipping|deliver|delivers|delivered|delivery",
            r"entregam|enviam|fazem entrega|frete",
        ),
        {"es": "envíos", "en": "shipping"},
    ),
    Topic(
        "returns",
        _asked(
            r"devolver(?:lo|la|los|las)?(?! (?:los |las )?(?:envases|frascos|latas))"
            r"|devolucion(?:es)?|devuelven (?:la plata|el dinero)|reembolso",
            r"cambiar(?:lo|la|los|las)\b"
            r"|(?:puedo|se puede|quiero|como|para|hasta cuando) (?:hacer un )?cambi(?:ar|o)"
            r"(?! (?:la |mi |de )?(?:direccion|contrasena|clave|mail|correo|telefono))"
            r"|hacer un cambio|cambios y devoluciones|politica de cambios?",
            r"return (?:it|this|them|a|an|my|the|products?|items?)|returns? policy|refund"
            r"|exchange (?:it|this|them|a|an|my|the)\b",
            r"devolucao|trocar|troca",
        ),
        {"es": "cambios y devoluciones", "en": "returns and exchanges"},
    ),
)


def asked_topics(question: str) -> list[Topic]:
    """The topics of :data:`TOPICS` that ``question`` asks about."""
    folded = fold(question)
    return [topic for topic in TOPICS if topic.asked.search(folded)]


def with_topic_words(question: str, language: str) -> str:
    """``question`` followed by the words documents in ``language`` file what it asks
    under: "¿dónde quedan? (dirección, ubicación)"."""
    words = [t.words[language] for t in asked_topics(question) if language in t.words]
    return f"{question} ({'; '.join(words)})" if words else question
