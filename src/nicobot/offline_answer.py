"""The reply offline, with no LLM: the passages that answer, trimmed to what answers.

The best passage is cut to the sentences, list items or table rows that share the most with
the question (a table keeps its header row); a passage that is short already, or where no
line stands out, is kept whole. A question in several parts ("¿cuánto sale el envío y a
qué hora abren?") also gets the best passage of another document, when retrieval found one
(:meth:`nicobot.Agent.search` searches each part too).

A long table is indexed as groups of rows, each under the table's header; the groups that
retrieval found for one question are quoted as one table again, in the document's order,
so that "pasame la lista de precios" gets the list rather than two pieces of it.

Chat apps show no tables: a quoted table's rows become list items, "- Shampoo sólido (80 g):
$ 9.800", with the header's names before the values of any third column and on.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace

import numpy as np

from .knowledge import Snippet
from .rag import hashing
from .rag.chunking import is_table, is_table_rule, table_cells

#: A runner-up passage is quoted too when it scores at least this much...
RUNNER_UP_MIN_SCORE = 0.4
#: ...and at least this share of the best passage's score.
RUNNER_UP_RATIO = 0.5
#: A passage this short is quoted whole.
SHORT_PASSAGE = 220
#: At most this many lines of a passage are kept.
MAX_LINES = 3
#: Lines scoring at least this share of the best line are kept with it.
KEEP_RATIO = 0.6
#: The best line must share at least this much with the question to trim around it.
MIN_LINE_SCORE = 0.25
#: The longest quote of a passage no line stands out in.
MAX_QUOTE = 600

_PART_SPLIT = re.compile(r"\?|;|\s(?:y|e|and|tambi[eé]n|tmb|adem[aá]s|also)\s", re.IGNORECASE)
_SENTENCE = re.compile(r"(?<=[.!?])\s+(?=[A-ZÁÉÍÓÚÑ¿¡0-9])")


@dataclass(frozen=True, slots=True)
class Line:
    text: str
    table: bool


def question_parts(question: str) -> list[str]:
    """The parts of a question that asks several things, each with content words."""
    return [p.strip() for p in _PART_SPLIT.split(question) if hashing.words(p)]


def join_table_parts(snippets: list[Snippet]) -> list[Snippet]:
    """``snippets`` with the row groups of each table (same document, heading and header)
    joined into one passage, at the place of the first of them: the header once, the rows
    in the document's order, none twice."""
    keys = [_table_key(snippet) for snippet in snippets]
    parts: dict[tuple[str, str | None, str], list[Snippet]] = {}
    for snippet, key in zip(snippets, keys, strict=True):
        if key is not None:
            parts.setdefault(key, []).append(snippet)
    joined: list[Snippet] = []
    done: set[tuple[str, str | None, str]] = set()
    for snippet, key in zip(snippets, keys, strict=True):
        if key is None or len(parts[key]) < 2:
            joined.append(snippet)
        elif key not in done:
            done.add(key)
            joined.append(_joined(parts[key]))
    return joined


def _table_key(snippet: Snippet) -> tuple[str, str | None, str] | None:
    """What identifies the table a passage is a row group of; None for other passages."""
    lines = snippet.text.strip().split("\n")
    if not is_table(lines) or not is_table_rule(lines[1]):
        return None
    return (snippet.source, snippet.heading, lines[0].strip())


def _joined(parts: list[Snippet]) -> Snippet:
    first = parts[0]
    header = first.text.strip().split("\n")[:2]
    rows: dict[str, None] = {}
    for part in sorted(parts, key=_chunk_index):
        rows.update(dict.fromkeys(line.strip() for line in part.text.strip().split("\n")[2:]))
    return replace(first, text="\n".join([*header, *rows]), score=max(p.score for p in parts))


