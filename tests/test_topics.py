"""Topics editors tune: config keys, the examples file and its model, the store's evidence and
filtered items, recategorising on change, and the `explain` / `topics` / `recategorize`
commands, end to end over real HTTP and SQLite."""

from __future__ import annotations

import json
import sqlite3
from datetime import timedelta
from pathlib import Path
from types import SimpleNamespace

import pytest
from click.testing import CliRunner

from aggregator import topicmodel
from aggregator.cli import cli
from aggregator.config import (
    FallbackTopic,
    FilterRule,
    Filters,
    dump_config,
    load_config,
)
from aggregator.errors import ConfigError
from aggregator.records import TopicLabel
from aggregator.store import SCHEMA_VERSION, Store
from aggregator.topicmodel import Example, TopicModel, load_examples, model_for

DATA = Path(__file__).parent / "data"


def write(folder: Path, text: str, name: str = "feeds.yaml") -> Path:
    path = folder / name
    path.write_text(text, encoding="utf-8")
    return path


def problems(path: Path) -> list[str]:
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    return [str(p).removeprefix(f"{path}:") for p in caught.value.problems]


# -- config ---------------------------------------------------------------------------------


def test_filters_fallback_and_model_settings_load_and_dump_back(tmp_path):
    write(tmp_path, "world: [Ukraine and Russia agree talks]\n", "topic-examples.yaml")
    path = write(
        tmp_path,
        """settings:
  fallback_topic: {key: other, title: Other stories}
  topic_threshold: 1.5
  topic_model_weight: 2
topics:
  world: {keywords: [ukraine]}
filters:
  block:
    - sponsored
    - {pattern: "/promo/", in: link}
  keep: [{words: [climate, energy], in: [headline, author]}]
feeds:
  - url: https://x.example/rss
    filters: {block: [{words: [advert]}]}
digests:
  daily: {schedule: "0 7 * * *", topics: [world, other]}
""",
    )
    config = load_config(path)
    s = config.settings
    assert s.fallback_topic == FallbackTopic("other", "Other stories")
    assert (s.topic_threshold, s.topic_model_weight) == (1.5, 2.0)
    assert s.topic_examples == tmp_path / "topic-examples.yaml"  # found beside feeds.yaml
    assert config.filters == Filters(
        block=(
            FilterRule(words=("sponsored",)),
            FilterRule(pattern="/promo/", fields=("link",)),
        ),
        keep=(FilterRule(words=("climate", "energy"), fields=("headline", "author")),),
    )
    assert config.feeds[0].filters == Filters(block=(FilterRule(words=("advert",)),))
    assert config.digests[0].topics == ("world", "other")
    dumped = write(tmp_path, dump_config(config), "dumped.yaml")
    assert load_config(dumped).filters == config.filters
    assert load_config(dumped).settings == config.settings


def test_bad_filters_and_fallback_are_reported_with_lines(tmp_path):
    path = write(
        tmp_path,
        """settings:
  fallback_topic: {key: world}
  topic_examples: missing.yaml
  topic_model_weight: -1
topics:
  world: {keywords: [ukraine]}
filters:
  block:
    - {in: link}
    - {pattern: "(unclosed", in: headline}
    - {words: [x], in: [body]}
  keepp: []
feeds:
  - url: https://x.example/rss
    filters: {keep: sponsored}
""",
    )
    assert problems(path) == [
        "2:25: settings.fallback_topic.key: 'world' is already a topic: the fallback topic"
        " needs a name of its own",
        f"3:19: settings.topic_examples: no such file: {tmp_path / 'missing.yaml'}",
        "4:23: settings.topic_model_weight: must be zero or more, got -1",
        "9:7: filters.block[0]: a filter rule needs 'words' or 'pattern' (or write the word alone)",
        "10:17: filters.block[1].pattern: invalid regular expression '(unclosed': missing ),"
        " unterminated subpattern at position 0",
        "11:25: filters.block[2].in[0]: unknown field 'body' (expected one of: headline, lead,"
        " link, author)",
        "12:3: filters.keepp: unknown key 'keepp' (did you mean 'keep'?)",
        "15:21: feeds[0].filters.keep: expected a list, got the text 'sponsored'"
        " (write [sponsored])",
    ]


def test_no_examples_file_means_no_model(tmp_path):
    config = load_config(write(tmp_path, "feeds: []\n"))
    assert config.settings.topic_examples is None


# -- the examples file and the model ---------------------------------------------------------


