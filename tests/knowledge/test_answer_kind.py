"""Which questions ask a price and which passages state one, and the topics a question asks
about, as pure functions."""

from __future__ import annotations

import pytest

from nicobot.answer_kind import (
    asked_topics,
    asks_duration,
    asks_price,
    states_duration,
    states_price,
    unused_reason,
    whole_asks_price,
    with_topic_words,
)
from nicobot.config import KnowledgeSettings
from nicobot.question import search_text


@pytest.mark.parametrize(
    "question",
    [
        "cuánto sale el envío a Córdoba?",
        "que cuesta la vela de soja?",
        "precio del acondicionador",
        "How much is the vitamin C serum?",
        "what's the price of the kit?",
        "Quanto custa o sérum?",
        "cuánto es el envío?",
        "cuánto cobran el envío?",
        "cuál es el valor del envío?",
        "qual o valor do frete?",
        "how much does shipping cost?",
    ],
)
def test_questions_asking_a_price(question: str):
    assert asks_price(question)


@pytest.mark.parametrize(
    "question",
    [
        "a qué hora abren?",
        "cuánto tarda el envío?",
        "los precios incluyen IVA?",  # about prices in general
        "how much time does shipping take?",
        "hacen envíos a Córdoba?",
        "el precio incluye IVA?",
        "Does the price include VAT?",
        "por qué sale rechazada la tarjeta?",
        "lo que sale en la foto es de ustedes?",
        "How much does it weigh?",
        "quanto é o prazo de entrega?",
    ],
)
def test_questions_not_asking_a_price(question: str):
    assert not asks_price(question)


def test_passages_that_state_a_price_or_that_it_costs_nothing():
    assert states_price("| Vela de soja | $ 11.000 |")
    assert states_price("Cuesta 4500 pesos.")
    assert states_price("El envío es gratis desde $60.000.")
    assert states_price("Retiro sin cargo en el local.")
    assert states_price("Free shipping over 60,000.")
    for stated in ("ARS 4500", "USD 20", "U$S 20", "4500$", "5 mil pesos", "R$ 30", "20 reais"):
        assert states_price(stated), stated
    assert states_price("Envío bonificado.") and states_price("No tiene costo.")
    assert states_price("| Producto | Precio |\n| --- | --- |\n| Shampoo | 4.500 |")
    assert not states_price("Crema corporal de manteca de cacao (200 g).")
    assert not states_price("Precios en pesos argentinos, vigentes para el mes en curso.")
    assert not states_price("Abrimos de 10 a 19; hay 12 lugares por taller.")


def not_used(question: str, passage: str) -> str | None:
    """Why the bot would not answer ``question`` from ``passage``, scoring well."""
    return unused_reason(1.0, 0.0, whole_asks_price(question), passage)


def test_a_price_question_needs_a_passage_with_a_price():
    assert not_used("cuánto sale la crema?", "Crema corporal (200 g).") == "no_price"
    assert not_used("cuánto sale la crema?", "Crema corporal: $ 15.000") is None
    assert not_used("la crema es para piel seca?", "Crema corporal (200 g).") is None


def test_a_question_in_several_parts_is_not_held_to_one_kind_as_a_whole():
    question = "cuánto sale el shampoo? y cuánto tarda el envío?"
    assert not_used(question, "Entrega en 2 a 4 días hábiles.") is None
    assert not_used("cuánto sale el shampoo?", "Entrega en 2 a 4 días hábiles.") == "no_price"


@pytest.mark.parametrize(
    "question",
    [
        "hasta cuándo tengo para cambiarla?",
        "¿Hasta cuándo la puede usar mi amiga?",
        "cuánto tarda el envío?",
        "cuanto dura el shampoo abierto",
        "en cuánto tiempo me reintegran?",
        "cuántos días tengo para devolverlo?",
        "how long does delivery take?",
        "how much time does shipping take?",
        "Quanto tempo demora o reembolso?",
        "quanto é o prazo de entrega?",
        "cuándo me llega?",
        "cuánto se demora?",
        "cuánto dura el shampoo una vez abierto?",
        "¿cuánto es el plazo para cambiarlo?",
        "when will my order arrive?",
        "quando chega?",
    ],
)
def test_questions_asking_how_long(question: str):
    assert asks_duration(question)


@pytest.mark.parametrize(
    "question",
    [
        "hasta cuándo abren hoy?",
        "a qué hora abren?",
        "cuánto sale el envío?",
        "cuántos lavados rinde?",
        # when the shop opens, or until what time of day
        "cuántas horas abren los sábados?",
        "how many days a week are you open?",
        "hasta cuándo puedo retirar hoy?",
        "cuál es el plazo de pago?",
    ],
)
def test_questions_not_asking_how_long(question: str):
    assert not asks_duration(question)


