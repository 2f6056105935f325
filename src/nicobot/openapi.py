"""The OpenAPI description of nicobot's HTTP API, served at ``/openapi.json``.

A test checks that every ``/api`` route the app registers is described here.
"""

from __future__ import annotations

from typing import Any

from .version import __version__

JSON = "application/json"


def _ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


def _json(schema: dict[str, Any], description: str = "OK") -> dict[str, Any]:
    return {"description": description, "content": {JSON: {"schema": schema}}}


def _op(
    summary: str,
    ok: dict[str, Any] | None = None,
    *,
    body: dict[str, Any] | None = None,
    params: list[dict[str, Any]] | None = None,
    errors: tuple[int, ...] = (400, 401),
    public: bool = False,
    tag: str = "api",
    ok_status: int = 200,
) -> dict[str, Any]:
    responses: dict[str, Any] = {str(ok_status): ok or _json({"type": "object"})}
    for status in errors:
        responses[str(status)] = _json(_ref("Error"), ERROR_TEXT.get(status, "Error"))
    if 401 in errors:  # where credentials are checked, wrong ones are throttled per client
        responses["429"] = _json(_ref("Error"), ERROR_TEXT[429])
    operation: dict[str, Any] = {"summary": summary, "tags": [tag], "responses": responses}
    if body is not None:
        operation["requestBody"] = {"required": True, "content": {JSON: {"schema": body}}}
    if params:
        operation["parameters"] = params
    if public:
        operation["security"] = []
    return operation


ERROR_TEXT = {
    400: "Bad input",
    401: "Missing or wrong credentials",
    404: "Not found",
    409: "Not configured, or not possible now",
    413: "Too large",
    429: "Too many failed credentials from this client; see Retry-After",
    502: "The platform failed",
}


def _path(name: str, description: str) -> dict[str, Any]:
    return {
        "name": name,
        "in": "path",
        "required": True,
        "description": description,
        "schema": {"type": "string"},
    }


def _query(name: str, description: str, kind: str = "string") -> dict[str, Any]:
    return {
        "name": name,
        "in": "query",
        "required": False,
        "description": description,
        "schema": {"type": kind},
    }


SESSION_ID = _path("session_id", "The conversation's id.")
CHANNEL = _path("name", "The channel's name, such as whatsapp.")