def test_examples_file_problems_name_file_line_and_key(tmp_path):
    path = write(
        tmp_path,
        """world:
  - headline: Talks resume
    lead: Envoys met.
  - Plain headline
  - {lead: no headline}
  - {headline: x, body: y}
wrld: [x]
sport: 7
""",
        "ex.yaml",
    )
    with pytest.raises(ConfigError) as caught:
        load_examples(path, ["world", "sport"])
    assert [str(p).removeprefix(f"{path}:") for p in caught.value.problems] == [
        "5:5: world[2].headline: a headline (text) is required",
        "6:19: world[3].body: unknown key 'body' (use headline, lead)",
        "7:1: wrld: unknown topic 'wrld' (did you mean 'world'?)",
        "8:1: sport: expected a list of examples",
    ]


def test_shipped_examples_load_cover_every_shipped_topic_and_fit_fast():
    config = load_config(Path(__file__).parent.parent / "feeds.yaml")
    keys = [t.key for t in config.topics]
    examples = load_examples(config.settings.topic_examples, keys)
    assert {e.topic for e in examples} == set(keys)
    assert all(sum(e.topic == k for e in examples) >= 40 for k in keys)
    model = TopicModel.fit(examples)
    assert model is not None and set(model.topics) == set(keys)
    [p] = model.probabilities([("Striker scores twice as City win the derby", "")])
    assert max(p, key=p.get) == "sport"
    terms = model.top_terms("Striker scores twice as City win the derby", "", "sport", 3)
    assert terms and all(weight > 0 for _, weight in terms)
    assert "striker" in {t for t, _ in terms}


def test_model_is_cached_by_file_hash_and_relearned_when_the_file_changes(tmp_path):
    path = write(
        tmp_path,
        "world: [Ceasefire talks resume, Envoy visits capital]\n"
        "sport: [Striker scores winner, Champion retains title]\n",
        "ex.yaml",
    )
    first = model_for(path, ["world", "sport"])
    assert first is not None and first.examples == 4
    assert model_for(path, ["world", "sport"]) is first
    path.write_text(path.read_text(encoding="utf-8"), encoding="utf-8")
    assert model_for(path, ["world", "sport"]) is first  # same bytes, same model
    path.write_text(path.read_text() + "  # a comment changes the bytes\n", encoding="utf-8")
    second = model_for(path, ["world", "sport"])
    assert second is not first and second.key == topicmodel.file_key(path)


def test_a_single_topic_of_examples_gives_no_model():
    assert TopicModel.fit([Example("a", "", "world"), Example("b", "", "world")]) is None


def test_starter_examples_and_the_labelled_set_do_not_share_stories():
    root = Path(__file__).parent.parent
    keys = ["world", "business", "technology", "science", "health", "sport"]
    starter = {e.headline.casefold() for e in load_examples(root / "topic-examples.yaml", keys)}
    labelled = {
        e.headline.casefold() for e in load_examples(DATA / "topics" / "labelled.yaml", keys)
    }
    assert not starter & labelled


# -- the store ------------------------------------------------------------------------------


def test_a_version_1_database_file_migrates_and_keeps_its_items(tmp_path):
    path = tmp_path / "old.sqlite3"
    con = sqlite3.connect(path)
    con.executescript((DATA / "store" / "v1.sql").read_text(encoding="utf-8"))
    con.close()
    store = Store.open(f"sqlite:///{path}")
    try:
        assert store.version() == SCHEMA_VERSION
        old = {it.id: it for it in store.items()}
        assert (old[1].topic, old[1].filtered, old[1].topic_evidence) == ("world", False, {})
        store.relabel_items(
            [(2, TopicLabel("more", {"fallback": True}, True, "blocked: 'sponsored'"))]
        )
        again = store.item(2)
        assert (again.filtered, again.filter_reason, again.topic_evidence) == (
            True,
            "blocked: 'sponsored'",
            {"fallback": True},
        )
        store.set_meta("k", "v1")
        store.set_meta("k", "v2")
        assert store.get_meta("k") == "v2" and store.get_meta("other") is None
    finally:
        store.close()
    # Opening it again changes nothing.
    assert Store.open(f"sqlite:///{path}").version() == SCHEMA_VERSION


# -- end to end -----------------------------------------------------------------------------

FEED = """<?xml version="1.0" encoding="utf-8"?>
<rss version="2.0"><channel><title>Daily Wire</title><link>https://wire.example/</link>
<item><title>Striker scores twice as City beat United in derby</title>
  <link>https://wire.example/derby</link><guid>1</guid><category>Business</category>
  <pubDate>Tue, 24 Nov 2026 04:00:00 GMT</pubDate>
  <description>The forward's goals settled the match at the Etihad.</description></item>
<item><title>Sponsored: the ten best winter breaks</title>
  <link>https://wire.example/promo/winter</link><guid>2</guid>
  <pubDate>Tue, 24 Nov 2026 04:10:00 GMT</pubDate>
  <description>Brought to you by our travel partner.</description></item>
<item><title>Parliament votes on new electoral law</title>
  <link>https://wire.example/vote</link><guid>3</guid><category>World News</category>
  <pubDate>Tue, 24 Nov 2026 04:20:00 GMT</pubDate>
  <description>The opposition walked out before the vote.</description></item>
<item><title>Town fair draws record crowds</title>
  <link>https://wire.example/fair</link><guid>4</guid>
  <pubDate>Tue, 24 Nov 2026 04:30:00 GMT</pubDate>
  <description>Stalls sold cakes and jam to visitors from the valley.</description></item>
</channel></rss>
"""

