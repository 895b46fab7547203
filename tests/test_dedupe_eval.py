"""Dedupe quality on the hand-labelled set in tests/data/dedupe/: precision first.

Every item of every file goes through one StoryIndex in published order, after the store's
rule (same canonical link -> same story, unless another item of the feed has it), as the
pipeline does. All item pairs are scored.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from ruamel.yaml import YAML

from aggregator.dedupe import StoryIndex
from aggregator.extract import canonical_link, headline

DATA = Path(__file__).parent / "data" / "dedupe"
T0 = datetime(2026, 11, 20, 6, 0, tzinfo=UTC)


@dataclass(frozen=True)
class LabelledItem:
    n: int
    family: str
    story: str  # family/story: the label
    feed: str
    title: str
    lead: str
    link: str | None
    published: datetime


def load_items() -> list[LabelledItem]:
    out: list[LabelledItem] = []
    yaml = YAML(typ="safe")
    for path in sorted(DATA.glob("*.yaml")):
        for family in yaml.load(path.read_text(encoding="utf-8")):
            at = T0
            for story in family["stories"]:
                for raw in story["items"]:
                    at = (
                        datetime.fromisoformat(raw["published"])
                        if "published" in raw
                        else at + timedelta(minutes=7)
                    )
                    out.append(
                        LabelledItem(
                            n=len(out),
                            family=f"{path.stem}/{family['family']}",
                            story=f"{path.stem}/{family['family']}/{story['id']}",
                            feed=raw["feed"],
                            title=headline(raw["title"], feed_name=raw["feed"]),
                            lead=raw.get("lead") or "",
                            link=canonical_link(raw.get("link")),
                            published=at,
                        )
                    )
    return out


def cluster(items: list[LabelledItem], index: StoryIndex) -> dict[int, int]:
    """item n -> story id, as store + pipeline would assign them."""
    by_link: dict[str, int] = {}
    story_of: dict[int, int] = {}
    next_story = 1
    held: set[tuple[str, str]] = set()  # (feed, link) of items seen
    for it in sorted(items, key=lambda i: (i.published, i.n)):
        # a link another item of the same feed has names a page, not a story: no link
        link = it.link if it.link and (it.feed, it.link) not in held else None
        story = by_link.get(link) if link else None
        if story is None:
            match = index.match(it.title, it.lead, at=it.published, source=it.feed)
            story = match.story_id if match else None
        if story is None:
            story, next_story = next_story, next_story + 1
        if link:
            by_link.setdefault(link, story)
        if it.link:
            held.add((it.feed, it.link))
        story_of[it.n] = story
        index.add(story, it.title, it.lead, at=it.published, item_id=it.n + 1, source=it.feed)
    return story_of


@dataclass
class Scores:
    positives: int
    hard_negatives: int
    easy_negatives: int
    tp: int
    fp: int
    fn: int
    fp_hard: int
    false_pairs: list[tuple[LabelledItem, LabelledItem]]
    missed_pairs: list[tuple[LabelledItem, LabelledItem]]

    @property
    def precision(self) -> float:
        return self.tp / (self.tp + self.fp) if self.tp + self.fp else 1.0

    @property
    def recall(self) -> float:
        return self.tp / (self.tp + self.fn) if self.tp + self.fn else 1.0


def score(items: list[LabelledItem], story_of: dict[int, int]) -> Scores:
    s = Scores(0, 0, 0, 0, 0, 0, 0, [], [])
    for a, b in itertools.combinations(items, 2):
        truth = a.story == b.story
        said = story_of[a.n] == story_of[b.n]
        if truth:
            s.positives += 1
        elif a.family == b.family:
            s.hard_negatives += 1
        else:
            s.easy_negatives += 1
        if truth and said:
            s.tp += 1
        elif said:
            s.fp += 1
            s.fp_hard += a.family == b.family
            s.false_pairs.append((a, b))
        elif truth:
            s.fn += 1
            s.missed_pairs.append((a, b))
    return s


def evaluate() -> Scores:
    items = load_items()
    return score(items, cluster(items, StoryIndex()))


def _show(pairs) -> str:
    return "\n".join(f"  {a.feed}: {a.title!r}\n  {b.feed}: {b.title!r}\n" for a, b in pairs)


@pytest.fixture(scope="module")
def scores() -> Scores:
    return evaluate()


def test_the_set_is_big_enough(scores):
    assert scores.positives + scores.hard_negatives >= 300
    assert scores.positives >= 100 and scores.hard_negatives >= 150


def test_precision_at_least_099(scores):
    assert scores.precision >= 0.99, "merged but different:\n" + _show(scores.false_pairs)
    assert scores.fp_hard <= 0.01 * scores.hard_negatives


def test_recall_at_least_095(scores):
    assert scores.recall >= 0.95, "missed:\n" + _show(scores.missed_pairs)


if __name__ == "__main__":  # figures for docs/design.md: python -m tests.test_dedupe_eval
    s = evaluate()
    print(
        f"pairs: {s.positives} positive, {s.hard_negatives} hard negative, "
        f"{s.easy_negatives} easy negative\n"
        f"tp={s.tp} fp={s.fp} (hard {s.fp_hard}) fn={s.fn}\n"
        f"precision={s.precision:.4f} recall={s.recall:.4f}"
    )
    print("false merges:\n" + _show(s.false_pairs))
    print("missed:\n" + _show(s.missed_pairs))
