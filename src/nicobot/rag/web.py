"""The knowledge API under ``/api/knowledge``, for the admin's Knowledge tab.

- ``GET /api/knowledge/documents``: the documents, their chunks and when they changed.
- ``POST /api/knowledge/documents``: upload files (multipart field ``file``, one or more;
  .md, .txt, .html or .pdf, each up to ``[knowledge] max_upload_mb``, 10 MB by default),
  saved into the project's knowledge folder and ingested.
- ``DELETE /api/knowledge/documents/<source>``: remove a document (and its file in the
  knowledge folder).
- ``POST /api/knowledge/reindex``: embed everything again and sync the folder.
- ``GET|POST /api/knowledge/query``: ``q`` (and ``k``): what a question retrieves.

Every route needs the admin; bad input answers 4xx with ``{"error": "..."}``.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

from quart import Blueprint, current_app, jsonify, request
from werkzeug.utils import secure_filename

from ..answer_kind import (
    stating_a_time_first,
    unused_reason,
    whole_asks_duration,
    whole_asks_price,
)
from ..knowledge import Snippet
from ..web.auth import admin_required
from . import SUPPORTED_SUFFIXES
from .readers import UnreadableDocument, read_chunks

if TYPE_CHECKING:
    from ..bot import Bot
    from .chroma_store import ChromaKnowledgeBase

MAX_QUERY_CHARS = 2000
MAX_NAME_CHARS = 150  # file systems allow 255 bytes; the upload's temporary name adds more


class ApiError(Exception):
    def __init__(self, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.status = status


def knowledge_base() -> ChromaKnowledgeBase:
    from .chroma_store import ChromaKnowledgeBase

    bot: Bot = current_app.extensions["nicobot"]
    kb = bot.knowledge
    if not isinstance(kb, ChromaKnowledgeBase):
        raise ApiError("the chroma knowledge base is not in use (see [knowledge] backend)", 409)
    return kb


def document_dicts(documents: list[Any]) -> list[dict[str, Any]]:
    return [{"source": d.source, "chunks": d.chunks, "updated_at": d.updated_at} for d in documents]


def safe_name(filename: str | None) -> str:
    name = secure_filename(filename or "")
    suffix = Path(name).suffix.lower()
    if not name or not Path(name).stem:
        raise ApiError("the file needs a name")
    if suffix not in SUPPORTED_SUFFIXES:
        raise ApiError(f"{name[:60]}: unsupported file type (use .md, .txt, .html or .pdf)")
    if len(name.encode()) > MAX_NAME_CHARS:
        raise ApiError(f"{name[:60]}...: the file name is longer than {MAX_NAME_CHARS} characters")
    return Path(name).stem + suffix


def make_blueprint() -> Blueprint:
    blueprint = Blueprint("knowledge", __name__, url_prefix="/api/knowledge")

    @blueprint.errorhandler(ApiError)
    async def api_error(exc: ApiError) -> Any:
        return jsonify(error=str(exc)), exc.status

    @blueprint.get("/documents")
    @admin_required
    async def list_documents() -> Any:
        kb = knowledge_base()
        return jsonify(
            documents=document_dicts(await kb.documents()),
            chunks=await kb.count(),
            embedder=kb.embedder_name,
            folder=kb.knowledge_dir.name,
        )

    @blueprint.post("/documents")
    @admin_required
    async def upload_documents() -> Any:
        kb = knowledge_base()
        if request.mimetype != "multipart/form-data":
            raise ApiError("send the files as multipart/form-data in the field 'file'")
        uploads = (await request.files).getlist("file")
        if not uploads:
            raise ApiError("no file: send one or more in the field 'file'")
        limit = kb.options.max_upload_mb
        staged = [(safe_name(u.filename), _read_limited(u, limit)) for u in uploads]
        results, errors = [], []
        for name, data in staged:
            try:
                results.append(await _store_upload(kb, name, data))
            except UnreadableDocument as exc:
                errors.append({"source": name, "error": str(exc)})
        if errors and not results:
            message = "; ".join(f"{e['source']}: {e['error']}" for e in errors)
            return jsonify(error=message, errors=errors), 400
        return jsonify(documents=results, errors=errors), 201

    @blueprint.delete("/documents/<path:source>")
    @admin_required
    async def delete_document(source: str) -> Any:
        kb = knowledge_base()
        file = kb.file_of(source)
        if not await kb.delete(source):
            raise ApiError(f"no document {source!r}", 404)
        removed_file = False
        if file is not None and file.is_file() and _inside(file, kb.knowledge_dir):
            file.unlink()  # or the next sync of the folder would add it again
            removed_file = True
        return jsonify(deleted=source, file_removed=removed_file)

    @blueprint.post("/reindex")
    @admin_required
    async def reindex() -> Any:
        from .ingest import ingest_paths

        kb = knowledge_base()
        result = await kb.reindex()
        report = await ingest_paths(kb, [kb.knowledge_dir]) if kb.knowledge_dir.is_dir() else None
        return jsonify(
            message=result.message(),
            documents=result.documents,
            chunks=await kb.count(),
            failed=[{"source": s, "error": e} for s, e in result.failed],
            folder=report.to_dict() if report else None,
        )

    @blueprint.route("/query", methods=["GET", "POST"])
    @admin_required
    async def query() -> Any:
        kb = knowledge_base()
        params: dict[str, Any] = dict(request.args)
        if request.method == "POST":
            if request.is_json:
                body = await request.get_json(silent=True)
                if not isinstance(body, dict):
                    raise ApiError("the body must be a JSON object")
                params.update(body)
            else:
                params.update((await request.form).to_dict())
        text = params.get("q")
        if not isinstance(text, str) or not text.strip():
            raise ApiError("'q' is required: the question to search for")
        if len(text) > MAX_QUERY_CHARS:
            raise ApiError(f"'q' is longer than {MAX_QUERY_CHARS} characters")
        app_settings = current_app.extensions["nicobot"].settings
        settings = app_settings.knowledge
        k = _int(params.get("k"), settings.top_k)
        spelled_out = settings.search_text(text.strip())
        searched = settings.query_text(spelled_out, app_settings.bot.language)
        snippets = await kb.search(searched, k)
        if whole_asks_duration(spelled_out):
            snippets = stating_a_time_first(snippets)  # in the order the bot uses them
        price_asked = whole_asks_price(spelled_out)
        return jsonify(
            q=text.strip(),
            searched=searched,
            min_score=settings.min_score,
            snippets=[_shown(s, settings.min_score, price_asked) for s in snippets],
        )

    return blueprint


def _shown(snippet: Snippet, min_score: float, price_asked: bool) -> dict[str, Any]:
    """A snippet as the query API shows it: ``used`` by the bot, or why not (``not_used``,
    see :func:`nicobot.answer_kind.unused_reason`)."""
    reason = unused_reason(snippet.score, min_score, price_asked, snippet.text)
    return {**snippet.to_dict(), "used": reason is None, "not_used": reason}


def _int(value: Any, default: int) -> int:
    if value is None or value == "":
        return default
    try:
        number = int(value)
    except (TypeError, ValueError):
        raise ApiError("'k' must be a whole number") from None
    if not 1 <= number <= 50:
        raise ApiError("'k' must be between 1 and 50")
    return number


def _read_limited(upload: Any, megabytes: int) -> bytes:
    limit = megabytes * 1024 * 1024
    data: bytes = upload.stream.read(limit + 1)
    if len(data) > limit:
        raise ApiError(f"{upload.filename}: larger than {megabytes} MB", 413)
    if not data:
        raise ApiError(f"{upload.filename}: the file is empty")
    return data


def _inside(path: Path, folder: Path) -> bool:
    return path.resolve().is_relative_to(folder.resolve())


async def _store_upload(kb: ChromaKnowledgeBase, name: str, data: bytes) -> dict[str, Any]:
    """Check that the upload reads, then put it in the knowledge folder and ingest it; a
    file that cannot be read never replaces a good one."""
    import asyncio

    folder = kb.knowledge_dir
    try:
        folder.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=folder, prefix=".upload-", suffix=Path(name).suffix)
    except OSError as exc:
        raise ApiError(
            f"cannot write to the knowledge folder {folder}: {exc.strerror or exc}; "
            "make it writable for nicobot, or add files there and re-index",
            409,
        ) from None
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
        await asyncio.to_thread(
            read_chunks, Path(tmp), kb.options.chunk_size, kb.options.chunk_overlap
        )
        target = folder / name
        os.replace(tmp, target)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    result = await kb.ingest_file(target)
    return {"source": result.source, "status": result.status, "chunks": result.chunks}
