"""Editions through the pipeline: choice, size cap, crash safety, personalisation, preview."""

from __future__ import annotations

import os
import sqlite3
from datetime import timedelta
from pathlib import Path
from types import SimpleNamespace

import lxml.html
import pytest
from click.testing import CliRunner

from aggregator import outbox, pipeline, render
from aggregator.cli import cli
from aggregator.config import load_config
from aggregator.records import TopicLabel
from aggregator.store import SCHEMA_VERSION, Store
from tests.digests import (
    CUTOFF,
    CYRILLIC_LEAD,
    LATIN_LEAD,
    TOPICS,
    DigestSite,
    parse_eml,
)

THREE = """  - email: ann@example.org
  - email: bob@example.org
  - email: cat@example.org
    topics: [world]
"""


@pytest.fixture
def make_site(tmp_path):
    sites = []

    def make(sub="", **kw):
        site = DigestSite.make(
            tmp_path / f"site{len(sites)}", **({"subscribers": sub} if sub else {}), **kw
        )
        sites.append(site)
        return site

    yield make
    for s in sites:
        s.close()


def headlines(html: str) -> list[str]:
    return [h.text_content() for h in lxml.html.document_fromstring(html).iter("h3")]


# -- the size cap ----------------------------------------------------------------------------


@pytest.mark.parametrize(("lead", "script"), [(LATIN_LEAD, "latin"), (CYRILLIC_LEAD, "cyrillic")])
def test_a_full_edition_stays_under_90kb_dropping_the_lowest_ranked(make_site, lead, script):
    site = make_site()
    site.full_edition(lead)
    [report] = site.build()
    msg = site.messages()["reader@example.org"].msg
    size = render.html_size(msg)
    print(f"{script}: {report.stories} stories, {report.dropped} dropped, encoded HTML {size} B")
    assert size < render.MAX_HTML_BYTES
    assert report.stories + report.dropped == 40  # max_total
    shown = headlines(msg.get_body(("html",)).get_content())
    assert len(shown) == report.stories
    if script == "cyrillic":  # ~122 KB with all 40: the cap had to act
        assert report.dropped > 0
    # Dropped stories are not delivered later either: like the caps, the size cap is final.
    again = pipeline.plan_for(
        site.config, site.store, site.config.digests[0], site.config.subscribers[0], CUTOFF
    )
    assert again.is_empty


def test_the_dropped_stories_are_the_oldest(make_site):
    site = make_site()
    site.full_edition(CYRILLIC_LEAD)
    planned = pipeline.plan_for(
        site.config, site.store, site.config.digests[0], site.config.subscribers[0], CUTOFF
    )
    [report] = site.build()
    shown = set(headlines(site.messages()["reader@example.org"].html))
    stories = [s for sec in planned.sections for s in sec.stories]
    kept = [s for s in stories if s.title in shown]
    dropped = [s for s in stories if s.title not in shown]
    assert len(dropped) == report.dropped > 0
    assert max(s.first_seen_at for s in dropped) <= min(s.first_seen_at for s in kept)


# -- which stories -----------------------------------------------------------------------------


def test_first_edition_looks_back_one_window_and_next_takes_only_new(make_site):
    site = make_site()
    site.add_story("world", "Too old for a first edition", at=CUTOFF - timedelta(hours=30))
    site.add_story("world", "Yesterday evening", at=CUTOFF - timedelta(hours=10))
    site.build()
    first = site.messages()["reader@example.org"].html
    assert headlines(first) == ["Yesterday evening"]
    site.add_story("world", "This morning", at=CUTOFF + timedelta(hours=5))
    site.clock.advance(timedelta(days=1))
    site.build()
    second = [m for m in site.messages().values() if "2026-11-25" in m.path.name]
    assert [headlines(m.html) for m in second] == [["This morning"]]