SCHEMAS: dict[str, Any] = {
    "Error": {
        "type": "object",
        "required": ["error"],
        "properties": {"error": {"type": "string"}},
    },
    "Session": {
        "type": "object",
        "properties": {
            "id": {"type": "string"},
            "channel": {"type": "string"},
            "address": {"type": "string", "description": "Where replies go (phone or opaque id)."},
            "phone_number": {"type": "string", "nullable": True},
            "sender_name": {"type": "string", "nullable": True},
            "prompt_context": {"type": "string", "nullable": True},
            "created_at": {"type": "string", "format": "date-time"},
            "updated_at": {"type": "string", "format": "date-time"},
            "last_message": {"type": "string", "nullable": True},
            "last_message_at": {"type": "string", "format": "date-time", "nullable": True},
            "paused": {"type": "boolean"},
            "paused_until": {"type": "string", "format": "date-time", "nullable": True},
        },
    },
    "Message": {
        "type": "object",
        "properties": {
            "id": {"type": "integer"},
            "session_id": {"type": "string"},
            "role": {"type": "string", "enum": ["user", "assistant", "operator", "system"]},
            "text": {"type": "string"},
            "created_at": {"type": "string", "format": "date-time"},
            "meta": {
                "type": "object",
                "description": 'mode, sources used, errors; source "page" for a person\'s '
                "reply typed in the chat page.",
            },
            "delivery": {
                "allOf": [_ref("Delivery")],
                "nullable": True,
                "description": "For lines sent through a channel's outbox; null otherwise.",
            },
        },
    },
    "Delivery": {
        "type": "object",
        "required": ["status"],
        "properties": {
            "status": {"type": "string", "enum": ["queued", "sent", "failed"]},
            "error": {
                "type": "string",
                "nullable": True,
                "description": "Why it failed, or the last error while it is retried.",
            },
            "attempts": {"type": "integer"},
            "outbox_ids": {
                "type": "array",
                "items": {"type": "integer"},
                "description": "Entries to retry with POST /api/outbox/{entry_id}/retry.",
            },
            "sent_at": {"type": "string", "format": "date-time", "nullable": True},
        },
    },
    "OperatorReply": {
        "type": "object",
        "required": ["text"],
        "properties": {"text": {"type": "string", "minLength": 1, "maxLength": 4000}},
    },
    "Dashboard": {
        "type": "object",
        "properties": {
            "first_day": {"type": "string", "format": "date"},
            "last_day": {"type": "string", "format": "date"},
            "timezone": {"type": "string"},
            "messages": {"type": "integer"},
            "customer_messages": {"type": "integer"},
            "conversations": {"type": "integer"},
            "bot_replies": {"type": "integer"},
            "operator_replies": {"type": "integer"},
            "handoffs": {"type": "integer"},
            "failed_sends": {"type": "integer"},
            "llm_errors": {"type": "integer"},
            "median_reply_seconds": {"type": "number", "nullable": True},
            "days": {
                "type": "array",
                "items": {
                    "type": "object",
                    "properties": {
                        "day": {"type": "string", "format": "date"},
                        "messages": {"type": "integer"},
                        "customer_messages": {"type": "integer"},
                        "conversations": {"type": "integer"},
                    },
                },
            },
            "unanswered": {
                "type": "array",
                "items": {
                    "type": "object",
                    "properties": {
                        "text": {"type": "string"},
                        "count": {"type": "integer"},
                        "last_at": {"type": "string", "format": "date-time"},
                        "session_id": {"type": "string"},
                    },
                },
            },
        },
    },
    "ChannelStatus": {
        "type": "object",
        "properties": {
            "connected": {"type": "boolean"},
            "state": {"type": "string"},
            "details": {"type": "string"},
            "account": {"type": "string", "nullable": True},
            "qr": {"type": "string", "nullable": True, "description": "A PNG data URL."},
            "qr_code": {"type": "string", "nullable": True, "description": "The raw QR text."},
        },
    },
    "OutboxEntry": {
        "type": "object",
        "properties": {
            "id": {"type": "integer"},
            "session_id": {"type": "string"},
            "channel": {"type": "string"},
            "address": {"type": "string"},
            "text": {"type": "string"},
            "status": {"type": "string", "enum": ["pending", "sending", "sent", "failed"]},
            "attempts": {"type": "integer"},
            "last_error": {"type": "string", "nullable": True},
            "message_id": {
                "type": "integer",
                "nullable": True,
                "description": "The transcript line this entry delivers.",
            },
        },
    },
    "FailedTurn": {
        "type": "object",
        "properties": {
            "id": {"type": "integer"},
            "session_id": {"type": "string"},
            "channel": {"type": "string"},
            "address": {"type": "string"},
            "text": {"type": "string"},
            "attempts": {"type": "integer"},
            "last_error": {"type": "string", "nullable": True},
            "received_at": {"type": "string", "format": "date-time"},
            "failed_at": {"type": "string", "format": "date-time", "nullable": True},
        },
    },
    "Prompt": {
        "type": "object",
        "properties": {
            "name": {"type": "string"},
            "persona": {"type": "string"},
            "business": {"type": "string"},
            "system_prompt": {"type": "string"},
            "edited": {"type": "array", "items": {"type": "string"}},
        },
    },
    "ChatRequest": {
        "type": "object",
        "required": ["message"],
        "properties": {
            "message": {"type": "string", "maxLength": 4000},
            "phone_number": {"type": "string", "description": "Required without session_id."},
            "sender_name": {"type": "string"},
            "prompt_context": {"type": "string"},
            "session_id": {"type": "string", "description": "Continue a simulator session."},
        },
    },
    "ChatReply": {
        "type": "object",
        "properties": {
            "session_id": {"type": "string"},
            "reply": {"type": "string", "nullable": True},
            "mode": {"type": "string", "description": "llm, offline, apology, handoff, ..."},
            "duplicate": {"type": "boolean"},
        },
    },
}

