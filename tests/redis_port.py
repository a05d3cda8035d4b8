"""The Redis server the test suites use: 127.0.0.1 on ``REELSEARCH_TEST_REDIS_PORT`` (default 6379).

Two checkouts testing on one machine at once would flush each other's databases on the
shared server; each can start a private ``redis-server --port N`` and point its run there.
"""

from __future__ import annotations

import os

REDIS_HOST = "127.0.0.1"
REDIS_PORT = int(os.environ.get("REELSEARCH_TEST_REDIS_PORT", "6379"))


def redis_url(db: int) -> str:
    """The URL of database ``db`` on the test Redis server."""
    return f"redis://{REDIS_HOST}:{REDIS_PORT}/{db}"