def test_stories_first_seen_after_the_cutoff_wait_for_the_next_edition(make_site):
    site = make_site()
    site.add_story("world", "Before seven", at=CUTOFF - timedelta(minutes=5))
    site.add_story("world", "While the edition was built", at=CUTOFF + timedelta(minutes=2))
    site.clock.advance(timedelta(minutes=4))  # the build runs a little after its fire time
    site.build(scheduled_for=CUTOFF)
    assert headlines(site.messages()["reader@example.org"].html) == ["Before seven"]
    site.clock.set(CUTOFF + timedelta(days=1))
    site.build()
    nxt = next(m for m in site.messages().values() if "2026-11-25" in m.path.name)
    assert headlines(nxt.html) == ["While the edition was built"]


def test_a_story_committed_after_the_edition_was_chosen_is_not_lost(make_site):
    """A poll stamps items with its start time and commits later: an item stamped before the
    cutoff but committed after the edition read the store goes to the next edition."""
    site = make_site()
    site.add_story("world", "Seen in time", at=CUTOFF - timedelta(minutes=30))
    site.build()
    # Committed now, but stamped 06:59: first_seen is before the edition's cutoff.
    site.add_story("world", "Stamped early, committed late", at=CUTOFF - timedelta(minutes=1))
    site.clock.advance(timedelta(days=1))
    site.build()
    nxt = next(m for m in site.messages().values() if "2026-11-25" in m.path.name)
    assert headlines(nxt.html) == ["Stamped early, committed late"]


def test_published_before_the_last_edition_but_polled_after_it_is_still_news(make_site):
    site = make_site()
    site.build()
    site.add_story(
        "world",
        "Published 06:50, polled 07:20",
        at=CUTOFF + timedelta(minutes=20),
        published=CUTOFF - timedelta(minutes=10),
    )
    site.add_story(
        "world",
        "A new feed's archive",
        at=CUTOFF + timedelta(minutes=20),
        published=CUTOFF - timedelta(days=3),
    )
    site.clock.advance(timedelta(days=1))
    site.build()
    nxt = next(m for m in site.messages().values() if "2026-11-25" in m.path.name)
    assert headlines(nxt.html) == ["Published 06:50, polled 07:20"]
    # explain gives the same verdict, against the window that edition had.
    ids = {it.title: it.id for it in site.store.items()}
    for title, too_old in [
        ("Published 06:50, polled 07:20", False),
        ("A new feed's archive", True),
    ]:
        found = pipeline.explain_item(site.config, site.store, ids[title])["editions"]
        [daily] = found["digests"]  # type: ignore[index]
        assert daily["too_old"] is too_old, title
        assert daily["window_start"] == CUTOFF.isoformat()  # where the first edition ended
        assert daily["cutoff"] == (CUTOFF + timedelta(days=1)).isoformat()


def test_a_source_joining_a_delivered_story_does_not_send_it_again(make_site):
    site = make_site()
    link = site.add_story("world", "Delivered once", at=CUTOFF - timedelta(hours=1))
    site.build()
    site.add_story("world", "Delivered once", at=CUTOFF + timedelta(hours=2), link=link)
    site.add_story("world", "Something new", at=CUTOFF + timedelta(hours=2))
    site.clock.advance(timedelta(days=1))
    site.build()
    nxt = next(m for m in site.messages().values() if "2026-11-25" in m.path.name)
    assert headlines(nxt.html) == ["Something new"]


EVENING = '  evening: {schedule: "0 18 * * *", subject: "Evening Brief"}\n'


