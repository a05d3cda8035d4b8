"""What the tests that start reelsearch as a child process share: a loopback port
that is free, and an environment without the caller's ``REELSEARCH_*`` settings
(a developer's exported catalog or cache setting must not reach the child; the
service refuses unknown ones)."""

from __future__ import annotations

import os
import socket


def free_port() -> int:
    """A loopback TCP port that was free a moment ago."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def environ_without_settings(**settings: str) -> dict[str, str]:
    """This process's environment less every ``REELSEARCH_*`` variable, plus ``settings``."""
    environ = {k: v for k, v in os.environ.items() if not k.startswith("REELSEARCH_")}
    environ.update(settings)
    return environ
