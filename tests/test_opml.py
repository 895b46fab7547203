"""OPML export and import, through the CLI, on real files."""

from __future__ import annotations

from types import SimpleNamespace

import lxml.etree
import pytest
from click.testing import CliRunner

from aggregator.cli import cli
from aggregator.config import load_config
from aggregator.opml import OpmlError, build_opml, parse_opml, plan_import

FEEDS_YAML = """\
# The editor's brief. Comments and order must survive an import.
settings:
  data_dir: data   # beside this file
topics:
  world: {title: World, keywords: [war]}
  tech: {title: Technology, keywords: [chip]}

feeds:
  # --- world ---
  - url: https://world.example/rss
    name: World Desk
    topic: world       # the main desk
  - url: https://tech.example/feed/
    name: Tech

  # feeds we tried and dropped:
  # - url: https://dropped.example/rss

digests:
  daily: {schedule: "0 7 * * *"}   # seven sharp
"""

OPML = """<?xml version="1.0" encoding="UTF-8"?>
<opml version="2.0">
  <head><title>My subscriptions</title></head>
  <body>
    <outline text="Technology">
      <outline type="rss" text="Chip News" xmlUrl="https://chips.example/rss" htmlUrl="https://chips.example/"/>
      <outline type="rss" text="Tech again" xmlUrl="https://TECH.example/feed"/>
    </outline>
    <outline text="Cooking">
      <outline type="rss" text="Soup: daily" xmlUrl="https://soup.example/atom.xml"/>
    </outline>
    <outline type="rss" text="Top level" category="/world" xmlUrl="http://top.example/rss"/>
    <outline type="rss" text="Local" xmlUrl="file:///etc/passwd"/>
    <outline type="rss" text="Gopher" xmlUrl="gopher://old.example/1"/>
  </body>
</opml>
"""


@pytest.fixture
def brief(tmp_path, clock):
    config = tmp_path / "feeds.yaml"
    config.write_text(FEEDS_YAML, encoding="utf-8")
    opml = tmp_path / "subs.opml"
    opml.write_text(OPML, encoding="utf-8")

    def run(*args):
        return CliRunner().invoke(
            cli, ["--config", str(config), *args], obj=SimpleNamespace(clock=clock)
        )

    return SimpleNamespace(config=config, opml=opml, run=run)


def test_import_appends_new_feeds_keeping_every_line_the_editor_wrote(brief):
    result = brief.run("opml", "import", str(brief.opml))
    assert result.exit_code == 0, result.output
    text = brief.config.read_text(encoding="utf-8")
    added = """\
  - url: https://chips.example/rss
    name: Chip News
    topic: tech
  - url: https://soup.example/atom.xml
    name: "Soup: daily"
  - url: http://top.example/rss
    name: Top level
    topic: world
"""
    anchor = "    name: Tech\n"
    assert text == FEEDS_YAML.replace(anchor, anchor + added)
    config = load_config(brief.config)
    assert [f.url for f in config.feeds][-3:] == [
        "https://chips.example/rss",
        "https://soup.example/atom.xml",
        "http://top.example/rss",
    ]
    assert config.feed("https://chips.example/rss").topic == "tech"


def test_import_reports_what_it_added_and_skipped(brief):
    out = brief.run("opml", "import", str(brief.opml)).output
    assert "added https://chips.example/rss (Chip News) topic=tech" in out
    assert "skipped https://TECH.example/feed: already in the file" in out
    assert "skipped file:///etc/passwd: not an http(s) URL" in out
    assert "skipped gopher://old.example/1: not an http(s) URL" in out
    assert out.rstrip().endswith("3 feed(s) added, 3 skipped")


def test_importing_twice_adds_nothing_the_second_time(brief):
    brief.run("opml", "import", str(brief.opml))
    once = brief.config.read_text(encoding="utf-8")
    result = brief.run("opml", "import", str(brief.opml))
    assert result.exit_code == 0
    assert "0 feed(s) added, 6 skipped" in result.output
    assert brief.config.read_text(encoding="utf-8") == once


def test_dry_run_changes_nothing(brief):
    result = brief.run("opml", "import", "--dry-run", str(brief.opml))
    assert "would add https://soup.example/atom.xml" in result.output
    assert brief.config.read_text(encoding="utf-8") == FEEDS_YAML