def test_a_story_one_digest_delivered_is_not_delivered_again_by_another(make_site):
    site = make_site("  - email: Alice@Example.org\n", more_digests=EVENING)
    for n in range(6):
        site.add_story("world", f"Overnight {n}", at=CUTOFF - timedelta(hours=n + 1))
    site.build(digests=["daily"])
    [morning] = (site.dir / "outbox" / "pending").glob("*daily*.eml")
    assert len(headlines(parse_eml(morning.read_bytes()).get_body(("html",)).get_content())) == 6
    site.add_story("world", "Afternoon", at=CUTOFF + timedelta(hours=6))
    site.add_story("business", "Afternoon business", at=CUTOFF + timedelta(hours=7))
    # The editor writes her address in lower case now: still the reader who got the morning.
    path = site.dir / "feeds.yaml"
    path.write_text(path.read_text("utf-8").replace("Alice@Example", "alice@example"), "utf-8")
    site.config = load_config(path)
    site.clock.set(CUTOFF + timedelta(hours=11))  # 18:00 in London
    # The evening's first edition looks back a whole window, over the morning's stories too;
    # the preview shows what that edition will hold.
    preview = pipeline.preview_edition(
        site.config, site.store, site.clock, digest="evening", subscriber="alice@example.org"
    )
    afternoon = ["Afternoon", "Afternoon business"]
    assert headlines(preview.path.read_text("utf-8")) == afternoon
    [report] = site.build(digests=["evening"])
    assert report.stories == 2
    assert headlines(site.messages()["alice@example.org"].html) == afternoon


def test_nothing_new_sends_nothing_unless_send_empty(make_site):
    quiet = make_site()
    [report] = quiet.build()
    assert report.skipped == "nothing new" and not quiet.messages()
    assert quiet.store.last_editions("daily")["reader@example.org"].cutoff == CUTOFF
    loud = make_site(digest_extra=", send_empty: true")
    [report] = loud.build()
    assert report.path is not None and report.stories == 0
    assert "reader@example.org" in loud.messages()


def test_ranking_sources_then_priority_then_recency(make_site):
    site = make_site()
    site.add_story("world", "Newest, one source", at=CUTOFF - timedelta(minutes=5))
    site.add_story("world", "Older, three sources", sources=3, at=CUTOFF - timedelta(hours=5))
    site.add_story("world", "Older, one source", at=CUTOFF - timedelta(hours=4))
    site.build()
    m = site.messages()["reader@example.org"]
    assert headlines(m.html) == ["Older, three sources", "Newest, one source", "Older, one source"]
    doc = lxml.html.document_fromstring(m.html)
    meta = [p.text_content() for p in doc.find_class("m")]
    assert meta[0].startswith("Alpha Daily · 02:00")  # London time on the edition's day
    # All three link the one page the headline links: counted and credited, not linked.
    assert "Also covered by Beta Times, Gamma Wire" in " ".join(meta[0].split())
    assert not list(doc.find_class("m")[0].iter("a"))


# -- explain: in the edition, or which rule left the story out -----------------------------------


def edition_groups(site, title, digest="daily"):
    """explain's verdicts for the item headed ``title`` in ``digest``: reason -> recipients,
    and the edition's own facts."""
    item = next(it.id for it in site.store.items() if it.title == title)
    found = pipeline.explain_item(site.config, site.store, item)["editions"]["digests"]
    edition = next(d for d in found if d["digest"] == digest)["edition"]
    return {g["reason"]: sorted(g["recipients"]) for g in edition["groups"]}, edition


