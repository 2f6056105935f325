"""The inline webhook design (see README.md): check-then-insert dedup in SQLite, the agent
awaited inside the request, the reply sent, then 200. FastAPI on uvicorn."""

from __future__ import annotations

import argparse
import asyncio
import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import aiosqlite
import httpx
from fastapi import FastAPI, Request


def create_app(gateway: str, api_key: str, instance: str, latency: float, db_path: str) -> Any:
    state: dict[str, Any] = {}

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        db = await aiosqlite.connect(db_path)
        await db.execute("PRAGMA journal_mode = WAL")
        await db.execute("PRAGMA busy_timeout = 10000")
        await db.execute("CREATE TABLE IF NOT EXISTS seen (message_id TEXT PRIMARY KEY)")
        await db.commit()
        state["db"] = db
        state["client"] = httpx.AsyncClient(base_url=gateway, headers={"apikey": api_key})
        yield
        await state["client"].aclose()
        await db.close()

    app = FastAPI(lifespan=lifespan)

    async def agent(text: str) -> str:
        await asyncio.sleep(latency)  # the LLM, with no client cost at all
        return f"Echo: {text}"

    @app.post("/webhook")
    async def webhook(request: Request) -> dict[str, int]:
        body = await request.json()
        data = body.get("data") or {}
        key = data.get("key") or {}
        text = (data.get("message") or {}).get("conversation")
        if body.get("event") != "messages.upsert" or key.get("fromMe") or not text:
            return {"accepted": 0}
        db = state["db"]
        async with db.execute("SELECT 1 FROM seen WHERE message_id = ?", (key["id"],)) as cur:
            if await cur.fetchone() is not None:
                return {"duplicates": 1}
        await db.execute("INSERT OR IGNORE INTO seen (message_id) VALUES (?)", (key["id"],))
        await db.commit()
        reply = await agent(text)
        number = str(key["remoteJid"]).split("@")[0]
        answer = await state["client"].post(
            f"/message/sendText/{instance}", json={"number": number, "text": reply}
        )
        answer.raise_for_status()
        return {"accepted": 1}

    return app


def app_from_environment() -> Any:
    """uvicorn's factory for --workers N (settings from the environment)."""
    return create_app(
        os.environ["INLINE_GATEWAY"],
        os.environ["INLINE_API_KEY"],
        os.environ["INLINE_INSTANCE"],
        float(os.environ["INLINE_LATENCY"]),
        os.environ["INLINE_DB"],
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--gateway", required=True)
    parser.add_argument("--api-key", required=True)
    parser.add_argument("--instance", required=True)
    parser.add_argument("--latency", type=float, default=0.0, help="seconds")
    parser.add_argument("--db", required=True)
    parser.add_argument("--workers", type=int, default=1)
    args = parser.parse_args()
    import uvicorn

    os.environ.update(
        INLINE_GATEWAY=args.gateway,
        INLINE_API_KEY=args.api_key,
        INLINE_INSTANCE=args.instance,
        INLINE_LATENCY=str(args.latency),
        INLINE_DB=args.db,
    )
    # the options nicobot serve gives uvicorn
    uvicorn.run(
        "inline_app:app_from_environment",
        factory=True,
        app_dir=os.path.dirname(os.path.abspath(__file__)),
        host="127.0.0.1",
        port=args.port,
        workers=args.workers,
        lifespan="on",
        log_level="warning",
        access_log=False,
        log_config=None,
        timeout_graceful_shutdown=15,
    )


if __name__ == "__main__":
    main()