def _chunk_index(snippet: Snippet) -> int:
    """The passage's place in its document (the number after ``#`` in its chunk id)."""
    index = (snippet.chunk_id or "").rpartition("#")[2]
    return int(index) if index.isdigit() else 0


def pick_passages(question: str, snippets: list[Snippet]) -> list[Snippet]:
    """The best snippet, and a second one: for a question in several parts the first one
    after it from another document (the agent puts each part's best passage right after
    the best); otherwise the runner-up when it is nearly as sure to answer (when the best
    one is wrong, the right one is most often second)."""
    if not snippets:
        return []
    best, rest = snippets[0], snippets[1:]
    if len(question_parts(question)) >= 2:
        other = next((s for s in rest if s.source != best.source), None)
        if other is not None:
            return [best, other]
    runner_up = rest[0] if rest else None
    if (
        runner_up is not None
        and runner_up.score >= RUNNER_UP_MIN_SCORE
        and runner_up.score >= RUNNER_UP_RATIO * best.score
    ):
        return [best, runner_up]
    return [best]


def _lines(text: str) -> list[Line]:
    lines: list[Line] = []
    for raw in text.split("\n"):
        line = raw.strip()
        if not line or is_table_rule(line):
            continue
        if line.startswith("|"):
            lines.append(Line(line, table=True))
        elif line.startswith(("- ", "* ", "+ ")) or re.match(r"\d+[.)]\s", line):
            lines.append(Line(line, table=False))
        else:
            lines.extend(Line(s.strip(), table=False) for s in _SENTENCE.split(line) if s.strip())
    return lines


def trim(question: str, snippet: Snippet) -> str:
    """The part of ``snippet`` that answers ``question``."""
    text = snippet.text.strip()
    lines = _lines(text)
    header = lines[0] if len(lines) > 2 and all(line.table for line in lines) else None
    body = lines[1:] if header else lines
    if len(body) <= 1 or (header is None and len(text) <= SHORT_PASSAGE):
        return text  # a table's rows are facts of their own: it is trimmed however short
    asked = hashing.embed_one(question)
    scores = [float(asked @ hashing.embed_one(line.text)) for line in body]
    top = max(scores)
    if top < MIN_LINE_SCORE:
        return text if len(text) <= MAX_QUOTE else _cut(text, MAX_QUOTE)
    order = np.argsort(scores)[::-1][:MAX_LINES]
    keep = sorted(int(i) for i in order if scores[int(i)] >= KEEP_RATIO * top)
    chosen = ([header] if header else []) + [body[i] for i in keep]
    return "\n".join(line.text for line in chosen)


def _cut(text: str, limit: int) -> str:
    cut = text[:limit]
    end = max(cut.rfind(". "), cut.rfind("\n"))
    return (cut[: end + 1] if end > limit // 2 else cut.rstrip()) + " …"


def rows_as_items(text: str) -> str:
    """``text`` with each Markdown table written as list items: a row's first cell, then
    its other cells (each after its column's name from the second on); prose as it is."""
    out: list[str] = []
    columns: list[str] | None = None
    for line in text.split("\n"):
        if not line.strip().startswith("|"):
            columns = None
            out.append(line)
        elif is_table_rule(line):
            continue
        elif columns is None:
            columns = table_cells(line)
        else:
            out.append(_item(columns, table_cells(line)))
    return "\n".join(out)


def _item(columns: list[str], cells: list[str]) -> str:
    first, *values = cells
    named = [
        value if i == 0 or not name else f"{name} {value}"
        for i, (name, value) in enumerate(zip(columns[1:], values, strict=False))
        if value
    ]
    return f"- {first}: {'; '.join(named)}" if named else f"- {first}"


def compose(question: str, snippets: list[Snippet]) -> tuple[str, list[Snippet]]:
    """The quoted text of an offline reply and the snippets it quotes."""
    chosen = pick_passages(question, join_table_parts(snippets))
    return "\n\n".join(rows_as_items(trim(question, s)) for s in chosen), chosen
