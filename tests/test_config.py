"""feeds.yaml loading: the issue's example, the shipped starter file, and golden bad files.

Each tests/data/config/NAME.yaml is a broken config; NAME.expected holds the exact lines an
editor must see for it, one `file:line:col: key.path: message` per problem, in file order.
"""

from __future__ import annotations

import dataclasses
from datetime import datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from click.testing import CliRunner

from aggregator import schedule
from aggregator.cli import cli
from aggregator.config import (
    DEFAULT_MAX_BYTES,
    POLL_CEILING,
    POLL_FLOOR,
    Config,
    Settings,
    SmtpSettings,
    cron_trigger,
    dump_config,
    format_duration,
    format_size,
    load_config,
    load_config_with_warnings,
    parse_duration,
    parse_size,
)
from aggregator.errors import ConfigError
from aggregator.records import feed_display_name

REPO = Path(__file__).resolve().parent.parent
BAD_CONFIGS = Path(__file__).resolve().parent / "data" / "config"
LONDON = ZoneInfo("Europe/London")

ISSUE_EXAMPLE = """\
settings:
  timezone: Europe/London          # IANA name; digest schedules use it
  data_dir: data                   # SQLite database; relative to this file
  outbox: outbox                   # rendered messages; relative to this file
  poll_interval: 30m
  from: "Morning Brief <brief@example.org>"
  smtp: {host: localhost, port: 25}
topics:
  world: {title: World, keywords: [ukraine, russia, "north korea", sanctions]}
  business: {title: Business, keywords: [economy, markets, earnings]}
feeds:
  - url: https://example.org/world/rss.xml
    name: Example World
    topic: world                   # optional hint
    interval: 15m                  # optional
digests:
  daily: {schedule: "0 7 * * *", subject: "Morning Brief - {date:%A %d %B}", max_per_topic: 8}
subscribers:
  - email: reader@example.org
    digests: [daily]               # optional; default: every digest
    topics: [world]                # optional; default: every topic
"""


@pytest.fixture
def in_tmp(tmp_path, monkeypatch):
    """A working directory of our own; returns it resolved, as os.getcwd() reports it."""
    monkeypatch.chdir(tmp_path)
    return tmp_path.resolve()


def write(folder: Path, text: str, name: str = "feeds.yaml") -> Path:
    path = folder / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


def problems_of(path) -> list[str]:
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    return [str(p) for p in caught.value.problems]


# --- the issue's example -----------------------------------------------------------------


def test_issue_example_loads_with_its_values(in_tmp):
    write(in_tmp, ISSUE_EXAMPLE)

    config = load_config("feeds.yaml")

    assert config.path == in_tmp / "feeds.yaml"
    s = config.settings
    assert s.timezone == "Europe/London"
    assert s.data_dir == in_tmp / "data"
    assert s.outbox == in_tmp / "outbox"
    assert s.poll_interval == timedelta(minutes=30)
    assert s.sender == "Morning Brief <brief@example.org>"
    assert s.smtp == SmtpSettings(host="localhost", port=25, security="none")
    assert [(t.key, t.title, t.keywords) for t in config.topics] == [
        ("world", "World", ("ukraine", "russia", "north korea", "sanctions")),
        ("business", "Business", ("economy", "markets", "earnings")),
    ]
    (feed,) = config.feeds
    assert feed.url == "https://example.org/world/rss.xml"
    assert feed.name == "Example World"
    assert feed.topic == "world"
    assert feed.interval == timedelta(minutes=15)
    (digest,) = config.digests
    assert digest.key == "daily"
    assert digest.schedule == "0 7 * * *"
    assert digest.subject == "Morning Brief - {date:%A %d %B}"
    assert digest.max_per_topic == 8
    (subscriber,) = config.subscribers
    assert subscriber.email == "reader@example.org"
    assert subscriber.digests == ("daily",)
    assert subscriber.topics == ("world",)