def test_explain_says_who_got_the_story_in_each_edition_and_what_left_it_out_for_the_rest(
    make_site,
):
    site = make_site(THREE, digest_extra=", max_per_topic: 2, max_total: 3", more_digests=EVENING)
    site.add_story("world", "World three sources", sources=3)
    site.add_story("world", "World two sources", sources=2)
    site.add_story("world", "World one source")
    site.add_story("business", "Business two sources", sources=2)
    site.add_story("business", "Business one source")
    site.add_story("world", "Sponsored world story", sources=4)
    [sponsored] = [it for it in site.store.items() if it.title.startswith("Sponsored")][:1]
    site.store.relabel_items(
        [
            (it.id, TopicLabel("world", filtered=True, filter_reason="block: 'sponsored'"))
            for it in site.store.items()
            if it.story_id == sponsored.story_id
        ]
    )
    everyone = ["ann@example.org", "bob@example.org", "cat@example.org"]
    ann_bob, cat = everyone[:2], ["cat@example.org"]
    # Before the edition: what it would hold as things stand.
    groups, edition = edition_groups(site, "World one source")
    assert (edition["built"], edition["key"]) == (False, "2026-11-24T0700-daily")
    assert groups == {"max_per_topic": everyone}
    site.build(digests=["daily"])
    groups, edition = edition_groups(site, "World one source")
    assert (edition["built"], edition["built_at"]) == (True, CUTOFF.isoformat())
    assert groups == {"max_per_topic": everyone}
    [note] = [g["note"] for g in edition["groups"]]
    assert note == "left out by max_per_topic: ranked 3 of 3 in World, which takes 2"
    assert edition_groups(site, "World three sources")[0] == {"included": everyone}
    assert edition_groups(site, "Business two sources")[0] == {
        "included": ann_bob,
        "topics": cat,
    }
    groups, edition = edition_groups(site, "Business one source")
    assert groups == {"max_total": ann_bob, "topics": cat}
    notes = {g["reason"]: g["note"] for g in edition["groups"]}
    assert notes["max_total"] == (
        "left out by max_total (3): ranked 2 of 2 in Business, which had room for 1 after "
        "the sections before it"
    )
    assert notes["topics"] == "Business is not among their sections"
    groups, edition = edition_groups(site, "Sponsored world story")
    assert groups == {"filtered": everyone}
    assert edition["groups"][0]["note"] == "filtered: block: 'sponsored'"
    # The evening digest has not been built: the morning's stories are not sent again, and
    # what max_per_topic cut from the morning makes the evening.
    assert edition_groups(site, "World three sources", "evening")[0] == {"delivered": everyone}
    groups, evening = edition_groups(site, "World one source", "evening")
    assert (evening["built"], groups) == (False, {"included": everyone})
    notes = [g["note"] for g in edition_groups(site, "World two sources", "evening")[1]["groups"]]
    assert notes == ["already sent to them in 2026-11-24T0700-daily"]
    # The text says the same.
    item = next(it.id for it in site.store.items() if it.title == "Business one source")
    args = ["--config", str(site.dir / "feeds.yaml"), "explain", str(item)]
    out = CliRunner().invoke(cli, args, obj=SimpleNamespace(clock=site.clock)).output
    assert "    edition 2026-11-24T0700-daily (built 2026-11-24 07:00):" in out
    assert "2 recipient(s) (ann@example.org, bob@example.org): left out by max_total (3)" in out
    assert "1 recipient(s) (cat@example.org): Business is not among their sections" in out
    assert "next edition 2026-11-24T1800-evening (not built yet; as things stand now):" in out


def test_explain_names_the_size_cap_for_a_story_dropped_to_fit_90kb(make_site):
    built, ahead = make_site(), make_site()
    for site in (built, ahead):
        site.full_edition(CYRILLIC_LEAD)
    planned = pipeline.plan_for(
        built.config, built.store, built.config.digests[0], built.config.subscribers[0], CUTOFF
    )
    [report] = built.build()
    shown = set(headlines(built.messages()["reader@example.org"].html))
    dropped = [s for sec in planned.sections for s in sec.stories if s.title not in shown]
    assert len(dropped) == report.dropped > 0
    groups, edition = edition_groups(built, dropped[0].title)
    assert (edition["built"], groups) == (True, {"size": ["reader@example.org"]})
    assert edition["groups"][0]["note"] == (
        "left out to keep the e-mail under 90 KB (the lowest-ranked stories go first)"
    )
    # Before it is built, explain renders the next edition to say the same.
    groups, edition = edition_groups(ahead, dropped[0].title)
    assert (edition["built"], groups) == (False, {"size": ["reader@example.org"]})
    kept = next(iter(shown))
    assert edition_groups(ahead, kept)[0] == {"included": ["reader@example.org"]}


# -- crash safety ------------------------------------------------------------------------------


class Kill(BaseException):
    """Stands for SIGKILL: not an Exception, so nothing on the way catches it."""


def three_subscribers(make_site):
    site = make_site(THREE)
    site.add_story("world", "World story", sources=2)
    site.add_story("business", "Business story")
    return site


def outbox_files(site):
    return sorted(
        str(p.relative_to(site.dir / "outbox")) for p in (site.dir / "outbox").rglob("*.eml")
    )


