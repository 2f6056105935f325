"""Calibrated relevance: one score scale for every embedder.

An embedder's raw cosine means little on its own: for the lexical ``hashing`` embedder 0.1
is a weak match, for ``e5`` 0.8 is noise. Each embedder declares a :class:`Calibration`,
measured on the tuning question set (``benchmarks/questions/tuning.json``), that maps its
raw score onto one scale where :data:`BOUNDARY` (0.2, the default ``[knowledge] min_score``)
is the point that separated passages that answer from questions the documents do not
answer, and 1.0 a match as strong as the best answers. ``min_score`` therefore means the
same thing whichever embedder runs.

A semantic embedder ranks paraphrases well but gives an unrelated question a confident
score too; the words a question shares with a passage tell those apart. For such an
embedder the score is hybrid: the dense cosine plus ``lexical_weight`` times the lexical
(hashing) cosine of the question and the passage. Passages are ranked by the dense cosine
plus the smaller ``rank_lexical_weight`` times the lexical one: the meaning decides the
order, the shared words mostly decide whether the best passage answers at all. A passage
whose dense cosine alone clears ``dense_boundary`` is trusted whatever words it shares (a
paraphrase: "¿a qué hora abren?" for a list of opening hours).

Among passages the meaning finds equally close, the one that names what the question is
about should come first: for "¿Hacen envíos a Córdoba?" every shipping passage says
"envíos", only one says "Córdoba". :func:`coverage` measures how much of a question's
distinctive words a passage contains (words shared by every candidate count little), and
``rank_coverage_weight`` adds it to the ranking key. It does not change the score.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from . import hashing

#: The calibrated score at an embedder's measured boundary between answer and no answer.
BOUNDARY = 0.2


@dataclass(frozen=True, slots=True)
class Calibration:
    zero: float  # raw score mapped to 0
    boundary: float  # raw score mapped to BOUNDARY
    full: float  # raw score mapped to 1
    lexical_weight: float = 0.0
    rank_lexical_weight: float = 0.0
    rank_coverage_weight: float = 0.0
    dense_boundary: float | None = None  # dense cosine mapped to BOUNDARY on its own
    dense_full: float = 1.0  # dense cosine mapped to 1 on its own

    @property
    def hybrid(self) -> bool:
        return self.lexical_weight > 0 or self.rank_lexical_weight > 0

    def raw(self, dense: float, lexical: float = 0.0) -> float:
        return dense + self.lexical_weight * lexical

    def rank(self, dense: float, lexical: float = 0.0, coverage: float = 0.0) -> float:
        """The key passages are ordered by, best first."""
        return dense + self.rank_lexical_weight * lexical + self.rank_coverage_weight * coverage

    def score(self, dense: float, lexical: float = 0.0) -> float:
        """The calibrated score, in [0, 1], of a dense (and lexical) cosine."""
        value = _piecewise(self.raw(dense, lexical), self.zero, self.boundary, self.full)
        if self.dense_boundary is not None:
            alone = _piecewise(dense, self.zero, self.dense_boundary, self.dense_full)
            value = max(value, alone)
        return value


def coverage(
    question: npt.NDArray[np.float32], passages: npt.NDArray[np.float32]
) -> npt.NDArray[np.float64]:
    """For each passage (a row of lexical vectors), the share in [0, 1] of the question's
    lexical features it contains, each feature weighted by how few of ``passages`` contain
    it: 1 for a passage holding every word the question shares with only some of them."""
    count = len(passages)
    if count == 0:
        return np.zeros(0)
    present = (passages * question) > 0  # the same hashed feature, with the same sign
    rarity = np.log((count + 1) / (present.sum(axis=0) + 0.5))
    weights = (question.astype(np.float64) * rarity) ** 2
    weights[: hashing.RESERVED_SLOTS] = 0.0  # the constant and the empty-text components
    total = float(weights.sum())
    if total <= 0.0:
        return np.zeros(count)
    shares: npt.NDArray[np.float64] = (present @ weights) / total
    return shares


def _piecewise(raw: float, zero: float, boundary: float, full: float) -> float:
    """``zero`` -> 0, ``boundary`` -> BOUNDARY, ``full`` -> 1, linear in between."""
    if raw <= boundary:
        value = BOUNDARY * (raw - zero) / (boundary - zero)
    else:
        value = BOUNDARY + (1 - BOUNDARY) * (raw - boundary) / (full - boundary)
    return max(0.0, min(1.0, value))


#: Scores used as they are (hashing was calibrated in its own features; see hashing.py).
IDENTITY = Calibration(zero=0.0, boundary=BOUNDARY, full=1.0)


#: Verbs any shop question carries ("¿venden maquillaje?", "do you sell...?", "vocês
#: fazem...?"): a passage that shares only one of them with the question shares nothing it
#: is about, so they never count as lexical evidence (the dense score alone must carry it).
GENERIC_WORDS = frozenset(
    """
    venden vende vendes vendemos venta ventas hacen hace haces ofrecen ofrece ofreces
    trabajan manejan consigo consiguen sell sells selling sold offer offers carry stock
    vendem oferecem fazem faz tem voces
    """.split()  # noqa: SIM905
)
_TOKEN = re.compile(r"[a-z0-9]+")


def lexical_question(text: str) -> str:
    """The part of a question its lexical score is measured on: folded, without the generic
    verbs of :data:`GENERIC_WORDS` and one-letter tokens (the "s" of "what's")."""
    tokens = _TOKEN.findall(hashing.fold(text))
    return " ".join(t for t in tokens if len(t) > 1 and t not in GENERIC_WORDS)