def test_asking_for_a_time_limit_is_not_asking_a_price():
    assert not asks_price("¿cuánto es el plazo para cambiarlo?")
    assert asks_price("¿cuánto es el envío?")


def test_passages_that_state_a_time():
    for stated in (
        "Tenés 30 días corridos desde que recibiste el pedido.",
        "La moto entrega en 24 a 48 horas.",
        "La gift card vale seis meses.",
        "Los shampoos sólidos duran un año.",
        "Llega en 2 a 4 días hábiles.",
        "Si comprás antes de las 13, te llega en el día.",
        "Delivery takes 3 to 5 days.",
        "Delivery takes 3-5 business days.",
        "La moto entrega en 48hs.",
        "Envío en 24/48 hs.",
    ):
        assert states_duration(stated), stated
    assert not states_duration("De lunes a sábado de 9:00 a 21:00.")
    assert not states_duration("Atendemos de 9 a 18 hs.")
    assert not states_duration("Crema corporal de manteca de cacao (200 g).")
    assert not states_duration("Envíos a todo el país por correo.")


@pytest.mark.parametrize(
    ("question", "topic"),
    [
        ("donde quedan?", "location"),
        ("dnd quedan?", "location"),  # chat shorthand, as the agent spells it out first
        ("¿Dónde están ubicados?", "location"),
        ("cual es la direccion del local", "location"),
        ("where are you located?", "location"),
        ("Where is the shop?", "location"),
        ("onde fica a loja?", "location"),
        ("a q hora abren", "opening hours"),
        ("¿Hasta qué hora atienden hoy?", "opening hours"),
        ("Hi, are you open on Sundays?", "opening hours"),
        ("what time do you close?", "opening hours"),
        ("que horas abre a loja?", "opening hours"),
        ("como les puedo pagar", "payment"),
        ("¿Cómo te pago?", "payment"),
        ("what payment methods do you take?", "payment"),
        ("mandan a españa?", "shipping"),
        ("Do you ship to Uruguay?", "shipping"),
        ("Vocês entregam no Brasil?", "shipping"),
        ("¿Me lo podés devolver?", "returns"),
        ("can I get a refund?", "returns"),
        ("ubicacion?", "location"),
        ("onde vocês ficam?", "location"),
        ("cerrás hoy?", "opening hours"),
        ("abren los domingos?", "opening hours"),
        ("what are your hours?", "opening hours"),
        ("me devuelven la plata?", "returns"),
        ("me regalaron una crema, hasta cuando tengo para cambiarla?", "returns"),
    ],
)
def test_questions_about_what_every_shop_is_asked(question: str, topic: str):
    assert [t.name for t in asked_topics(search_text(question))] == [topic]


@pytest.mark.parametrize(
    "question",
    [
        # near misses: the words of a topic, about something else
        "dónde veo la fecha de vencimiento?",
        "donde esta mi pedido?",
        "donde se encuentra la fecha de vencimiento",
        "a que direccion mando el comprobante?",
        "cambio de dirección de envío",
        "my email address",
        "abren una sucursal nueva?",
        "abren el paquete?",
        "what time does the package arrive?",
        "hasta que hora tengo que comprar para que salga en el dia?",
        "me mandan el catálogo?",
        "me dan cambio de 1000?",
        "como cambio mi contraseña",
        "exchange rate?",
        "descuento por devolver envases vacios",
        "tienen sucursal en córdoba o rosario?",
        "aceptan cripto?",
        "cuánto sale el shampoo?",
        "la crema es para piel seca?",
        "hola!",
    ],
)
def test_questions_about_other_things_ask_no_topic(question: str):
    assert asked_topics(question) == []
    assert with_topic_words(question, "es") == question


def test_topic_words_are_added_in_the_bots_language():
    assert with_topic_words("donde quedan?", "es") == "donde quedan? (dirección, ubicación)"
    assert with_topic_words("where are you?", "en") == "where are you? (address, location)"
    assert with_topic_words("a que hora abren y como les pago?", "es") == (
        "a que hora abren y como les pago? (horarios de atención; formas de pago)"
    )


def test_the_knowledge_settings_add_topic_words_unless_turned_off():
    assert KnowledgeSettings().query_text("donde quedan?", "es").endswith("(dirección, ubicación)")
    assert KnowledgeSettings(topic_words=False).query_text("donde quedan?", "es") == (
        "donde quedan?"
    )
