"""Builders for edition tests: a feeds.yaml in tmp_path and stories put straight into a store.

site = DigestSite.make(tmp_path, subscribers=..., base_url=...)
site.add_story("world", "Headline", lead=..., sources=3, at=...)  # 1 + 2 other feeds
site.full_edition(lead=LATIN_LEAD)   # every topic over its cap: the biggest edition
reports = site.build()               # pipeline.build_editions at site.clock
"""

from __future__ import annotations

import email
import email.policy
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from pathlib import Path

from aggregator import pipeline
from aggregator.clock import FrozenClock
from aggregator.config import Config, load_config
from aggregator.records import Item
from aggregator.store import Store

CUTOFF = datetime(2026, 11, 24, 7, 0, tzinfo=UTC)  # 07:00 in London: the daily's fire time
LEAD_CHARS = 400  # settings.lead_chars: leads are cut near here
HEADLINE_CHARS = 90  # a long headline
TOPICS = ["world", "business", "tech", "science", "health", "sport", "culture", "climate"]
FEEDS = [
    ("https://alpha.example/feed", "Alpha Daily"),
    ("https://beta.example/feed", "Beta Times"),
    ("https://gamma.example/feed", "Gamma Wire"),
    ("https://delta.example/feed", "Delta Herald"),
]
LATIN_LEAD = (
    "The council approved the plan on Tuesday after a long debate, officials said, and work "
    "is due to start next spring. Critics said the cost had doubled since the first estimate "
    "and that residents had not been asked. The mayor said the savings would pay for it "
    "within ten years, and that a second phase would follow if the first went well."
)
CYRILLIC_LEAD = (
    "Правительство во вторник представило новые меры по жилищному строительству, сообщили "
    "чиновники. Критики заявили, что стоимость программы удвоилась с момента первой оценки, "
    "а жителей никто не спросил. Мэр сказал, что экономия окупит расходы за десять лет, а "
    "вторая очередь последует, если первая пройдёт успешно."
)


def config_text(
    subscribers: str,
    *,
    base_url: str | None = None,
    digest_extra: str = "",
    sender: str = "Morning Brief <brief@example.org>",
    more_digests: str = "",
) -> str:
    topics = "\n".join(f"  {t}: {{title: {t.title()}}}" for t in TOPICS)
    feeds = "\n".join(f"  - url: {u}\n    name: {n}" for u, n in FEEDS)
    base = f"  base_url: {base_url}\n" if base_url else ""
    return f"""settings:
  timezone: Europe/London
  data_dir: data
  outbox: outbox
  from: "{sender}"
{base}topics:
{topics}
feeds:
{feeds}
digests:
  daily: {{schedule: "0 7 * * *", subject: "Morning Brief - {{date:%A %d %B}}"{digest_extra}}}
{more_digests}subscribers:
{subscribers}
"""


@dataclass
class DigestSite:
    dir: Path
    config: Config
    store: Store
    clock: FrozenClock
    _n: int = 0
    feed_ids: dict[str, int] = field(default_factory=dict)

    @classmethod
    def make(
        cls,
        tmp_path: Path,
        subscribers: str = "  - email: reader@example.org\n",
        **kw: object,
    ) -> DigestSite:
        tmp_path.mkdir(parents=True, exist_ok=True)
        path = tmp_path / "feeds.yaml"
        path.write_text(config_text(subscribers, **kw), encoding="utf-8")  # type: ignore[arg-type]
        config = load_config(path)
        store = pipeline.open_store(config)
        clock = FrozenClock(CUTOFF)
        store.sync_feeds(FEEDS, CUTOFF - timedelta(days=2))
        ids = {s.url: s.id for s in store.feed_states()}
        return cls(tmp_path, config, store, clock, feed_ids=ids)

    def close(self) -> None:
        self.store.close()

    def add_story(
        self,
        topic: str,
        title: str,
        *,
        lead: str = "",
        sources: int = 1,
        at: datetime | None = None,
        link: str | None = None,
        published: datetime | None = None,
    ) -> str:
        """One story told by ``sources`` feeds (same link), first seen ``at``; its link."""
        self._n += 1
        at = at or CUTOFF - timedelta(hours=1)
        link = link or (
            f"https://www.example-news-network.example/news/2026/11/24/{topic}/"
            f"council-approves-plan-after-long-debate-officials-say-{self._n}?ref=rss"
        )
        for url, _ in FEEDS[:sources]:
            item = Item(
                key=f"{self._n}-{url}",
                guid=f"{self._n}",
                link=link,
                title=title,
                title_generated=False,
                lead=lead,
                author=None,
                image_url=None,
                categories=(),
                published_at=published or at,
                content_hash=f"{self._n}",
            )
            self.store.upsert_items(self.feed_ids[url], [(item, topic)], at)
        return link

    def full_edition(self, lead: str, per_topic: int = 10) -> None:
        """More stories than the default caps take (8 per topic, 40 in all), each told by
        four feeds, with long headlines and leads: the biggest edition the defaults allow."""
        lead = (lead + " " + lead)[:LEAD_CHARS].rstrip() + "…"
        for t, topic in enumerate(TOPICS):
            for k in range(per_topic):
                when = CUTOFF - timedelta(hours=2, minutes=7 * k + t)
                title = f"{lead[:HEADLINE_CHARS].rstrip()} — {topic} {k}"
                self.add_story(topic, title, lead=lead, sources=4, at=when)

    def build(self, **kw: object) -> list[pipeline.EditionReport]:
        return pipeline.build_editions(self.config, self.store, self.clock, **kw)  # type: ignore[arg-type]

    def messages(self, state: str = "pending") -> dict[str, EditionMessage]:
        out = {}
        for path in sorted((self.dir / "outbox" / state).glob("*.eml")):
            msg = parse_eml(path.read_bytes())
            out[str(msg["To"])] = EditionMessage(path, msg)
        return out


@dataclass
class EditionMessage:
    path: Path
    msg: EmailMessage

    @property
    def html(self) -> str:
        return self.msg.get_body(("html",)).get_content()

    @property
    def text(self) -> str:
        return self.msg.get_body(("plain",)).get_content()


def parse_eml(data: bytes) -> EmailMessage:
    msg = email.message_from_bytes(data, policy=email.policy.default)
    assert isinstance(msg, EmailMessage)
    return msg
