"""A lexical embedder that needs no model: hashed words and character n-grams.

Text is lowercased and its accents folded ("envío" and "envio" are the same word), stop
words are dropped and plurals trimmed; each remaining word adds a word feature and its
character 3- to 5-grams, which still match when a customer misspells a word. Features are
hashed into a fixed number of dimensions with a sign bit (so collisions cancel out rather
than pile up) and the vector is L2-normalised, so cosine similarity is a dot product.
Deterministic across processes and platforms (``zlib.crc32``), numpy only.

Calibration: every vector with content also gets a constant component (``BIAS``), which
maps the raw lexical cosine ``c`` to ``(c + BIAS**2) / (1 + BIAS**2)``: ranking is
unchanged, and the core's default ``min_score`` of 0.2 falls at a raw cosine of about 0.1,
the point that separated answering chunks from unrelated questions on the evaluation set
(``benchmarks/knowledge_eval.py``). Text without content words (``"hola"``) gets a vector
orthogonal to every other, so it matches nothing.
"""

from __future__ import annotations

import functools
import itertools
import math
import re
import unicodedata
import zlib
from collections import Counter
from collections.abc import Iterable, Sequence

import numpy as np
import numpy.typing as npt

DEFAULT_DIM = 4096
#: Bump when the features change, so that stored vectors are rebuilt.
VERSION = 1

NGRAM_SIZES = (3, 4, 5)
WORD_WEIGHT = 1.0
NGRAM_WEIGHT = 0.8
BIGRAM_WEIGHT = 0.35
BIAS = 0.35
_BIAS_SLOT = 0  # the constant component
_EMPTY_SLOT = 1  # the whole vector of a text without content words
RESERVED_SLOTS = 2  # the two above

_WORD = re.compile(r"[a-z0-9]+")

# Spanish and English function words: they match everywhere and mean nothing.
STOP_WORDS = frozenset(
    """
    a al algo algun alguna alguno algunos ante antes aqui asi aun cada como con contra cual
    cuales cuando de del desde donde dos e el ella ellas ellos en entre era es esa ese eso
    esta estan estas este esto estos fue ha hay hasta la las le les lo los mas me mi mis
    mucho muy nada ni no nos o os otra otro para pero poco por porque que quien se sea segun
    ser si sin sobre son su sus tambien te tengo tiene tienen ti tu tus u un una uno unos
    unas usted ustedes vos y ya yo hola buenas buen dia dias quiero queria saber puedo
    pueden podes necesito tenes cuanto cuanta cuantos cuantas hago hacer gracias favor an
    and are as at be but by can could do does for from has have how i if in into is it its
    me my of on or our so than that the their them then there these they this to was we were
    what when where which who why will with would you your hi hello please
    """.split()  # noqa: SIM905
)


#: Texts up to this long (a question, a passage) are folded once and remembered, the
#: FOLD_CACHE_SIZE most recent (some 8 MiB at most): a turn folds its question several
#: times (parts, topics, prices), and the same passages come back question after question.
FOLD_CACHE_CHARS = 2048
FOLD_CACHE_SIZE = 2048


def fold(text: str) -> str:
    """Lowercase and strip accents: ``"Envíos Ñandú"`` becomes ``"envios nandu"``."""
    return _remembered_fold(text) if len(text) <= FOLD_CACHE_CHARS else _fold(text)


def _fold(text: str) -> str:
    decomposed = unicodedata.normalize("NFKD", text.lower())
    return "".join(ch for ch in decomposed if not unicodedata.combining(ch))


_remembered_fold = functools.lru_cache(maxsize=FOLD_CACHE_SIZE)(_fold)


def stem(word: str) -> str:
    """Trim plurals, a crude but safe step for Spanish and English.

    "envios" -> "envio", "devoluciones" -> "devolucion", "luces" -> "luz", "paquetes" -> "paquete".
    """
    if len(word) <= 3 or not word.endswith("s") or word.endswith("ss"):
        return word
    if len(word) > 4 and word.endswith("ces"):
        return word[:-3] + "z"
    if len(word) > 4 and word.endswith("es") and word[-3] in "nrldjy":
        return word[:-2]
    return word[:-1]


def words(text: str) -> list[str]:
    """The content words of ``text``, folded and stemmed, in order."""
    return [stem(w) for w in _WORD.findall(fold(text)) if w not in STOP_WORDS]


def _slot(feature: str, dim: int) -> tuple[int, float]:
    value = zlib.crc32(feature.encode())
    return RESERVED_SLOTS + value % (dim - RESERVED_SLOTS), (1.0 if (value >> 31) & 1 else -1.0)


#: Each cached word holds about 3 KB of slots: 8192 words stay under 25 MiB (65536 could
#: grow the server by some 240 MiB over a long run).
WORD_CACHE_SIZE = 8192


@functools.lru_cache(maxsize=WORD_CACHE_SIZE)
def _word_features(word: str, dim: int) -> tuple[tuple[int, float], ...]:
    """Hashed slots and weights of one word: itself and its character n-grams."""
    index, sign = _slot("w:" + word, dim)
    slots = [(index, sign * WORD_WEIGHT)]
    padded = f"<{word}>"
    grams = [padded[i : i + n] for n in NGRAM_SIZES for i in range(len(padded) - n + 1)]
    if grams:
        weight = NGRAM_WEIGHT / math.sqrt(len(grams))
        for gram in grams:
            index, sign = _slot("g:" + gram, dim)
            slots.append((index, sign * weight))
    return tuple(slots)


def embed_one(text: str, dim: int = DEFAULT_DIM) -> npt.NDArray[np.float32]:
    """One L2-normalised vector of ``dim`` dimensions."""
    vector = np.zeros(dim, dtype=np.float32)
    tokens = words(text)
    if not tokens:
        vector[_EMPTY_SLOT] = 1.0
        return vector
    counts = Counter(tokens)
    for word, count in counts.items():
        tf = 1.0 + math.log(count)
        for index, weight in _word_features(word, dim):
            vector[index] += weight * tf
    for (first, second), count in Counter(itertools.pairwise(tokens)).items():
        index, sign = _slot(f"b:{first}_{second}", dim)
        vector[index] += sign * BIGRAM_WEIGHT * (1.0 + math.log(count))
    norm = float(np.linalg.norm(vector))
    if norm == 0:  # every feature cancelled out: vanishingly rare
        vector[_EMPTY_SLOT] = 1.0
        return vector
    vector *= 1.0 / norm
    vector[_BIAS_SLOT] = BIAS
    vector *= 1.0 / float(np.linalg.norm(vector))
    return vector


def embed(texts: Iterable[str], dim: int = DEFAULT_DIM) -> list[npt.NDArray[np.float32]]:
    return [embed_one(text, dim) for text in texts]


def cosine(a: Sequence[float], b: Sequence[float]) -> float:
    return float(np.dot(np.asarray(a), np.asarray(b)))
