"""Trivial endpoints served by uvicorn exactly as ``nicobot serve`` serves nicobot (one
worker, the same ``uvicorn.Config`` options), to measure the stack under nicobot.

- ``--kind quart``: a Quart app with one POST route that reads the body and answers
  ``{"ok": true}`` (the framework's floor);
- ``--kind asgi``: the same answer from a bare ASGI callable (uvicorn's floor, used to
  find the load generator's ceiling).

    python benchmarks/_trivial.py --kind quart --port 8500
"""

from __future__ import annotations

import argparse
from typing import Any

OK = b'{"ok": true}'


async def bare_app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    if scope["type"] == "lifespan":
        while True:
            event = await receive()
            await send({"type": event["type"] + ".complete"})
            if event["type"] == "lifespan.shutdown":
                return
    more = True
    while more:
        more = (await receive()).get("more_body", False)
    headers = [(b"content-type", b"application/json"), (b"content-length", b"12")]
    await send({"type": "http.response.start", "status": 200, "headers": headers})
    await send({"type": "http.response.body", "body": OK})


def quart_app() -> Any:
    from quart import Quart, jsonify, request

    app = Quart("trivial")

    @app.post("/hook")
    async def hook() -> Any:
        await request.get_data(cache=False)
        return jsonify(ok=True)

    return app


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--kind", choices=["quart", "asgi"], required=True)
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args()
    import uvicorn

    app = quart_app() if args.kind == "quart" else bare_app
    # the options of nicobot.cli.serve, with its default --log-level info
    config = uvicorn.Config(
        app,
        host="127.0.0.1",
        port=args.port,
        lifespan="on",
        log_level="info",
        access_log=False,
        log_config=None,
        timeout_graceful_shutdown=15,
    )
    uvicorn.Server(config).run()


if __name__ == "__main__":
    main()
