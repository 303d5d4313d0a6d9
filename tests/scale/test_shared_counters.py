"""Rate limits hold across instances: two apps counting in one Redis (``RATE_LIMIT_STORAGE_URI``) allow a user
the limit once in all, not once per instance (which is what each process's own memory allows: with ``memory://``
this test fails, the fifth request answers 201)."""

from __future__ import annotations

from typing import Any

import httpx

from tests.support.live_server import MakeLiveServer
from tests.support.redis import RedisServer


def _create(client: httpx.Client, base_url: str) -> int:
    body: dict[str, Any] = {"file_name": "a.bin", "size": 10}
    return client.post(f"{base_url}/api/uploads", json=body).status_code


def test_one_limit_across_two_instances(make_live_server: MakeLiveServer, redis_server: RedisServer) -> None:
    allowed = 4
    a = make_live_server(rate_limit_storage_uri=redis_server.url, rate_limit_create=f"{allowed}/minute")
    b = make_live_server(rate_limit_storage_uri=redis_server.url, rate_limit_create=f"{allowed}/minute")
    with httpx.Client(timeout=30.0) as client:  # one cookie jar: the same user on both (cookies ignore ports)
        statuses = [_create(client, (a if n % 2 == 0 else b).base_url) for n in range(allowed + 1)]
    assert statuses == [201] * allowed + [429], "the user's limit counts requests to either instance"
