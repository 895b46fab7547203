"""outbox: atomic files moving through pending/ -> sent/ | failed/, on a real tmp_path."""

from __future__ import annotations

import os
import re
from datetime import UTC, datetime

import pytest

from aggregator import outbox
from aggregator.errors import DeliveryError

MESSAGE = b"Subject: hi\r\n\r\nbody\r\n"


def all_files(root):
    return sorted(str(p.relative_to(root)) for p in root.rglob("*") if p.is_file())


def test_write_message_writes_atomically_and_leaves_no_temp_files(tmp_path):
    name = outbox.message_name("2026-11-24-daily", "ann@example.org")
    path = outbox.write_message(tmp_path, name, MESSAGE)
    assert path == tmp_path / "pending" / name
    assert path.read_bytes() == MESSAGE
    assert all_files(tmp_path) == [f"pending/{name}"]
    assert {p.name for p in tmp_path.iterdir()} == {"pending", "sent", "failed", "previews"}


def test_same_name_is_written_only_once(tmp_path):
    first = outbox.write_message(tmp_path, "m.eml", MESSAGE)
    again = outbox.write_message(tmp_path, "m.eml", b"something else")
    assert again == first
    assert first.read_bytes() == MESSAGE


def test_a_sent_message_is_not_queued_again(tmp_path):
    outbox.write_message(tmp_path, "m.eml", MESSAGE)
    sent = outbox.mark_sent(tmp_path, "m.eml")
    assert outbox.write_message(tmp_path, "m.eml", MESSAGE) == sent
    assert outbox.list_messages(tmp_path)["pending"] == []


def test_mark_sent_moves_the_file(tmp_path):
    outbox.write_message(tmp_path, "m.eml", MESSAGE)
    sent = outbox.mark_sent(tmp_path, "m.eml")
    assert sent == tmp_path / "sent" / "m.eml"
    assert sent.read_bytes() == MESSAGE
    assert not (tmp_path / "pending" / "m.eml").exists()
    assert outbox.mark_sent(tmp_path, "m.eml") == sent  # idempotent


def test_mark_sent_without_a_pending_message_is_a_delivery_error(tmp_path):
    with pytest.raises(DeliveryError, match="no pending message"):
        outbox.mark_sent(tmp_path, "ghost.eml")


def test_mark_failed_moves_the_file_and_records_why(tmp_path):
    outbox.write_message(tmp_path, "m.eml", MESSAGE)
    failed = outbox.mark_failed(tmp_path, "m.eml", "550 5.1.1 mailbox\nunknown")
    assert failed == tmp_path / "failed" / "m.eml"
    assert failed.read_bytes() == MESSAGE
    assert (tmp_path / "failed" / "m.eml.reason").read_text() == "550 5.1.1 mailbox unknown\n"
    assert outbox.failure_reason(tmp_path, "m.eml") == "550 5.1.1 mailbox unknown"
    assert outbox.list_messages(tmp_path)["failed"] == [failed]


def test_mark_failed_without_a_message_leaves_no_reason_behind(tmp_path):
    with pytest.raises(DeliveryError):
        outbox.mark_failed(tmp_path, "ghost.eml", "why")
    assert all_files(tmp_path) == []


def test_requeue_failed_moves_back_and_drops_the_reason(tmp_path):
    outbox.write_message(tmp_path, "m.eml", MESSAGE)
    outbox.mark_failed(tmp_path, "m.eml", "timeout")
    pending = outbox.requeue_failed(tmp_path, "m.eml")
    assert pending == tmp_path / "pending" / "m.eml"
    assert all_files(tmp_path) == ["pending/m.eml"]


def test_a_failed_message_can_be_queued_again_by_rerunning(tmp_path):
    outbox.write_message(tmp_path, "m.eml", MESSAGE)
    outbox.mark_failed(tmp_path, "m.eml", "timeout")
    assert outbox.write_message(tmp_path, "m.eml", MESSAGE) == tmp_path / "pending" / "m.eml"


def test_listing_counts_messages_per_state(tmp_path):
    for n in range(5):
        outbox.write_message(tmp_path, f"m{n}.eml", MESSAGE)
    outbox.mark_sent(tmp_path, "m0.eml")
    outbox.mark_sent(tmp_path, "m1.eml")
    outbox.mark_failed(tmp_path, "m2.eml", "nope")
    (tmp_path / "pending" / ".tmp-abandoned").write_bytes(b"half")
    (tmp_path / "sent" / ".tmp-abandoned").write_bytes(b"half")
    listing = outbox.list_messages(tmp_path)
    assert {state: len(paths) for state, paths in listing.items()} == {
        "pending": 2,
        "sent": 2,
        "failed": 1,
    }
    assert [p.name for p in listing["pending"]] == ["m3.eml", "m4.eml"]


def test_listing_an_outbox_that_does_not_exist_yet(tmp_path):
    assert outbox.list_messages(tmp_path / "none") == {"pending": [], "sent": [], "failed": []}


def test_clean_temp_removes_stale_temp_files_only(tmp_path):
    outbox.write_message(tmp_path, "m.eml", MESSAGE)
    stale = tmp_path / "pending" / ".tmp-crashed"
    stale.write_bytes(b"half a message")
    preview_stale = tmp_path / "previews" / ".tmp-x"
    preview_stale.write_bytes(b"<html")
    removed = outbox.clean_temp(tmp_path)
    assert sorted(removed) == sorted([stale, preview_stale])
    assert all_files(tmp_path) == ["pending/m.eml"]