def test_kill_after_recording_before_any_file_is_repaired_by_the_next_run(make_site, monkeypatch):
    clean = three_subscribers(make_site)
    clean.build()
    expected = {p.name: p.read_bytes() for p in (clean.dir / "outbox" / "pending").iterdir()}

    site = three_subscribers(make_site)
    real = pipeline._write_groups

    def killed(*args, **kwargs):
        raise Kill

    monkeypatch.setattr(pipeline, "_write_groups", killed)
    with pytest.raises(Kill):
        site.build()
    assert outbox_files(site) == []
    assert len(site.store.unwritten_editions("daily")) == 3  # chosen and recorded
    monkeypatch.setattr(pipeline, "_write_groups", real)
    site.clock.advance(timedelta(minutes=10))  # rerun a little later: the same edition
    reports = site.build(scheduled_for=CUTOFF)
    assert len(reports) == 3 and all(r.recovered for r in reports)
    written = {p.name: p.read_bytes() for p in (site.dir / "outbox" / "pending").iterdir()}
    assert written == expected  # byte for byte what an uninterrupted run writes
    assert site.store.unwritten_editions("daily") == []


def test_kill_between_two_renames_writes_each_message_exactly_once(make_site, monkeypatch):
    site = three_subscribers(make_site)
    real = os.replace
    renames = []

    def dies_on_second(src, dst):
        if "/pending/" in str(dst):
            renames.append(dst)
            if len(renames) == 2:
                raise Kill
        return real(src, dst)

    with monkeypatch.context() as patch:
        patch.setattr(os, "replace", dies_on_second)
        with pytest.raises(Kill):
            site.build()
    assert len(outbox_files(site)) == 1
    first = next((site.dir / "outbox" / "pending").glob("*.eml"))
    before = first.read_bytes()
    # The first message was already sent when the rerun happens: it stays sent, alone.
    outbox.mark_sent(site.dir / "outbox", first.name)
    reports = site.build()
    assert sum(r.recovered for r in reports) == 3
    files = outbox_files(site)
    assert len(files) == 3 and f"sent/{first.name}" in files
    assert (site.dir / "outbox" / "sent" / first.name).read_bytes() == before
    outbox.clean_temp(site.dir / "outbox")  # what the daemon does at start-up
    assert not list((site.dir / "outbox").rglob(".tmp-*"))


def test_kill_after_writing_before_marking_writes_nothing_twice(make_site, monkeypatch):
    site = three_subscribers(make_site)
    real = Store.mark_written

    def killed(self, ids, now):
        raise Kill

    monkeypatch.setattr(Store, "mark_written", killed)
    with pytest.raises(Kill):
        site.build()
    before = {p: p.read_bytes() for p in (site.dir / "outbox" / "pending").iterdir()}
    assert len(before) == 3
    monkeypatch.setattr(Store, "mark_written", real)
    reports = site.build()
    assert sum(r.recovered for r in reports) == 3
    assert {p: p.read_bytes() for p in (site.dir / "outbox" / "pending").iterdir()} == before
    assert site.store.unwritten_editions("daily") == []
    # and the stories stay delivered: the next day has nothing new
    site.clock.advance(timedelta(days=1))
    assert {r.skipped for r in site.build()} == {"nothing new"}


def test_version_3_editions_migrate_as_written(tmp_path):
    path = tmp_path / "old.sqlite3"
    store = Store.open(f"sqlite:///{path}")
    store.close()
    con = sqlite3.connect(path)
    con.execute("update schema_version set version = 3")
    con.execute("drop index ix_editions_recipient_cutoff")
    con.execute("alter table editions drop column written_at")
    con.execute("alter table editions drop column last_story_id")
    con.execute(
        "insert into editions (digest, recipient, edition_key, cutoff, built_at, message_name,"
        " story_count) values ('daily', 'a@x', 'k', '2026-11-23 07:00:00.000000',"
        " '2026-11-23 07:00:01.000000', 'm.eml', 0)"
    )
    con.commit()
    con.close()
    store = Store.open(f"sqlite:///{path}")
    try:
        assert store.version() == SCHEMA_VERSION
        assert store.unwritten_editions("daily") == []
        mark = store.last_editions("daily")["a@x"]
        assert mark.last_story_id is None and mark.cutoff.isoformat().startswith("2026-11-23T07")
    finally:
        store.close()