def test_a_digest_title_is_given_or_read_from_the_subject(in_tmp):
    write(
        in_tmp,
        """feeds:
  - url: https://x.example/rss
digests:
  daily: {schedule: "0 7 * * *", subject: "Morning Brief - {date:%A %d %B}"}
  weekly: {schedule: "0 8 * * 0", subject: "{date:%d %B}: the week", title: Weekly Roundup}
  evening_news: {schedule: "0 18 * * *", subject: "{date:%A %d %B}"}
  late: {schedule: "0 22 * * *"}
""",
    )
    config = load_config("feeds.yaml")
    assert [d.title for d in config.digests] == [
        "Morning Brief",  # the subject without its date
        "Weekly Roundup",  # as given
        "Evening News",  # a subject that is all date: the key, as a default subject uses it
        "Late",  # the default subject, "Late - {date:...}"
    ]
    assert load_config(write(in_tmp, dump_config(config), "dumped.yaml")).digests == config.digests


def test_issue_example_fills_defaults_for_what_it_leaves_out(in_tmp):
    write(in_tmp, ISSUE_EXAMPLE)

    config = load_config("feeds.yaml")

    assert config.settings.templates is None
    assert config.settings.max_bytes == DEFAULT_MAX_BYTES
    assert config.settings.timeout == timedelta(seconds=30)
    feed = config.feeds[0]
    assert (feed.priority, feed.max_bytes, feed.fetch_article, feed.enabled) == (
        0,
        None,
        False,
        True,
    )
    digest = config.digests[0]
    assert (digest.max_total, digest.topics, digest.window, digest.send_empty) == (
        40,
        (),
        timedelta(hours=24),
        False,
    )
    assert config.subscribers[0].name is None
    assert config.topics[0].weight == 1.0


def test_a_file_with_only_feeds_gets_default_settings_with_absolute_paths(in_tmp):
    write(in_tmp, "feeds: []\n")

    config = load_config("feeds.yaml")

    assert config.settings == dataclasses.replace(
        Settings(), data_dir=in_tmp / "data", outbox=in_tmp / "outbox"
    )
    assert (config.topics, config.feeds, config.digests, config.subscribers) == ((), (), (), ())


def test_empty_sections_count_as_empty(in_tmp):
    write(in_tmp, "settings:\ntopics:\nfeeds:\ndigests:\nsubscribers:\n")

    config = load_config("feeds.yaml")

    assert config.feeds == ()
    assert config.settings.timezone == "UTC"


# --- paths and URLs ----------------------------------------------------------------------


def test_paths_are_relative_to_the_config_file_not_the_working_directory(in_tmp):
    write(in_tmp / "brief", "settings: {data_dir: db, outbox: ../mail}\nfeeds: []\n")

    config = load_config("brief/feeds.yaml")

    assert config.path == in_tmp / "brief" / "feeds.yaml"
    assert config.settings.data_dir == in_tmp / "brief" / "db"
    assert config.settings.outbox == in_tmp / "mail"


def test_messages_name_the_file_as_the_caller_did(in_tmp):
    write(in_tmp / "brief", "settings: {timezone: Mars/Olympus}\nfeeds: []\n")

    (message,) = problems_of("brief/feeds.yaml")

    assert message.startswith("brief/feeds.yaml:1:22: settings.timezone: unknown time zone")


def test_templates_folder_is_resolved_and_must_exist(in_tmp):
    (in_tmp / "mail-templates").mkdir()
    write(in_tmp, "settings: {templates: mail-templates}\nfeeds: []\n")
    assert load_config("feeds.yaml").settings.templates == in_tmp / "mail-templates"

    write(in_tmp, "settings: {templates: nowhere}\nfeeds: []\n")
    assert problems_of("feeds.yaml") == [
        f"feeds.yaml:1:23: settings.templates: no such folder: {in_tmp / 'nowhere'}"
    ]


def test_relative_file_url_becomes_an_absolute_file_url(in_tmp):
    write(in_tmp, "feeds:\n  - url: file:samples/bbc.xml\n  - url: file:///srv/feeds/x.xml\n")

    feeds = load_config("feeds.yaml").feeds

    assert feeds[0].url == (in_tmp / "samples" / "bbc.xml").as_uri()
    assert feed_display_name(feeds[0].name, None, feeds[0].url) == "bbc.xml"
    assert feeds[1].url == "file:///srv/feeds/x.xml"


