"""aggregator: poll RSS/Atom/JSON feeds, deduplicate and sort stories, e-mail a daily digest.

The pipeline, stage by stage (each stage is one module; see ``pipeline`` for the sequencing)::

    config   feeds.yaml -> Config (frozen, validated, every error with file:line)
    fetch    FeedSource + validators -> FetchResult        (HTTP / file:, async, bounded)
    parse    FetchResult.body + headers -> ParsedFeed      (the only feedparser caller; JSON Feed)
    extract  RawEntry -> Item (headline, lead, canonical link, dates, key)   (pure)
    store    Items, polls, stories, editions, messages <-> SQLite (the only SQL)
    digest   stored stories + subscriber + now -> Edition  (pure choice of stories)
    render   Edition -> HTML/text -> MIME message          (jinja2 + premailer)
    outbox   message -> outbox/pending/*.eml, atomically
"""

__version__ = "0.1.0"