# -- one rendering per topic set, then personalised ---------------------------------------------


def test_rendered_once_per_topic_set_and_personalised_per_recipient(make_site, monkeypatch):
    odd = "  - email: o'brien+news&co@example.org\n"
    site = make_site(THREE + odd, base_url="https://brief.example.org/")
    site.add_story("world", "World story", sources=2)
    site.add_story("business", "Business story")
    renders = []
    real = render.render_shared

    def counting(*args, **kwargs):
        renders.append(1)
        return real(*args, **kwargs)

    monkeypatch.setattr(render, "render_shared", counting)
    site.build()
    assert len(renders) == 2  # all topics; world only
    msgs = site.messages()
    assert set(msgs) == {
        "ann@example.org",
        "bob@example.org",
        "cat@example.org",
        "o'brien+news&co@example.org",
    }
    assert headlines(msgs["cat@example.org"].html) == ["World story"]
    for address, m in msgs.items():
        url = pipeline.unsubscribe_url(site.config, site.config.digests[0], address)
        assert url and url.startswith("https://brief.example.org/")  # its form: issue 8
        assert m.msg["List-Unsubscribe"] == (
            f"<mailto:brief@example.org?subject=unsubscribe%20daily>, <{url}>"
        )
        assert m.msg["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
        doc = lxml.html.document_fromstring(m.html)
        footer = doc.find_class("ft")[0]
        assert f"You get this because {address} is subscribed" in footer.text_content()
        assert next(a for a in footer.iter("a") if a.text == "Unsubscribe").get("href") == url
        assert f"Unsubscribe: {url}" in m.text
        assert address in " ".join(m.text.split())
        # nothing of another recipient leaks in
        others = [a for a in msgs if a != address]
        assert not any(o in m.html or o in m.text for o in others)
    raw = msgs["o'brien+news&co@example.org"].html
    assert "o'brien+news&co@" not in raw  # escaped in the HTML source
    assert "o&#39;brien+news&amp;co@example.org" in raw


def test_heading_and_footer_name_the_digest_by_its_title_never_its_key(make_site):
    bare = make_site(sender="brief@example.org", digest_extra=", title: Town Hall Notes")
    bare.add_story("world", "World story")
    bare.build()
    m = bare.messages()["reader@example.org"]
    doc = lxml.html.document_fromstring(m.html)
    assert doc.find(".//h1").text_content() == "Town Hall Notes"  # no display name to use
    why = " ".join(doc.find_class("ft")[0].find(".//p").text_content().split())
    assert why == "You get this because reader@example.org is subscribed to Town Hall Notes."
    assert why in " ".join(m.text.split())
    named = make_site(digest_extra=", title: Weekly Roundup")  # sender "Morning Brief"
    named.add_story("world", "World story")
    named.build()
    text = " ".join(named.messages()["reader@example.org"].text.split())
    assert "reader@example.org is subscribed to Weekly Roundup from Morning Brief." in text
    # The key stays where it does a job: the list headers.
    assert "unsubscribe%20daily" in named.messages()["reader@example.org"].msg["List-Unsubscribe"]


def test_placeholders_in_feed_text_are_not_filled_in(make_site):
    """A feed cannot guess the per-render placeholders, so it cannot make a headline show a
    recipient's unsubscribe link."""
    site = make_site(base_url="https://brief.example.org")
    site.add_story("world", "AGGunsubX AGGwhyX <b>bold</b>")
    site.build()
    m = site.messages()["reader@example.org"]
    assert headlines(m.html) == ["AGGunsubX AGGwhyX <b>bold</b>"]


def test_without_base_url_only_mailto(make_site):
    site = make_site()
    site.add_story("world", "World story")
    site.build()
    m = site.messages()["reader@example.org"].msg
    assert m["List-Unsubscribe"] == "<mailto:brief@example.org?subject=unsubscribe%20daily>"
    assert m["List-Unsubscribe-Post"] is None
    assert pipeline.unsubscribe_url(site.config, site.config.digests[0], "a@b") is None


# -- preview ----------------------------------------------------------------------------------


def test_preview_renders_the_next_edition_and_records_nothing(make_site):
    site = make_site(THREE)
    site.add_story("world", "World story")
    site.add_story("business", "Business story")
    report = pipeline.preview_edition(
        site.config, site.store, site.clock, subscriber="Cat@Example.org"
    )
    assert report.path.parent == site.dir / "outbox" / "previews"
    assert headlines(report.path.read_text("utf-8")) == ["World story"]
    assert (report.recipient, report.topics, report.stories) == ("cat@example.org", ("world",), 1)
    assert site.store.last_editions("daily") == {}
    assert outbox_files(site) == []
    by_topics = pipeline.preview_edition(
        site.config, site.store, site.clock, topics=["business", "tech"]
    )
    assert headlines(by_topics.path.read_text("utf-8")) == ["Business story"]
    assert by_topics.path != report.path
    # the real edition afterwards is unchanged by the previews
    site.build()
    assert headlines(site.messages()["cat@example.org"].html) == ["World story"]


def test_preview_shows_the_edition_the_schedule_builds_next(make_site):
    # The evening before, the preview is tomorrow's 07:00 edition: its name, its date, its
    # window (a first edition: the 24 h before it), not an edition "now".
    site = make_site()
    site.add_story("world", "Before tomorrow's window", at=CUTOFF - timedelta(hours=1))
    site.add_story("world", "Evening story", at=CUTOFF + timedelta(hours=10))
    site.clock.set(CUTOFF + timedelta(hours=15))  # 22:00 in London
    report = pipeline.preview_edition(site.config, site.store, site.clock)
    assert report.due == CUTOFF + timedelta(days=1)
    assert report.edition_key == "2026-11-25T0700-daily"
    html = report.path.read_text("utf-8")
    assert headlines(html) == ["Evening story"]
    assert "Wednesday 25 November" in html and "Tuesday 24 November" not in html
    site.store.close()
    args = ["--config", str(site.dir / "feeds.yaml"), "preview"]
    result = CliRunner().invoke(cli, args, obj=SimpleNamespace(clock=site.clock))
    assert result.exit_code == 0, result.output
    assert "2026-11-25T0700-daily" in result.output
    assert "due Wed 25 Nov 2026 07:00 GMT, as it stands now" in result.output
    site.store = Store.open(f"sqlite:///{site.dir / 'data' / 'aggregator.sqlite3'}")
    # At the edition's own minute, the preview is that edition, the one the build makes.
    site.clock.set(CUTOFF + timedelta(days=1))
    again = pipeline.preview_edition(site.config, site.store, site.clock)
    [built] = site.build()
    assert again.edition_key == built.edition_key
    assert headlines(again.path.read_text("utf-8")) == headlines(
        site.messages()["reader@example.org"].html
    )


def test_preview_of_a_subscriber_defaults_to_the_first_digest_they_get(make_site):
    weekly = '  weekly: {schedule: "0 8 * * 1", subject: "Weekly"}\n'
    site = make_site("  - email: ann@example.org\n    digests: [weekly]\n", more_digests=weekly)
    site.add_story("world", "World story")
    report = pipeline.preview_edition(
        site.config, site.store, site.clock, subscriber="ann@example.org"
    )
    assert report.digest == "weekly"
    with pytest.raises(ValueError, match="does not get the 'daily' digest"):
        pipeline.preview_edition(
            site.config, site.store, site.clock, digest="daily", subscriber="ann@example.org"
        )


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"topics": ["nope"]}, "unknown topic"),
        ({"subscriber": "nobody@example.org"}, "no subscriber"),
        ({"digest": "weekly"}, "unknown digest"),
    ],
)
def test_preview_refuses_unknown_names(make_site, kwargs, message):
    site = make_site()
    with pytest.raises(ValueError, match=message):
        pipeline.preview_edition(site.config, site.store, site.clock, **kwargs)


