"""The OpenAPI document describes exactly the routes the app serves."""

from __future__ import annotations

import re

API_PREFIXES = ("/api/", "/healthz", "/readyz", "/metrics")


def spec_path(rule: str) -> str:
    return re.sub(r"<(?:\w+:)?(\w+)>", r"{\1}", rule)


async def test_every_api_route_is_described(nicobot_app, nicobot_client):
    response = await nicobot_client.get("/openapi.json", headers={"Authorization": ""})
    assert response.status_code == 200
    document = await response.get_json()
    assert document["openapi"].startswith("3.")
    served: dict[str, set[str]] = {}
    for rule in nicobot_app.url_map.iter_rules():
        if rule.rule.startswith(API_PREFIXES):
            methods = {m.lower() for m in rule.methods - {"HEAD", "OPTIONS"}}
            served.setdefault(spec_path(rule.rule), set()).update(methods)
    described = {path: set(ops) for path, ops in document["paths"].items()}
    assert served == described