EXAMPLES = """world:
  - headline: Ceasefire talks resume in the capital
    lead: Envoys from both sides met mediators.
  - headline: Opposition leader detained before rally
business:
  - headline: Shares fall as profits slide
  - headline: Central bank holds interest rates
sport:
  - headline: Striker scores late winner in derby
    lead: The forward struck in stoppage time.
  - headline: Champion retains title after final
"""


def site_config(server, topics_extra: str = "", filters: str = "") -> str:
    return f"""settings:
  timezone: Europe/London
  from: "Brief <brief@example.org>"
topics:
  world: {{keywords: [election, parliament], aliases: [World News]}}
  business: {{keywords: [shares, profits{topics_extra}]}}
  sport: {{keywords: [football]}}
{filters}
feeds:
  - url: {server.url("/wire.xml")}
    name: Daily Wire
digests:
  daily: {{schedule: "0 7 * * *"}}
subscribers:
  - email: reader@example.org
"""


SPONSOR_FILTER = """filters:
  block:
    - sponsored
    - {pattern: "/promo/", in: link}
"""


@pytest.fixture
def site(feed_server, tmp_path, clock):
    feed_server.route("/wire.xml", FEED)
    config = write(tmp_path, site_config(feed_server, filters=SPONSOR_FILTER))
    write(tmp_path, EXAMPLES, "topic-examples.yaml")
    runner = CliRunner()

    def run(*args: str, ok: bool = True):
        result = runner.invoke(
            cli, ["--config", str(config), *args], obj=SimpleNamespace(clock=clock)
        )
        if ok:
            assert result.exit_code == 0, (result.output, result.exception)
        return result

    def items():
        return {i["headline"]: i for i in json.loads(run("items", "--json").output)["items"]}

    return SimpleNamespace(
        server=feed_server, config=config, run=run, items=items, clock=clock, dir=tmp_path
    )


def test_fetch_places_items_keeps_evidence_and_marks_filtered_ones(site):
    site.run("fetch")
    items = site.items()
    derby = items["Striker scores twice as City beat United in derby"]
    # The feed said "Business": no alias maps it, and the model knows a derby is sport.
    assert derby["topic"] == "sport" and not derby["filtered"]
    vote = items["Parliament votes on new electoral law"]
    assert vote["topic"] == "world"
    promo = items["Sponsored: the ten best winter breaks"]
    assert promo["filtered"] is True
    assert promo["filter_reason"] == "blocked by global rule: 'sponsored' in headline"
    fair = items["Town fair draws record crowds"]
    assert fair["topic"] == "more"


def test_filtered_items_never_reach_an_edition(site):
    site.run("fetch")
    out = site.run("digest").output
    assert "reader@example.org: 3 stories" in out
    [eml] = (site.dir / "outbox" / "pending").glob("*.eml")
    text = eml.read_text(encoding="utf-8", errors="replace")
    assert "winter breaks" not in text
    assert "More news" in text  # the fallback section still works


def test_explain_shows_scores_matches_model_terms_and_filters(site):
    site.run("fetch")
    items = site.items()
    vote = items["Parliament votes on new electoral law"]
    doc = json.loads(site.run("explain", str(vote["id"]), "--json").output)
    topic = doc["topic"]
    assert (topic["stored"], topic["now"], topic["delivered"]) == ("world", "world", False)
    world = next(s for s in topic["scores"] if s["topic"] == "world")
    assert world["matches"] == ["headline:parliament", "category:World News"]
    assert world["rules"] == 3.5 and world["model"] > 0
    assert set(topic["model"]["top_terms"]) <= {"world", "business", "sport"}
    assert topic["evidence"]["topic"] == "world"  # stored when it was placed
    assert doc["filters"] == {"filtered": False, "reason": None, "now": False, "checks": []}
    assert "story" in doc and "item" in doc  # the other sections stay
    text = site.run("explain", str(vote["id"])).output
    assert "headline:parliament, category:World News" in text
    assert "model (6 examples, weight 4):" in text
    # Every topic is named, the ones that scored nothing on one line after the others.
    assert "  scored 0 (no rule matched, no model points): business, sport\n" in text
    derby = items["Striker scores twice as City beat United in derby"]
    text = site.run("explain", str(derby["id"])).output
    assert text.index("  sport ") < text.index("  scored 0 (no rule matched, no model points): ")
    assert "  scored 0 (no rule matched, no model points): world, business\n" in text
    promo = items["Sponsored: the ten best winter breaks"]
    text = site.run("explain", str(promo["id"])).output
    assert "filtered: blocked by global rule: 'sponsored' in headline" in text
    assert "global block rule [/" in text and "matched '/promo/' in link" in text