PATHS: dict[str, Any] = {
    "/healthz": {"get": _op("Liveness", errors=(), public=True, tag="health")},
    "/readyz": {
        "get": _op(
            "Readiness: the store answers and the data folder's disk has room",
            errors=(),
            public=True,
            tag="health",
        )
    },
    "/metrics": {
        "get": _op(
            "Prometheus metrics",
            {
                "description": "Prometheus text format",
                "content": {"text/plain": {"schema": {"type": "string"}}},
            },
            errors=(401,),
            tag="health",
        )
    },
    "/api/sessions": {
        "get": _op(
            "List conversations, the most recent first",
            _json(
                {
                    "type": "object",
                    "properties": {"sessions": {"type": "array", "items": _ref("Session")}},
                }
            ),
            params=[
                _query("channel", "Only this channel."),
                _query(
                    "q",
                    "Search: contact name, number or any message text contains this "
                    "(case and accents ignored; at most 200 characters).",
                ),
                _query("limit", "At most this many.", "integer"),
                _query("offset", "Skip this many.", "integer"),
            ],
        )
    },
    "/api/sessions/{session_id}": {
        "get": _op(
            "A conversation and its messages",
            _json(
                {
                    "type": "object",
                    "properties": {
                        "session": _ref("Session"),
                        "messages": {"type": "array", "items": _ref("Message")},
                    },
                }
            ),
            params=[SESSION_ID],
            errors=(401, 404),
        ),
        "delete": _op("Delete a conversation", params=[SESSION_ID], errors=(401, 404)),
    },
    "/api/sessions/{session_id}/messages": {
        "post": _op(
            "Reply as a person: sent through the conversation's channel (outbox), and the "
            "bot pauses there for handoff_minutes",
            _json(
                {
                    "allOf": [
                        _ref("Message"),
                        {"type": "object", "properties": {"session": _ref("Session")}},
                    ]
                },
                "Stored and queued",
            ),
            body=_ref("OperatorReply"),
            params=[SESSION_ID],
            errors=(400, 401, 404, 409),
            ok_status=201,
        )
    },
    "/api/sessions/{session_id}/pause": {
        "post": _op(
            "Pause the bot in a conversation",
            _json(_ref("Session")),
            body={
                "type": "object",
                "properties": {
                    "minutes": {
                        "type": "number",
                        "minimum": 0,
                        "exclusiveMinimum": True,
                        "maximum": 527040,
                    }
                },
            },
            params=[SESSION_ID],
            errors=(400, 401, 404),
        )
    },
    "/api/sessions/{session_id}/resume": {
        "post": _op(
            "Resume the bot in a conversation",
            _json(_ref("Session")),
            params=[SESSION_ID],
            errors=(401, 404),
        )
    },
    "/api/chat": {
        "post": _op(
            "Simulator: write as a customer and wait for the reply",
            _json(_ref("ChatReply")),
            body=_ref("ChatRequest"),
            errors=(400, 401, 404),
        )
    },
    "/api/events": {
        "get": _op(
            "Live updates as server-sent events: change (new messages, delivery states, "
            "pauses, deletions; its id resumes the stream through Last-Event-ID or ?after=), "
            "channels (every channel's status when one changes), hello, reset",
            {
                "description": "An event stream",
                "content": {"text/event-stream": {"schema": {"type": "string"}}},
            },
            params=[_query("after", "Send the changes after this change id.", "integer")],
            errors=(401,),
        )
    },
    "/api/dashboard": {
        "get": _op(
            "The dashboard's figures for the last 7, 30 or 90 days in the bot's time zone",
            _json(_ref("Dashboard")),
            params=[_query("days", "7, 30 (default) or 90.", "integer")],
        )
    },
    "/api/export": {
        "get": _op(
            "Every conversation with its messages, as a JSON or CSV file",
            {
                "description": "A file (Content-Disposition: attachment)",
                "content": {
                    JSON: {"schema": {"type": "array", "items": {"type": "object"}}},
                    "text/csv": {"schema": {"type": "string"}},
                },
            },
            params=[
                _query("format", "json (default) or csv."),
                _query("channel", "Only this channel."),
            ],
        )
    },
    "/api/outbox": {
        "get": _op(
            "Deliveries, the newest first",
            _json(
                {
                    "type": "object",
                    "properties": {"outbox": {"type": "array", "items": _ref("OutboxEntry")}},
                }
            ),
            params=[
                _query("status", "pending, sending, sent or failed"),
                _query("limit", "At most this many.", "integer"),
            ],
        )
    },
    "/api/outbox/{entry_id}/retry": {
        "post": _op(
            "Queue a failed delivery again",
            params=[
                {"name": "entry_id", "in": "path", "required": True, "schema": {"type": "integer"}}
            ],
            errors=(401, 404),
        )
    },
    "/api/turns/failed": {
        "get": _op(
            "Customer messages that could not be answered after every attempt",
            _json(
                {
                    "type": "object",
                    "properties": {"turns": {"type": "array", "items": _ref("FailedTurn")}},
                }
            ),
            params=[_query("limit", "At most this many.", "integer")],
        )
    },
    "/api/turns/{entry_id}/retry": {
        "post": _op(
            "Answer a failed customer message again",
            params=[
                {"name": "entry_id", "in": "path", "required": True, "schema": {"type": "integer"}}
            ],
            errors=(401, 404),
        )
    },
    "/api/channels": {"get": _op("Every channel and its status")},
    "/api/channels/{name}/status": {
        "get": _op(
            "A channel's connection status",
            _json(_ref("ChannelStatus")),
            params=[CHANNEL],
            errors=(401, 404),
        )
    },
    "/api/channels/{name}/connect": {
        "post": _op(
            "Connect a channel (for WhatsApp: returns the QR to scan while pairing)",
            _json(_ref("ChannelStatus")),
            params=[CHANNEL],
            errors=(401, 404, 409, 502),
        )
    },
    "/api/channels/{name}/disconnect": {
        "post": _op(
            "Disconnect a channel",
            _json(_ref("ChannelStatus")),
            params=[CHANNEL],
            errors=(401, 404, 409, 502),
        )
    },
    "/api/prompt": {
        "get": _op("The persona and system prompt in use", _json(_ref("Prompt")), errors=(401,)),
        "put": _op(
            "Change the persona or system prompt",
            _json(_ref("Prompt")),
            body={
                "type": "object",
                "properties": {
                    k: {"type": "string", "nullable": True}
                    for k in ("name", "persona", "business", "system_prompt")
                },
            },
        ),
    },
    "/api/webhooks/{slug}": {
        "post": _op(
            "A platform's webhook (authenticated by its channel, e.g. slug evolution for WhatsApp)",
            params=[_path("slug", "The channel's webhook slug.")],
            errors=(401, 404),
            public=True,
            tag="webhooks",
        )
    },
    "/api/webhooks/{slug}/{subpath}": {
        "post": _op(
            "The same, with a secret path segment or an event suffix",
            params=[
                _path("slug", "The channel's webhook slug."),
                _path("subpath", "Anything after it."),
            ],
            errors=(401, 404),
            public=True,
            tag="webhooks",
        )
    },
    "/api/knowledge/documents": {
        "get": _op("Documents in the knowledge base"),
        "post": _op("Upload documents (multipart, field files)", errors=(400, 401, 413)),
    },
    "/api/knowledge/documents/{source}": {
        "delete": _op(
            "Remove a document",
            params=[_path("source", "The document's source path.")],
            errors=(401, 404),
        )
    },
    "/api/knowledge/reindex": {"post": _op("Re-index the knowledge folder")},
    "/api/knowledge/query": {
        "get": _op("What a question retrieves", params=[_query("q", "The question.")]),
        "post": _op(
            "What a question retrieves",
            body={"type": "object", "properties": {"q": {"type": "string"}}},
        ),
    },
}


def openapi_document() -> dict[str, Any]:
    return {
        "openapi": "3.0.3",
        "info": {
            "title": "nicobot",
            "version": __version__,
            "description": "Admin routes need `Authorization: Bearer <NICOBOT_ADMIN_PASSWORD>` "
            "(or the admin page's session cookie with its CSRF token). Errors are "
            '`{"error": "..."}` with a 4xx status.',
        },
        "components": {
            "schemas": SCHEMAS,
            "securitySchemes": {"admin": {"type": "http", "scheme": "bearer"}},
        },
        "security": [{"admin": []}],
        "paths": PATHS,
    }
