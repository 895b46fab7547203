"""How well the shipped feeds.yaml topics and starter examples place news they were not tuned
on: the held-out labelled set in tests/data/topics/labelled.yaml (330 stories, cross-topic
cases included). `bench/topics_eval.py` prints the same figures."""

from __future__ import annotations

from pathlib import Path

import pytest

from aggregator.categorize import Rules
from aggregator.config import load_config
from aggregator.topicmodel import TopicModel, evaluate, load_examples

ROOT = Path(__file__).parent.parent
LABELLED = ROOT / "tests" / "data" / "topics" / "labelled.yaml"


@pytest.fixture(scope="module")
def shipped():
    config = load_config(ROOT / "feeds.yaml")
    keys = [t.key for t in config.topics]
    labelled = load_examples(LABELLED, keys)
    model = TopicModel.fit(load_examples(config.settings.topic_examples, keys))
    return Rules.from_config(config), labelled, model


def test_the_labelled_set_is_big_enough_and_covers_every_topic(shipped):
    rules, labelled, _ = shipped
    assert len(labelled) >= 300
    counts = {t.key: sum(e.topic == t.key for e in labelled) for t in rules.topics}
    assert min(counts.values()) >= 40, counts


def test_rules_alone(shipped):
    rules, labelled, _ = shipped
    result = evaluate(labelled, rules)
    print(f"rules alone: accuracy {result.accuracy:.1%}, fallback {result.fallback_share:.1%}")
    # Measured 81.8% / 11.5%: below the target, hence the learned layer. Guard against decay.
    assert result.accuracy >= 0.78
    assert result.fallback_share <= 0.15


def test_rules_and_model_reach_the_target(shipped):
    rules, labelled, model = shipped
    result = evaluate(labelled, rules, model)
    print(f"rules + model: accuracy {result.accuracy:.1%}, fallback {result.fallback_share:.1%}")
    assert result.accuracy >= 0.85
    assert result.fallback_share <= 0.10