def test_an_interval_the_scheduler_does_not_keep_to_is_a_warning(in_tmp):
    write(
        in_tmp,
        "settings: {poll_interval: 2d}\nfeeds:\n  - url: https://example.org/a.xml\n"
        "    interval: 1m\n  - url: https://example.org/b.xml\n    interval: 5m\n",
    )

    config, warnings = load_config_with_warnings("feeds.yaml")

    assert [str(w) for w in warnings] == [
        "feeds.yaml:1:27: settings.poll_interval: no feed is polled less often than every 1d:"
        " 2d works as 1d",
        "feeds.yaml:4:15: feeds[0].interval: no feed is polled more often than every 5m:"
        " 1m works as 5m",
    ]
    assert config.feeds[0].interval == timedelta(minutes=1)  # as written; schedule clamps
    assert (POLL_FLOOR, POLL_CEILING) == (schedule.FLOOR, schedule.CEILING)


def test_a_file_feed_whose_file_is_not_there_is_a_warning(in_tmp):
    (in_tmp / "samples").mkdir()
    (in_tmp / "samples" / "bbc.xml").write_text("<rss/>", encoding="utf-8")
    write(in_tmp, "feeds:\n  - url: file:samples/bbc.xml\n  - url: file:samples/bcc.xml\n")

    config, warnings = load_config_with_warnings("feeds.yaml")

    assert [str(w) for w in warnings] == [
        f"feeds.yaml:3:10: feeds[1].url: no such file: {in_tmp / 'samples' / 'bcc.xml'}"
        " (this feed fails until it exists)"
    ]
    assert load_config("feeds.yaml") == config


def test_a_feed_without_name_is_shown_under_its_title_else_its_url_host(in_tmp):
    write(in_tmp, "feeds:\n  - url: https://Feeds.Example.org/news/rss.xml\n")

    feed = load_config("feeds.yaml").feeds[0]
    assert feed.name is None  # not the host: that would outrank the feed's own title
    assert feed_display_name(feed.name, "BBC News", feed.url) == "BBC News"
    assert feed_display_name(feed.name, None, feed.url) == "feeds.example.org"
    assert feed_display_name("Editor's", "BBC News", feed.url) == "Editor's"


def test_feed_switches_and_limits_are_read(in_tmp):
    write(
        in_tmp,
        "feeds:\n"
        "  - {url: https://example.org/a, priority: -2, max_bytes: 512KB,"
        " fetch_article: true, enabled: false}\n"
        "  - {url: https://example.org/b, max_bytes: 2048}\n",
    )

    a, b = load_config("feeds.yaml").feeds

    assert (a.priority, a.max_bytes, a.fetch_article, a.enabled) == (-2, 512 * 1024, True, False)
    assert b.max_bytes == 2048


def test_topic_extras_are_kept_and_title_defaults_to_the_key(in_tmp):
    write(
        in_tmp,
        "topics:\n"
        "  climate_change:\n"
        "    keywords: [climate]\n"
        "    exclude: [climate of fear]\n"
        "    patterns: ['\\bCOP\\d+\\b']\n"
        "    aliases: [environment]\n"
        "    weight: 1.5\n"
        "feeds: []\n",
    )

    (topic,) = load_config("feeds.yaml").topics

    assert topic.title == "Climate Change"
    assert topic.exclude == ("climate of fear",)
    assert topic.patterns == (r"\bCOP\d+\b",)
    assert topic.aliases == ("environment",)
    assert topic.weight == 1.5


def test_merged_mappings_are_read_and_located(in_tmp):
    # Keys merged with `<<:` have no position of their own; problems fall back to the item.
    write(
        in_tmp,
        "feeds:\n"
        "  - &base {url: https://example.org/a, interval: 2h, priority: x}\n"
        "  - <<: *base\n"
        "    url: https://example.org/b\n",
    )

    assert problems_of("feeds.yaml") == [
        "feeds.yaml:2:64: feeds[0].priority: expected a whole number, got the text 'x'",
        "feeds.yaml:3:5: feeds[1].priority: expected a whole number, got the text 'x'",
    ]