def test_preview_command_says_where_the_file_is(make_site):
    site = make_site(THREE)
    site.add_story("world", "World story")
    site.store.close()
    runner = CliRunner()
    args = ["--config", str(site.dir / "feeds.yaml"), "preview", "--topics", "world,business"]
    result = runner.invoke(cli, args, obj=SimpleNamespace(clock=site.clock))
    assert result.exit_code == 0, result.output
    assert "1 stories in world" in result.output
    path = result.output.strip().splitlines()[-1].removeprefix("preview: ")
    assert headlines(Path(path).read_text("utf-8")) == ["World story"]
    bad = runner.invoke(cli, [*args[:3], "--topics", "nope"], obj=SimpleNamespace(clock=site.clock))
    assert bad.exit_code == 2 and "unknown topic(s): nope" in bad.output
    site.store = Store.open(f"sqlite:///{site.dir / 'data' / 'aggregator.sqlite3'}")


def test_digest_command_answers_an_unknown_digest_with_the_digests_there_are(make_site):
    site = make_site()
    site.store.close()
    args = ["--config", str(site.dir / "feeds.yaml"), "digest", "--digest", "dayly"]
    result = CliRunner().invoke(cli, args, obj=SimpleNamespace(clock=site.clock))
    assert result.exit_code == 2
    assert "unknown digest(s): dayly" in result.output
    assert f"(the digests of {site.dir / 'feeds.yaml'}: daily)" in result.output
    site.store = Store.open(f"sqlite:///{site.dir / 'data' / 'aggregator.sqlite3'}")