def test_topics_report_counts_and_lists_the_words_that_fell_through(site):
    site.run("fetch")
    report = json.loads(site.run("topics", "--since", "7d", "--json").output)
    assert (report["items"], report["filtered"], report["fallback"]) == (4, 1, "more")
    counts = {row["topic"]: row["items"] for row in report["topics"]}
    assert counts == {"world": 1, "business": 0, "sport": 1, "more": 1}
    assert report["feeds"] == [
        {
            "feed": "Daily Wire",
            "url": site.server.url("/wire.xml"),
            "items": 3,
            "topics": {"sport": 1, "world": 1, "more": 1},
        }
    ]
    words = [w for w, _ in report["fallback_words"]]
    assert {"town", "fair", "crowds", "cakes"} <= set(words)
    assert "the" not in words and "from" not in words
    text = site.run("topics").output
    assert "words in items that fell to 'more':" in text


def test_changing_feeds_yaml_recategorises_undelivered_items_only(site):
    site.run("fetch")
    site.run("digest")  # the first three stories are delivered
    site.server.route(
        "/wire.xml",
        FEED.replace(
            "<item><title>Town fair",
            "<item><title>Village fete raises funds</title><link>https://wire.example/fete</link>"
            "<guid>5</guid><pubDate>Tue, 24 Nov 2026 07:30:00 GMT</pubDate>"
            "<description>Cakes and jam again.</description></item>\n<item><title>Town fair",
        ),
    )
    site.clock.advance(timedelta(hours=2))
    site.run("fetch")
    assert site.items()["Village fete raises funds"]["topic"] == "more"
    # The editor adds keywords: the next poll places the undelivered item again.
    site.config.write_text(
        site_config(site.server, topics_extra=", cakes, fair", filters=SPONSOR_FILTER),
        encoding="utf-8",
    )
    site.clock.advance(timedelta(minutes=40))
    site.run("fetch")
    items = site.items()
    assert items["Village fete raises funds"]["topic"] == "business"
    assert items["Town fair draws record crowds"]["topic"] == "more"  # delivered: kept
    # Dropping the filter by hand releases the sponsored item, which was never delivered.
    site.config.write_text(site_config(site.server, topics_extra=", cakes, fair"), encoding="utf-8")
    out = site.run("recategorize").output
    assert "+0 filtered" not in out and "-1 filtered" in out
    assert site.items()["Sponsored: the ten best winter breaks"]["filtered"] is False


def test_editing_the_examples_recategorises_too(site):
    site.run("fetch")
    assert site.items()["Town fair draws record crowds"]["topic"] == "more"
    examples = site.dir / "topic-examples.yaml"
    examples.write_text(
        EXAMPLES.replace(
            "business:\n",
            "business:\n  - headline: Town fair draws record crowds and traders\n"
            "  - headline: Fair traders report record takings\n",
        ),
        encoding="utf-8",
    )
    site.clock.advance(timedelta(minutes=40))
    site.run("fetch")
    assert site.items()["Town fair draws record crowds"]["topic"] == "business"


def test_check_reports_the_model_and_problems_in_the_examples(site):
    out = site.run("check").output
    assert "topic model:" in out and "(6 examples for business, sport, world)" in out
    (site.dir / "topic-examples.yaml").write_text("wrld: [x]\n", encoding="utf-8")
    result = site.run("check", ok=False)
    assert result.exit_code == 2
    assert "topic-examples.yaml:1:1: wrld: unknown topic 'wrld'" in result.output
    assert ": ok" not in result.output  # never "ok" above the problems


def test_a_broken_examples_file_leaves_polling_to_the_rules(site, caplog):
    (site.dir / "topic-examples.yaml").write_text("world: 7\n", encoding="utf-8")
    site.run("fetch")
    items = site.items()
    assert items["Parliament votes on new electoral law"]["topic"] == "world"
    assert items["Striker scores twice as City beat United in derby"]["topic"] == "more"


def test_new_commands_have_help_with_an_example():
    runner = CliRunner()
    for command in ("topics", "recategorize", "explain"):
        result = runner.invoke(cli, [command, "--help"])
        assert result.exit_code == 0 and "Example:" in result.output, command