# --- the shipped starter file ------------------------------------------------------------


def test_shipped_feeds_yaml_loads_without_problems():
    config = load_config(REPO / "feeds.yaml")

    assert config.path == REPO / "feeds.yaml"


def test_shipped_feeds_yaml_is_a_usable_starter_brief():
    config = load_config(REPO / "feeds.yaml")

    assert 15 <= len(config.feeds) <= 25
    assert all(f.url.startswith("https://") for f in config.feeds)
    assert {f.topic for f in config.feeds} == {t.key for t in config.topics}
    assert all(15 <= len(t.keywords) <= 100 for t in config.topics)
    (daily,) = config.digests
    assert (daily.key, daily.schedule, config.settings.timezone) == (
        "daily",
        "0 7 * * *",
        "Europe/London",
    )
    assert all(s.email.endswith("@example.org") for s in config.subscribers)
    assert config.settings.smtp == SmtpSettings(host="localhost", port=25)


# --- bad files: exact messages -----------------------------------------------------------


@pytest.mark.parametrize("name", sorted(p.stem for p in BAD_CONFIGS.glob("*.yaml")))
def test_bad_config_reports_exactly_the_expected_problems(name, monkeypatch):
    monkeypatch.chdir(BAD_CONFIGS)
    expected = (BAD_CONFIGS / f"{name}.expected").read_text(encoding="utf-8").splitlines()

    assert problems_of(f"{name}.yaml") == expected


def test_every_problem_of_a_file_comes_in_one_error_in_file_order(monkeypatch):
    monkeypatch.chdir(BAD_CONFIGS)

    with pytest.raises(ValueError) as caught:  # ConfigError is a ValueError too
        load_config("several_problems.yaml")

    problems = caught.value.problems
    assert len(problems) == 10
    assert [p.line for p in problems] == sorted(p.line for p in problems)
    assert str(caught.value).splitlines() == [str(p) for p in problems]


def test_missing_file_is_one_problem_without_a_line(in_tmp):
    with pytest.raises(ConfigError) as caught:
        load_config("nowhere.yaml")

    (problem,) = caught.value.problems
    assert (problem.path, problem.line, problem.column) == ("nowhere.yaml", 0, 0)
    assert str(problem) == "nowhere.yaml: file not found"


def test_an_empty_file_lacks_its_feeds(in_tmp):
    write(in_tmp, "")

    assert problems_of("feeds.yaml") == ["feeds.yaml:1:1: feeds: required key is missing"]


# --- cron --------------------------------------------------------------------------------

WEDNESDAY_NOON = datetime(2024, 1, 3, 12, 0, tzinfo=LONDON)


def fire_times(schedule: str, start: datetime = WEDNESDAY_NOON, count: int = 6) -> list[datetime]:
    trigger = cron_trigger(schedule, "Europe/London")
    times: list[datetime] = []
    previous, now = None, start
    for _ in range(count):
        previous = trigger.get_next_fire_time(previous, now)
        times.append(previous)
        now = previous + timedelta(seconds=1)
    return times


def weekdays(times: list[datetime]) -> list[str]:
    return [t.strftime("%a") for t in times]


@pytest.mark.parametrize("sunday", ["0", "7", "sun", "SUN"])
def test_cron_day_of_week_zero_and_seven_are_sunday(sunday):
    times = fire_times(f"0 7 * * {sunday}", count=3)

    assert times[0] == datetime(2024, 1, 7, 7, 0, tzinfo=LONDON)
    assert weekdays(times) == ["Sun", "Sun", "Sun"]


def test_cron_weekday_range_fires_monday_to_friday():
    assert weekdays(fire_times("0 7 * * 1-5", count=7)) == [
        "Thu",
        "Fri",
        "Mon",
        "Tue",
        "Wed",
        "Thu",
        "Fri",
    ]
    assert fire_times("0 7 * * mon-fri", count=7) == fire_times("0 7 * * 1-5", count=7)


