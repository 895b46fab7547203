"""Article pages: a lead for new items whose feed gave none (per feed: ``fetch_article: true``).

    wanted(items, known_keys, known_links)     pure: the new items (key and link not stored
                                               yet) with an http(s) link and no lead, in feed
                                               order, at most MAX_ARTICLES
    article_lead(body, url=, headline=, limit=)
                                               pure: page bytes -> its first real paragraph:
                                               trafilatura keeps the main text (navigation,
                                               comments, boilerplate gone), then
                                               extract.lead_paragraph skips what furniture is
                                               left and cuts at a sentence near `limit`
    fetch_article_leads(items, ...)            async: fetch.fetch_many over the wanted items'
                                               links, under the feeds' own limits (size cap,
                                               timeout, schemes, redirects, private-address
                                               guard) -> {item key: lead}
    with_article_lead(item, lead)              the item with that lead; content_hash kept

The content hash stays what the feed said, so the next poll of an unchanged feed finds the
stored item unchanged and leaves the article's lead alone; an edit in the feed replaces it.

Why trafilatura: maintained, well tested on news sites (the Readability/jusText baselines are
built in as fallbacks), pure Python on lxml, which we already use. It brings dateparser,
htmldate, courlan and justext (a few MB, no compiled code besides lxml and regex).
"""

from __future__ import annotations

import logging
from collections.abc import Collection, Mapping, Sequence
from dataclasses import replace

from .clock import Clock
from .extract import DEFAULT_LEAD_CHARS, lead_paragraph, safe_http_url
from .fetch import DEFAULT_PER_HOST, DEFAULT_TIMEOUT, DEFAULT_USER_AGENT, fetch_many
from .records import FeedSource, FetchResult, Item, PollOutcome

log = logging.getLogger("aggregator.article")

MAX_ARTICLES = 20  # pages fetched for one feed in one poll (a new feed's backlog is not crawled)
MAX_ARTICLE_BYTES = 5 * 1024 * 1024  # unless the feed's own cap is smaller
HTML_TYPES = ("text/html", "application/xhtml+xml", "")  # "": no Content-Type; sniffed


def wanted(
    items: Sequence[Item],
    *,
    known_keys: Collection[str] = (),
    known_links: Collection[str] = (),
    limit: int = MAX_ARTICLES,
) -> list[Item]:
    """The items worth an article fetch: new to the store, with a link, without a lead."""
    chosen: list[Item] = []
    seen: set[str] = set()
    for item in items:
        if item.lead or not item.link or safe_http_url(item.link) is None:
            continue
        if item.key in known_keys or item.link in known_links or item.link in seen:
            continue
        seen.add(item.link)
        chosen.append(item)
        if len(chosen) >= limit:
            break
    return chosen


def article_lead(
    body: bytes,
    *,
    url: str,
    headline: str = "",
    limit: int = DEFAULT_LEAD_CHARS,
    content_type: str = "",
) -> str:
    """The first real paragraph of an article page, as plain text ("" when none is found)."""
    kind = content_type.split(";", 1)[0].strip().lower()
    if kind not in HTML_TYPES or not body.strip():
        return ""
    import trafilatura  # here: polls without fetch_article never pay for the import

    main = trafilatura.extract(
        body,
        url=url,
        output_format="html",
        include_comments=False,
        include_tables=False,
        include_images=False,
        include_links=False,
        favor_precision=True,
        deduplicate=False,
    )
    if not main:
        return ""
    return lead_paragraph([main], headline=headline, limit=limit)


def with_article_lead(item: Item, lead: str) -> Item:
    """The item with the article's lead; its content hash stays the feed's (see above)."""
    return replace(item, lead=lead) if lead else item


async def fetch_article_leads(
    items: Sequence[Item],
    *,
    clock: Clock,
    lead_chars: int = DEFAULT_LEAD_CHARS,
    max_bytes: int = MAX_ARTICLE_BYTES,
    user_agent: str = DEFAULT_USER_AGENT,
    timeout: float = DEFAULT_TIMEOUT,
    concurrency: int = 4,
    per_host: int = DEFAULT_PER_HOST,
    block_private_addresses: bool = False,
) -> dict[str, str]:
    """Fetch each item's page and make its lead: {item key: lead}, leads found only.

    Pages are fetched like feeds (fetch.fetch_many), so the same size cap, overall timeout,
    redirect rules and address guard apply. A page that fails is logged and skipped.
    """
    by_link: dict[str, list[Item]] = {}
    for item in items:
        if item.link and safe_http_url(item.link):
            by_link.setdefault(item.link, []).append(item)
    if not by_link:
        return {}
    sources = [FeedSource(url=link, max_bytes=max_bytes) for link in by_link]
    results = await fetch_many(
        sources,
        clock=clock,
        user_agent=user_agent,
        concurrency=concurrency,
        per_host=per_host,
        timeout=timeout,
        block_private_addresses=block_private_addresses,
    )
    leads: dict[str, str] = {}
    for result in results:
        for item in by_link.get(result.url, ()):
            lead = _lead_from(result, item, lead_chars)
            if lead:
                leads[item.key] = lead
    return leads


def _lead_from(result: FetchResult, item: Item, limit: int) -> str:
    if result.outcome is not PollOutcome.UPDATED or result.body is None:
        log.info("article=%s status=%s error=%r", result.url, result.outcome.value, result.error)
        return ""
    headers: Mapping[str, str] = result.headers
    lead = article_lead(
        result.body,
        url=result.final_url,
        headline=item.title,
        limit=limit,
        content_type=headers.get("content-type", ""),
    )
    log.info("article=%s status=ok lead=%d", result.url, len(lead))
    return lead
