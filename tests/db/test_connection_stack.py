"""The read pool's connection stack: lends each connection to one taker at a time,
makes a taker wait for one to come back, and closes them all on dispose."""

from __future__ import annotations

import sqlite3
import threading
import time

import pytest

from reelsearch.db.engine import ConnectionStack, StackDisposed
from reelsearch.errors import CatalogError


def connections(n: int) -> list[sqlite3.Connection]:
    return [sqlite3.connect(":memory:", check_same_thread=False) for _ in range(n)]


def is_closed(conn: sqlite3.Connection) -> bool:
    try:
        conn.execute("SELECT 1")
    except sqlite3.ProgrammingError:
        return True
    return False


def test_lends_the_last_returned_first_and_each_to_one_taker() -> None:
    """Two connections, two takers: different ones; the one given back is lent next."""
    first, second = connections(2)
    stack = ConnectionStack([first, second], timeout=1)
    a, b = stack.take(), stack.take()
    assert (a is not b, stack.idle()) == (True, 0)
    stack.give_back(a)
    assert stack.take() is a


def test_a_taker_waits_for_a_connection_to_come_back() -> None:
    """With every connection lent, a taker gets the one given back by another thread."""
    [only] = connections(1)
    stack = ConnectionStack([only], timeout=5)
    lent = stack.take()
    threading.Timer(0.05, stack.give_back, (lent,)).start()
    started = time.monotonic()
    assert stack.take() is only
    assert time.monotonic() - started >= 0.04


def test_a_taker_gives_up_after_the_timeout() -> None:
    """No connection back within the timeout: a CatalogError naming it."""
    stack = ConnectionStack(connections(1), timeout=0.05)
    stack.take()
    with pytest.raises(CatalogError, match="within 0 s"):
        stack.take()


def test_dispose_closes_idle_connections_and_lent_ones_when_returned() -> None:
    """After dispose, idle connections are closed at once, a lent one when given back."""
    first, second = connections(2)
    stack = ConnectionStack([first, second], timeout=1)
    lent = stack.take()
    stack.dispose()
    idle = second if lent is first else first
    assert (is_closed(idle), is_closed(lent)) == (True, False)
    stack.give_back(lent)
    assert (is_closed(lent), stack.idle()) == (True, 0)


def test_a_waiting_taker_is_told_when_the_stack_is_disposed() -> None:
    """A taker waiting on a stack that is disposed (its file replaced) gets
    StackDisposed at once instead of waiting out the timeout."""
    stack = ConnectionStack(connections(1), timeout=10)
    stack.take()
    threading.Timer(0.05, stack.dispose).start()
    started = time.monotonic()
    with pytest.raises(StackDisposed):
        stack.take()
    assert time.monotonic() - started < 5
