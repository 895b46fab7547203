"""Fixtures shared by the test suite."""

from __future__ import annotations

import gc
from collections.abc import Iterator
from datetime import UTC, datetime

import pytest

from aggregator.clock import FrozenClock
from tests.feedserver import FeedServer

FROZEN_NOW = datetime(2026, 11, 24, 6, 0, tzinfo=UTC)


@pytest.fixture
def feed_server() -> Iterator[FeedServer]:
    """A scripted HTTP server on 127.0.0.1 (random port), running in a thread."""
    with FeedServer() as server:
        yield server
    assert not server.threads_alive(), "the feed server left threads running"


@pytest.fixture
def clock() -> FrozenClock:
    """A clock standing still at 2026-11-24T06:00Z until the test moves it."""
    return FrozenClock(FROZEN_NOW)


TEST_SECRET = "test-secret-for-unsubscribe-tokens-0123456789"  # fixed: golden digests stay put


@pytest.fixture(autouse=True)
def _unsubscribe_secret(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every test signs unsubscribe tokens with one known key (AGGREGATOR_SECRET), so built
    messages are the same bytes on every run; a test that wants the key file unsets it."""
    monkeypatch.setenv("AGGREGATOR_SECRET", TEST_SECRET)
    monkeypatch.delenv("AGGREGATOR_SECRET_PREVIOUS", raising=False)
    monkeypatch.delenv("AGGREGATOR_EDITOR_PASSWORD", raising=False)


@pytest.fixture(autouse=True)
def _collector_as_it_was() -> Iterator[None]:
    """`fetch` and `run` set the cyclic GC for polling (cli._collect_for_polling): a test that
    runs them in this process gets the collector back as it was."""
    thresholds = gc.get_threshold()
    yield
    gc.unfreeze()
    gc.set_threshold(*thresholds)