def test_import_into_an_empty_feeds_list(tmp_path, clock):
    config = tmp_path / "feeds.yaml"
    config.write_text("# mine\nfeeds: []   # none yet\n", encoding="utf-8")
    opml = tmp_path / "s.opml"
    opml.write_text(OPML, encoding="utf-8")
    result = CliRunner().invoke(
        cli,
        ["--config", str(config), "opml", "import", str(opml)],
        obj=SimpleNamespace(clock=clock),
    )
    assert result.exit_code == 0, result.output
    assert len(load_config(config).feeds) == 4
    assert config.read_text(encoding="utf-8").startswith("# mine\nfeeds:\n  - url: https://chips")


def test_not_opml_is_refused_and_the_file_left_alone(brief, tmp_path):
    bad = tmp_path / "bad.opml"
    bad.write_text("<rss><channel/></rss>", encoding="utf-8")
    result = brief.run("opml", "import", str(bad))
    assert result.exit_code == 1
    assert "not OPML" in result.output
    assert brief.config.read_text(encoding="utf-8") == FEEDS_YAML


def test_entities_are_not_expanded():
    evil = b"""<?xml version="1.0"?>
<!DOCTYPE opml [<!ENTITY x SYSTEM "file:///etc/passwd">]>
<opml version="2.0"><body><outline text="&x;" xmlUrl="https://a.example/rss"/></body></opml>"""
    try:
        feeds = parse_opml(evil)
    except OpmlError:  # refused outright: fine too
        return
    assert all("root:" not in (f.name or "") for f in feeds)


def test_export_has_a_folder_per_topic_and_reads_back(brief):
    result = brief.run("opml", "export")
    assert result.exit_code == 0
    assert not (brief.config.parent / "data").exists()  # an export creates no database
    root = lxml.etree.fromstring(result.output.encode())
    assert root.get("version") == "2.0"
    world = root.find("body/outline[@text='World']")
    [desk] = world.findall("outline")
    assert (desk.get("xmlUrl"), desk.get("category"), desk.get("text")) == (
        "https://world.example/rss",
        "/world",
        "World Desk",
    )
    top = [o.get("xmlUrl") for o in root.findall("body/outline[@xmlUrl]")]
    assert top == ["https://tech.example/feed/"]
    back = parse_opml(result.output.encode())
    assert [(f.url, f.categories[0] if f.categories else None) for f in back] == [
        ("https://world.example/rss", "World"),
        ("https://tech.example/feed/", None),
    ]
    # Exported and imported again: nothing new.
    assert not plan_import(load_config(brief.config), back).add


def test_build_opml_is_deterministic(brief, clock):
    config = load_config(brief.config)
    assert build_opml(config, now=clock.now()) == build_opml(config, now=clock.now())


def test_parse_opml_rejects_garbage():
    with pytest.raises(OpmlError):
        parse_opml(b"not xml at all")


@pytest.mark.parametrize(
    "command", [["opml"], ["opml", "export"], ["opml", "import"], ["discover"], ["status"]]
)
def test_new_commands_have_help_with_an_example(command):
    result = CliRunner().invoke(cli, [*command, "--help"])
    assert result.exit_code == 0
    assert "Example:" in result.output


def test_a_url_listed_twice_in_the_opml_is_added_once_and_named_as_a_repeat(brief, tmp_path):
    twice = tmp_path / "twice.opml"
    twice.write_text(
        """<?xml version="1.0"?>
<opml version="2.0"><body>
  <outline type="rss" text="Soup" xmlUrl="https://soup.example/atom.xml"/>
  <outline text="Cooking">
    <outline type="rss" text="Soup again" xmlUrl="https://SOUP.example/atom.xml/"/>
  </outline>
</body></opml>""",
        encoding="utf-8",
    )
    result = brief.run("opml", "import", str(twice))
    assert result.exit_code == 0, result.output
    assert "added https://soup.example/atom.xml (Soup)" in result.output
    assert f"skipped https://SOUP.example/atom.xml/: listed twice in {twice}" in result.output
    assert "already in the file" not in result.output
    assert [f.url for f in load_config(brief.config).feeds].count(
        "https://soup.example/atom.xml"
    ) == 1


TOPICS_YAML = """\
topics:
  world: {title: World, keywords: [war]}
  tech: {title: Technology, keywords: [chip]}
  health: {keywords: [nhs], aliases: [Wellbeing, Medicine]}
  world_news: {keywords: [summit]}
  economy: {title: Economie, keywords: [gdp]}
feeds:
  - url: https://world.example/rss
"""