def test_every_topic_has_a_section_title_in_order(make_site):
    site = make_site()
    for t in reversed(TOPICS):
        site.add_story(t, f"Story about {t}")
    site.build()
    doc = lxml.html.document_fromstring(site.messages()["reader@example.org"].html)
    assert [h.text_content() for h in doc.iter("h2")] == [t.title() for t in TOPICS]


def test_message_parses_with_the_strict_parser(make_site):
    site = make_site()
    site.add_story("world", "Café story — ünïcode ✓", lead="Déjà vu.")
    site.build()
    data = site.messages()["reader@example.org"].path.read_bytes()
    msg = parse_eml(data)
    assert msg.defects == [] and all(p.defects == [] for p in msg.walk())
    assert [p.get_content_type() for p in msg.iter_parts()] == ["text/plain", "text/html"]
    assert render.message_bytes(msg) == data  # what we wrote is what the parser reads back


def test_resume_writes_what_a_killed_run_recorded_and_starts_nothing_new(make_site, monkeypatch):
    site = three_subscribers(make_site)

    def killed(*args, **kwargs):
        raise Kill

    with monkeypatch.context() as patch:
        patch.setattr(pipeline, "_write_groups", killed)
        with pytest.raises(Kill):
            site.build()
    site.add_story("world", "Arrived after the crash", at=CUTOFF + timedelta(minutes=30))
    site.clock.advance(timedelta(hours=1))
    site.store.close()
    runner = CliRunner()
    args = ["--config", str(site.dir / "feeds.yaml"), "digest", "--resume"]
    result = runner.invoke(cli, args, obj=SimpleNamespace(clock=site.clock))
    assert result.exit_code == 0, result.output
    assert result.output.count("(recovered from an interrupted run)") == 3
    again = runner.invoke(cli, args, obj=SimpleNamespace(clock=site.clock))
    assert "nothing to resume" in again.output
    site.store = Store.open(f"sqlite:///{site.dir / 'data' / 'aggregator.sqlite3'}")
    assert set(site.store.last_editions("daily")) == {
        "ann@example.org",
        "bob@example.org",
        "cat@example.org",
    }
    assert {m.cutoff for m in site.store.last_editions("daily").values()} == {CUTOFF}
    assert len(outbox_files(site)) == 3