def test_clean_temp_spares_temp_files_newer_than_the_cutoff(tmp_path):
    outbox.ensure_layout(tmp_path)
    old = tmp_path / "pending" / ".tmp-old"
    fresh = tmp_path / "pending" / ".tmp-fresh"
    for path, when in ((old, datetime(2026, 11, 24, 5, tzinfo=UTC)), (fresh, None)):
        path.write_bytes(b"x")
        if when is not None:
            os.utime(path, (when.timestamp(), when.timestamp()))
    removed = outbox.clean_temp(tmp_path, older_than=datetime(2026, 11, 24, 6, tzinfo=UTC))
    assert removed == [old]
    assert fresh.exists()


def test_failed_write_raises_delivery_error_and_leaves_no_temp_file(tmp_path, monkeypatch):
    outbox.ensure_layout(tmp_path)

    def broken_fsync(fd):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "fsync", broken_fsync)
    with pytest.raises(DeliveryError, match="No space left") as info:
        outbox.write_message(tmp_path, "m.eml", MESSAGE)
    assert isinstance(info.value.__cause__, OSError)
    assert all_files(tmp_path) == []


def test_message_name_is_deterministic_and_safe():
    name = outbox.message_name("2026-11-24-daily", "ann@example.org")
    assert name == outbox.message_name("2026-11-24-daily", " Ann@Example.org ")
    assert re.fullmatch(r"2026-11-24-daily--[0-9a-f]{12}\.eml", name)
    assert name != outbox.message_name("2026-11-24-daily", "bob@example.org")
    assert name != outbox.message_name("2026-11-25-daily", "ann@example.org")
    assert "ann" not in name


@pytest.mark.parametrize("key", ["../../etc/passwd", "daily/2026", "a:b", ".hidden", "", "x" * 400])
def test_odd_edition_keys_still_give_plain_distinct_file_names(key):
    name = outbox.message_name(key, "ann@example.org")
    assert re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._-]*\.eml", name)
    assert len(name) < 200
    assert name != outbox.message_name(key + "-", "ann@example.org")


def test_keys_that_clean_up_alike_do_not_collide():
    assert outbox.message_name("a:b", "x@y") != outbox.message_name("a-b", "x@y")


@pytest.mark.parametrize("name", ["", ".tmp-x", "../m.eml", "sub/m.eml", "m.eml.reason"])
def test_unsafe_names_are_refused(tmp_path, name):
    with pytest.raises(ValueError):
        outbox.write_message(tmp_path, name, MESSAGE)


def test_write_preview_replaces_the_previous_one(tmp_path):
    first = outbox.write_preview(tmp_path, "2026-11-24-daily", "<p>one</p>")
    second = outbox.write_preview(tmp_path, "2026-11-24-daily", "<p>twö</p>")
    assert first == second == tmp_path / "previews" / "2026-11-24-daily.html"
    assert second.read_text("utf-8") == "<p>twö</p>"
    assert all_files(tmp_path) == ["previews/2026-11-24-daily.html"]


def test_write_messages_writes_a_batch_and_skips_what_is_there(tmp_path):
    outbox.write_message(tmp_path, "old.eml", b"old")
    outbox.mark_sent(tmp_path, "old.eml")
    outbox.write_message(tmp_path, "waiting.eml", b"waiting")
    paths = outbox.write_messages(
        tmp_path,
        [("a.eml", b"A"), ("old.eml", b"new"), ("waiting.eml", b"new"), ("b.eml", b"B")],
    )
    assert paths == [
        tmp_path / "pending" / "a.eml",
        tmp_path / "sent" / "old.eml",
        tmp_path / "pending" / "waiting.eml",
        tmp_path / "pending" / "b.eml",
    ]
    assert [p.read_bytes() for p in paths] == [b"A", b"old", b"waiting", b"B"]
    assert all_files(tmp_path) == [
        "pending/a.eml",
        "pending/b.eml",
        "pending/waiting.eml",
        "sent/old.eml",
    ]


def test_write_messages_failure_is_a_delivery_error_and_leaves_nothing(tmp_path, monkeypatch):
    outbox.ensure_layout(tmp_path)

    def no_space(*args):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "sync", no_space)
    with pytest.raises(DeliveryError, match="No space left"):
        outbox.write_messages(tmp_path, [("a.eml", b"A"), ("b.eml", b"B")])
    assert all_files(tmp_path) == []


def test_write_messages_refuses_unsafe_names(tmp_path):
    with pytest.raises(ValueError):
        outbox.write_messages(tmp_path, [("a.eml", b"A"), ("../b.eml", b"B")])
    assert all_files(tmp_path) == []


def test_prune_deletes_old_sent_messages_and_previews_only(tmp_path):
    old, new = datetime(2026, 8, 1, tzinfo=UTC), datetime(2026, 11, 20, tzinfo=UTC)
    for name in ("old.eml", "new.eml", "stuck.eml", "bad.eml"):
        outbox.write_message(tmp_path, name, MESSAGE)
    outbox.mark_sent(tmp_path, "old.eml")
    outbox.mark_sent(tmp_path, "new.eml")
    outbox.mark_failed(tmp_path, "bad.eml", "550 no such user")
    outbox.write_preview(tmp_path, "2026-08-01-daily", "<p>old</p>")
    for path in tmp_path.rglob("*"):
        if path.is_file():
            stamp = (new if "new" in path.name else old).timestamp()
            os.utime(path, (stamp, stamp))
    assert outbox.prune(tmp_path, datetime(2026, 9, 1, tzinfo=UTC)) == 2
    assert all_files(tmp_path) == [
        "failed/bad.eml", "failed/bad.eml.reason", "pending/stuck.eml", "sent/new.eml"
    ]  # fmt: skip
    with pytest.raises(ValueError, match="timezone-aware"):
        outbox.prune(tmp_path, datetime(2026, 9, 1))