def _import(tmp_path, clock, body):
    config = tmp_path / "feeds.yaml"
    config.write_text(TOPICS_YAML, encoding="utf-8")
    opml = tmp_path / "subs.opml"
    opml.write_text(f'<opml version="2.0"><body>{body}</body></opml>', encoding="utf-8")
    result = CliRunner().invoke(
        cli,
        ["--config", str(config), "opml", "import", str(opml)],
        obj=SimpleNamespace(clock=clock),
    )
    assert result.exit_code == 0, result.output
    return result.output, {f.url: f.topic for f in load_config(config).feeds}


def test_a_folder_named_like_a_topic_key_title_or_alias_gives_the_feed_that_topic(tmp_path, clock):
    out, topics = _import(
        tmp_path,
        clock,
        """
        <outline text="WELLBEING"><outline xmlUrl="https://a.example/rss"/></outline>
        <outline text=" medicine: "><outline xmlUrl="https://b.example/rss"/></outline>
        <outline text="Technology /"><outline xmlUrl="https://c.example/rss"/></outline>
        <outline text="World-News"><outline xmlUrl="https://d.example/rss"/></outline>
        <outline text="health"><outline xmlUrl="https://e.example/rss"/></outline>
        <outline text="Health and fitness"><outline xmlUrl="https://f.example/rss"/></outline>
        <outline text="Tech news"><outline xmlUrl="https://g.example/rss"/></outline>
        <outline text="Économie"><outline xmlUrl="https://h.example/rss"/></outline>
        """,
    )
    assert topics == {
        "https://world.example/rss": None,
        "https://a.example/rss": "health",
        "https://b.example/rss": "health",
        "https://c.example/rss": "tech",
        "https://d.example/rss": "world_news",
        "https://e.example/rss": "health",
        # Not the same name, only a similar one: no guess.
        "https://f.example/rss": None,
        "https://g.example/rss": None,
        "https://h.example/rss": "economy",  # accents compared as categorize does
    }
    assert "added https://a.example/rss topic=health" in out


def test_a_feed_in_nested_folders_takes_the_innermost_folder_that_names_a_topic(tmp_path, clock):
    _, topics = _import(
        tmp_path,
        clock,
        """
        <outline text="News">
          <outline text="World">
            <outline text="Elsewhere"><outline xmlUrl="https://a.example/rss"/></outline>
            <outline text="Technology"><outline xmlUrl="https://b.example/rss"/></outline>
          </outline>
          <outline text="Misc"><outline xmlUrl="https://c.example/rss"/></outline>
        </outline>
        <outline text="Cooking">
          <outline xmlUrl="https://d.example/rss" category="/Blogs/Wellbeing"/>
        </outline>
        """,
    )
    assert topics == {
        "https://world.example/rss": None,
        "https://a.example/rss": "world",
        "https://b.example/rss": "tech",
        "https://c.example/rss": None,
        # No folder names a topic; the category attribute still does.
        "https://d.example/rss": "health",
    }


def test_outlines_nested_in_a_feed_are_imported_or_named_never_dropped(tmp_path, clock):
    out, topics = _import(
        tmp_path,
        clock,
        """
        <outline text="Technology">
          <outline type="rss" text="Parent" xmlUrl="https://parent.example/rss">
            <outline type="rss" text="Child" xmlUrl="https://child.example/rss">
              <outline type="rss" text="Grandchild" xmlUrl="https://grandchild.example/rss"/>
            </outline>
            <outline text="Just a note"/>
          </outline>
        </outline>
        <outline type="rss" text="Web only" htmlUrl="https://web.example/"/>
        <outline text="An empty folder"/>
        """,
    )
    assert topics == {
        "https://world.example/rss": None,
        "https://parent.example/rss": "tech",
        "https://child.example/rss": "tech",
        "https://grandchild.example/rss": "tech",
    }
    assert "added https://child.example/rss (Child) topic=tech" in out
    assert 'skipped outline "Just a note" (line 7): no xmlUrl, so no feed to add' in out
    assert 'skipped outline "Web only" (line 10): no xmlUrl, so no feed to add' in out
    assert "An empty folder" not in out  # holds nothing, so nothing is left out
    assert out.rstrip().endswith("3 feed(s) added, 2 skipped")
