"""Records as they cross processes: a parse worker's results are pickled to the writer."""

from __future__ import annotations

import dataclasses
import pickle
from datetime import UTC, datetime
from multiprocessing.reduction import ForkingPickler

from aggregator.pipeline import ParsedBody
from aggregator.records import Item, TopicLabel


def _every_field_set() -> tuple[Item, TopicLabel]:
    item = Item(
        key="k",
        guid="g",
        link="https://a.example/1",
        title="Grain ship docks in Odesa",
        title_generated=True,
        lead="The first ship in months.",
        author="A. Writer",
        image_url="https://a.example/1.jpg",
        categories=("world", "ports"),
        published_at=datetime(2026, 11, 24, 6, 0, 0, 1, tzinfo=UTC),
        content_hash="c",
        source="Reuters",
        entry_hash="e",
        archived=True,
    )
    label = TopicLabel("world", {"world": 0.9, "terms": ["grain"]}, True, "block: 'x'")
    return item, label


def test_items_and_labels_cross_to_the_writing_process_with_every_field_kept():
    item, label = _every_field_set()
    for record in (item, label):  # none left empty or at its default: a field lost shows
        for f in dataclasses.fields(record):
            assert getattr(record, f.name) not in (None, False, (), {}, f.default), f.name
    body = ParsedBody(((item, label),), "Feed", 30, "a note", None, (b"\x01" * 8,))
    back = pickle.loads(ForkingPickler.dumps(body))
    assert back == body
    [(item_back, label_back)] = back.items
    assert type(item_back) is Item and type(label_back) is TopicLabel
    assert label_back.evidence == {"world": 0.9, "terms": ["grain"]}