def test_cron_weekday_lists_and_steps_count_from_sunday():
    assert weekdays(fire_times("0 7 * * 0,6", count=4)) == ["Sat", "Sun", "Sat", "Sun"]
    assert weekdays(fire_times("0 7 * * */2", count=4)) == ["Thu", "Sat", "Sun", "Tue"]


def test_cron_fires_at_local_time_in_the_configured_zone():
    (summer,) = fire_times("0 7 * * *", start=datetime(2024, 7, 1, tzinfo=LONDON), count=1)

    assert summer.utcoffset() == timedelta(hours=1)
    assert (summer.hour, summer.minute) == (7, 0)


@pytest.mark.parametrize(
    ("schedule", "message"),
    [
        ("0 7 * *", "expected 5 fields"),
        ("0 25 * * *", "bad hour field '25'"),
        ("0 7 * * 8", "bad day-of-week field '8'"),
        ("0 7 * * 5-1", "the range runs backwards"),
        ("0 7 1 * 1", "restrict only one of them"),
    ],
)
def test_cron_trigger_refuses_bad_lines(schedule, message):
    with pytest.raises(ValueError, match=message):
        cron_trigger(schedule, "UTC")


def test_cron_trigger_refuses_an_unknown_time_zone():
    with pytest.raises(ValueError, match="did you mean 'Europe/London'"):
        cron_trigger("0 7 * * *", "Europe/Londn")


# --- small syntaxes ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "delta"),
    [
        ("30s", timedelta(seconds=30)),
        ("15m", timedelta(minutes=15)),
        ("2h", timedelta(hours=2)),
        ("1d", timedelta(days=1)),
        ("1h30m", timedelta(minutes=90)),
        ("1h 30m", timedelta(minutes=90)),
    ],
)
def test_durations_read_and_write_back(text, delta):
    assert parse_duration(text) == delta
    assert parse_duration(format_duration(delta)) == delta


@pytest.mark.parametrize("text", ["", "30", "15 minutes", "1w", "0s", "m"])
def test_durations_without_a_known_unit_are_refused(text):
    with pytest.raises(ValueError):
        parse_duration(text)


@pytest.mark.parametrize(
    ("value", "size"),
    [(4096, 4096), ("512KB", 512 * 1024), ("5MB", 5 * 1024**2), ("1gb", 1024**3), ("100", 100)],
)
def test_sizes_read_and_write_back(value, size):
    assert parse_size(value) == size
    assert parse_size(format_size(size)) == size


# --- dump --------------------------------------------------------------------------------


def reload_dump(config: Config) -> Config:
    dumped = write(config.path.parent, dump_config(config), name="dumped.yaml")
    return dataclasses.replace(load_config(dumped), path=config.path)


def test_dump_of_the_issue_example_reads_back_as_the_same_config(in_tmp):
    config = load_config(write(in_tmp, ISSUE_EXAMPLE))

    assert reload_dump(config) == config


def test_dump_of_the_shipped_file_reads_back_as_the_same_config(tmp_path):
    shipped = load_config(REPO / "feeds.yaml")
    config = dataclasses.replace(shipped, path=tmp_path / "feeds.yaml")

    assert reload_dump(config) == config


def test_max_entries_is_a_whole_number_of_at_least_one(in_tmp):
    write(in_tmp, "settings:\n  max_entries: 200\nfeeds: []\n")
    assert load_config("feeds.yaml").settings.max_entries == 200
    write(in_tmp, "settings:\n  max_entries: 0\nfeeds: []\n")
    assert problems_of("feeds.yaml") == [
        "feeds.yaml:2:16: settings.max_entries: must be at least 1, got 0"
    ]


def test_dump_shows_defaults_in_the_file_syntax(in_tmp):
    text = dump_config(load_config(write(in_tmp, "feeds: []\n")))

    assert "  poll_interval: 30m\n" in text
    assert "  max_bytes: 10MB\n" in text
    assert "  max_entries: 1000\n" in text
    assert f"  data_dir: {in_tmp / 'data'}\n" in text


def test_an_empty_value_is_reported_at_its_key(in_tmp):
    write(in_tmp, "settings:\n  timezone:\n  from: brief@example.org\nfeeds: []\n")

    assert problems_of("feeds.yaml") == [
        "feeds.yaml:2:3: settings.timezone: expected text, got nothing"
    ]


NO_TOPIC_IN_COMMON = """\
topics:
  world: {keywords: [ukraine]}
  tech: {keywords: [chip]}
  science: {keywords: [nasa]}
feeds:
  - url: https://example.org/rss.xml
digests:
  morning: {schedule: "0 7 * * *"}
  evening: {schedule: "0 18 * * *", topics: [tech, science]}
subscribers:
  - email: ann@example.org
    topics: [world]
  - email: bob@example.org
    digests: [evening]
    topics: [world, tech]
  - email: cat@example.org
    digests: [evening]
    topics: [more]
"""


def test_a_subscriber_who_can_get_nothing_from_a_digest_is_a_warning(in_tmp):
    write(in_tmp, NO_TOPIC_IN_COMMON)
    config, warnings = load_config_with_warnings("feeds.yaml")
    assert [s.email for s in config.subscribers] == [
        "ann@example.org",
        "bob@example.org",
        "cat@example.org",
    ]
    assert [str(w) for w in warnings] == [
        "feeds.yaml:12:13: subscribers[0].topics: ann@example.org gets nothing from digest "
        "'evening': none of its topics (tech, science) is one of theirs (world); list the "
        "digests they want under `digests:` (default: every digest)",
        "feeds.yaml:18:13: subscribers[2].topics: cat@example.org gets nothing from digest "
        "'evening': none of its topics (tech, science) is one of theirs (more); give them one "
        "of its topics, or take 'evening' from their `digests:`",
    ]
    assert load_config("feeds.yaml") == config  # a warning does not stop anything


def test_check_prints_warnings_placed_in_the_file_and_still_says_ok(in_tmp):
    write(in_tmp, NO_TOPIC_IN_COMMON)
    result = CliRunner().invoke(cli, ["--config", "feeds.yaml", "check"])
    assert result.exit_code == 0, result.output
    assert "feeds.yaml: ok" in result.stdout
    assert result.stderr.splitlines() == [
        "warning: feeds.yaml:12:13: subscribers[0].topics: ann@example.org gets nothing from "
        "digest 'evening': none of its topics (tech, science) is one of theirs (world); list "
        "the digests they want under `digests:` (default: every digest)",
        "warning: feeds.yaml:18:13: subscribers[2].topics: cat@example.org gets nothing from "
        "digest 'evening': none of its topics (tech, science) is one of theirs (more); give "
        "them one of its topics, or take 'evening' from their `digests:`",
    ]


def test_a_config_every_subscriber_can_get_something_from_warns_of_nothing(in_tmp):
    write(in_tmp, ISSUE_EXAMPLE)
    assert load_config_with_warnings("feeds.yaml")[1] == ()


def test_check_dump_still_warns_on_stderr_and_keeps_stdout_yaml(in_tmp):
    write(in_tmp, NO_TOPIC_IN_COMMON)
    result = CliRunner().invoke(cli, ["--config", "feeds.yaml", "check", "--dump"])
    assert result.exit_code == 0, result.output
    assert len(result.stderr.splitlines()) == 2
    assert all(line.startswith("warning: feeds.yaml:") for line in result.stderr.splitlines())
    assert "warning" not in result.stdout and "subscribers:" in result.stdout


def test_a_valid_file_with_a_list_under_a_list_item_key_is_read_once(in_tmp, monkeypatch):
    # '- words:' over its own deeper list is valid YAML, not a run-on item: the quick
    # reading is enough, with no second, round-trip reading (which doubles a big file's load)
    import aggregator.config as config_module

    write(
        in_tmp,
        "filters:\n  block:\n    - words:   # any of these\n        - sponsored\n"
        "        - advertorial\nfeeds: []\n",
    )

    def second_reading(*_args):
        raise AssertionError("read twice")

    monkeypatch.setattr(config_module, "_read", second_reading)
    config = load_config("feeds.yaml")
    assert config.filters.block[0].words == ("sponsored", "advertorial")
