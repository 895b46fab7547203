"""Headline, lead, canonical link, time and identity from raw entries (pure)."""

from __future__ import annotations

import time
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from aggregator.extract import (
    ExtractInputs,
    anchored_entries,
    canonical_link,
    cut_at_sentence,
    disambiguate_keys,
    entry_fingerprints,
    extract_item,
    headline,
    lead_paragraph,
    one_item_per_link,
    plain_text,
    unchanged_entries,
)
from tests.builders import raw_entry

NOW = datetime(2026, 11, 24, 6, 0, tzinfo=UTC)
F = "https://example.org/feed.xml"


entry = raw_entry


def test_scraped_page_furniture_is_skipped_and_trailer_dropped():
    html = (
        "<p>Connect with us</p><p>World</p><p>Published</p><p>on</p>"
        "<h1>Ceasefire talks resume in Doha</h1><p>By Jane Doe</p>"
        "<p>Negotiators met again on Monday. Both sides called the talks constructive.</p>"
        "<p>Continue Reading</p>"
    )
    assert lead_paragraph([html], headline="Ceasefire talks resume in Doha") == (
        "Negotiators met again on Monday. Both sides called the talks constructive."
    )


def test_wordpress_appeared_first_on_is_removed():
    html = (
        "<p>New release is out today. Get it now!</p>"
        "<p>The post Release 2 appeared first on Blog.</p>"
    )
    assert lead_paragraph([html]) == "New release is out today. Get it now!"
    inline = "Short summary of the post. [&#8230;] The post X appeared first on Y."
    assert lead_paragraph([inline]) == "Short summary of the post."


def test_a_credit_line_inside_a_sentence_goes_whole():
    # Google Testing Blog: "A version of this post originally appeared in ..." lost only its
    # credit and left "A version of" hanging at the end of the lead.
    html = (
        "<span>This is another post in our <a href='/c'>Code Health</a> series. A version of "
        "this post originally appeared in Google bathrooms worldwide as a Google Testing on "
        "the Toilet episode. You can download a printer-friendly version.</span>"
    )
    assert lead_paragraph([html]) == "This is another post in our Code Health series."
    story = "The council approved the plan on Tuesday."
    assert (
        lead_paragraph([f"<p>{story} The piece was originally published on The Conversation.</p>"])
        == story
    )
    # "The post X appeared first on Y" starts its own sentence: everything before it stays
    assert lead_paragraph([f"<p>{story} The post X appeared first on Y.</p>"]) == story


def test_a_byline_after_the_last_sentence_is_dropped():
    # InfoQ: "<p>Summary. <i>By Mirko Stocker</i></p>"
    text = "We talked to the founder to learn what their target audience is."
    for byline in ("By Mirko Stocker", "By Dionysios G. Synodinos", "By Jane Doe and John Smith"):
        assert lead_paragraph([f"<p>{text} <i>{byline}</i></p>"]) == text
    # Google Testing Blog: "<i>By: Patrik Höglund</i><br><i>This is the third article ...</i>"
    assert lead_paragraph([f"<i>By: Patrik Höglund</i><br><i>{text}</i>"]) == text
    assert lead_paragraph([f"<p>{text} By: Patrik Höglund</p>"]) == text
    # words that only look like one stay: a sentence goes on, or ends with a full stop
    for kept in ("The vote is on Friday. By then", "He said so. By Christmas the shops"):
        assert lead_paragraph([f"<p>{kept}</p>"]) == kept


STORY = "The council approved the new housing plan on Tuesday after a long debate."


@pytest.mark.parametrize(
    "html",
    [
        # a cookie notice scraped with the page
        "<p>We use cookies to improve your experience on our site. By continuing to browse, you"
        " agree to our use of cookies.</p><p>{s}</p>",
        "<div>This website uses cookies. Accept all cookies</div><p>{s}</p>",
        # labels of a link to another story
        "<p>Also read: Council faces budget gap</p><p>{s}</p>",
        "<p>WATCH: Mayor speaks to reporters</p><p>{s}</p>",
        # site junk after the story's last sentence
        "<p>{s} © 2026 City News. All rights reserved.</p>",
        "<p>{s} Copyright 2026 City News</p>",
        "<p>{s} 12 Comments</p>",
        "<p>{s} <a href='/x'>More…</a></p>",
        "<p>{s} Story continues below advertisement</p>",
        "<p>{s} Click here to read more.</p>",
        "<p>{s} Support our journalism: become a member today.</p>",
        "<p>{s} (Photo by John Smith/Getty Images)</p>",
        # a photo's caption over the story is skipped; as the only text it is the story
        "<p><img src='a.jpg'> A view of the chamber. (Getty Images)</p><p>{s}</p>",
    ],
)
def test_modern_site_junk_is_not_the_lead(html):
    assert lead_paragraph([html.format(s=STORY)], headline="Council approves plan") == STORY


def test_news_about_cookies_and_credits_stays():
    for text in (
        "Regulators fined the retailer over its cookie consent banner, which hid the reject "
        "button.",
        "The bakery sold 12,000 cookies at the fair. Organisers praised the volunteers.",
        f"{STORY} (via City News)",
    ):
        assert lead_paragraph([f"<p>{text}</p>"]) == text


def test_a_lead_the_feed_cut_on_a_word_no_sentence_ends_with_is_marked():
    # podcast subtitles and Blogger summaries stop at N characters, mid-sentence
    cut = "Then we get into the news. Is Valve going to let you resell your games? Weird! The"
    assert lead_paragraph([f"<p>{cut}</p>"]) == cut + "…"
    assert lead_paragraph([f"<p>{cut[:-4]} and</p>"]) == cut[:-4] + " and…"
    for whole in (
        "The startup said on Monday that it had raised money in a Series A",
        "In Italia l'uomo è accusato di essere il mandante di un presunto delitto d'onore",
        "The council approved the plan on Tuesday. Residents will vote in May",
    ):
        assert lead_paragraph([f"<p>{whole}</p>"]) == whole


@pytest.mark.parametrize(
    "trailer",
    [
        "Leia mais",
        "Leia mais (09/24/2018 - 19h22)",
        "Continue lendo »",
        "Lire la suite...",
        "Weiterlesen",
        "Mehr lesen ›",
        "Leer más",
        "Seguir leyendo →",
        "Continua a leggere",
        "Leggi tutto",
        "Lees meer",
        "Czytaj dalej",
        "<a href='https://ex.org/a'>Leia mais</a>",
        "[Lire la suite]",
    ],
)
def test_read_more_trailers_in_other_languages_are_dropped(trailer):
    text = "O governo anunciou o plano nesta segunda-feira. A oposição criticou a medida."
    assert lead_paragraph([f"<p>{text} {trailer}</p>"]) == text
    # a trailer link glued to a text cut short by the feed
    cut = "O termo de renovação do programa foi assinado pela prefeitura e pelo Sesc"
    assert lead_paragraph([f"{cut} {trailer}"]) in (cut, cut + "…")


@pytest.mark.parametrize(
    "trailer",
    [
        "Read more...",
        "Read more…",
        "Read More ...",
        "<a href='https://ex.org/a'>Read more...</a>",
        "Read more at Example.com",
        "Read more at Example.com.",
        "Continue reading at Example",
        "Continue reading at Example.",
        "Read the full story at X",
        "Read the full story at The Daily Example.",
        "Read more of this story at Slashdot.",
        "Read more.",
        "Read more here.",
        "Continue reading.",
        "Read the story here.",
        "Read the full article here.",
        "Read it here!",
    ],
)
def test_english_read_more_trailers_with_dots_or_a_site_are_dropped(trailer):
    text = "The council approved the plan on Tuesday. Residents will vote in May."
    assert lead_paragraph([f"<p>{text} {trailer}</p>"]) == text
    assert lead_paragraph([f"<p>{text}<br>{trailer}</p>"]) == text  # a line of its own
    assert lead_paragraph([f"<p>{trailer}</p><p>{text}</p>"]) == text  # a block of its own


# One at least for each phrase of extract._AFTER_SENTENCE_NEEDS, which decide what blocks the
# trailer pattern is tried on: a phrase missing there leaves its trailer in the lead.
@pytest.mark.parametrize(
    "trailer",
    [
        "continue reading at Example",
        "KEEP READING.",
        "Read it now.",
        "View the original post",
        "More »",
        "(more)",
        "Click here for the full story",
        "See more",
        "Originally published at Example.com",
        "This article was posted by Example.",
        "This post is posted by Example",
        "This entry is posted under News.",
        "This story was published by Example.",
        "Sign up for our daily newsletter",
        "Subscribe to the Example newsletter today",
        "Get the latest news in your inbox",
        "Get our free briefing in your inbox",
        "Thanks for reading!",
        "Share on Facebook",
        "Follow us on Twitter",
        "Like us on Facebook",
        "Click to share",
        "Leave a Reply",
        "Filed under: Politics",
        "Tagged: council, vote",
        "Tags: council",
        "Categories: Local",
        "Posted in: Local",
        "Related: Other story",
        "(Reporting by Jane Doe; Editing by John Smith)",
        "Advertisement",
        "STORY CONTINUES BELOW",
        "More...",
        "More…",
        "12 comments",
        "© 2025 Example Media",
        "Copyright 2025 Example",
        "(c) 2025 Example",
        "Support independent journalism today",
        "(Photo: Jane Doe/Example)",
        "(Images via Example)",
        "(Picture: Example)",
        "(File photo)",
        "\u017fhare this",  # "ſhare": re.IGNORECASE reads the long s as an s
    ],
)
def test_every_kind_of_trailer_after_a_sentence_is_dropped(trailer):
    text = "The council approved the plan on Tuesday. Residents will vote in May."
    assert lead_paragraph([f"<p>{text} {trailer}</p>"]) == text


@pytest.mark.parametrize(
    ("text", "trailer"),
    [
        ("The council will share this plan with residents before the vote in May.", "Share this:"),
        ("Fans who follow us on the tour will see the new stage, the band said.", "Follow us on X"),
        ("The advertisement was pulled after complaints, the regulator said.", "Advertisement"),
    ],
)
def test_a_trailer_is_dropped_when_its_phrase_also_appears_earlier_mid_sentence(text, trailer):
    # the first, mid-sentence match ran to the end of the block and hid the trailer after it
    assert lead_paragraph([f"<p>{text} {trailer}</p>"]) == text


def test_a_hostile_run_of_mid_sentence_trailer_phrases_is_read_quickly():
    # each mid-sentence "share this" is a match to the end of the block, looked past one by one
    html = "<p>The council met. " + "we will share this plan " * 2000 + "</p>"
    started = time.perf_counter()
    lead_paragraph([html], limit=20000)
    assert time.perf_counter() - started < 0.5


def test_a_lead_the_feed_cut_on_a_comma_ends_with_an_ellipsis_not_the_comma():
    cut = "Also this week we talk Nintendo, getting big, Las Vegas"
    assert lead_paragraph([f"<p>{cut},</p>"]) == cut + "…"
    assert lead_paragraph([f"<p>{cut} \u2014</p>"]) == cut + "…"
    # the trailer went, the comma before it with it
    text = "The council approved the plan on Tuesday after a long debate, officials said"
    assert lead_paragraph([f"<p>{text}, Read more...</p>"]) == text + "…"
    # a statement's semicolon is not a cut
    assert lead_paragraph(["<p>SELECT * FROM cars;</p>"]) == "SELECT * FROM cars;"


def test_english_read_more_words_inside_a_sentence_stay():
    for text in (
        "Read more at the library, she said, because it is quiet there.",
        "She wants pupils to read more at Example.com and at home.",
        "Children who read more at home do better at school, the study says.",
        "Read the full story at X and you will see why they quit.",
        "Read the report here and there, the teacher said.",
    ):
        assert lead_paragraph([f"<p>{text}</p>"]) == text


def test_a_comparison_with_see_more_or_read_more_is_not_a_trailer():
    # "See more than ..." was cut as a "See more" link when the feed ended the block there
    story = "The museum reopened on Saturday after a two-year renovation."
    for text in ("See more than 200 works…", "Read more than 50 books a year…"):
        assert lead_paragraph([f"<p>{story} {text}</p>"]) == f"{story} {text}"
    for trailer in ("See more", "See more photos…", "Read more", "Read More…"):
        assert lead_paragraph([f"<p>{story} {trailer}</p>"]) == story


def test_a_reviews_closing_read_it_is_the_reviews_own_sentence_not_a_trailer():
    # "Read it here!" points to the story; "Read it." alone is the reviewer's verdict
    for text in (
        "It is the finest novel of the decade, funny and wise. Read it.",
        "Forget the hype: this is a careful, generous book. Read it!",
    ):
        assert lead_paragraph([f"<p>{text}</p>"]) == text


def test_a_paragraph_starting_with_a_longer_word_than_a_furniture_label_is_story():
    # "Subscribe..." and "Reading time: 3 min" are furniture; "Subscribers ..." (a real feed's
    # announcement) and "Reading times ..." begin sentences
    for text in (
        "Subscribers to the Rails Spinoffs mailing list should switch to our new, better-named"
        " list: Prototype & script.aculo.us.",
        "Reading times for children have halved in a decade, a survey of 2,000 parents found.",
    ):
        assert lead_paragraph([f"<p>{text}</p><p>{STORY}</p>"]) == text
    for furniture in ("Subscribe", "Subscribe to our podcast", "Reading time: 3 min"):
        assert lead_paragraph([f"<p>{furniture}</p><p>{STORY}</p>"]) == STORY


def test_a_story_that_opens_like_a_newsletter_pitch_but_goes_on_about_the_news_is_the_lead():
    # "Want more ...?" and "Don't miss ..." open real leads too: the whole paragraph was
    # dropped as a pitch and the lead came from the next paragraph
    for text in (
        "Want more evidence that the housing market is cooling? Sales fell 12% in March, the"
        " steepest drop since 2009, and prices slipped for a third month in a row.",
        "Want more proof that remote work is here to stay? A survey of 3,000 employers found"
        " that six in ten plan to keep hybrid schedules next year.",
        "Don't miss the latest updates on the storm: the National Weather Service expects ten"
        " inches of rain in the valley by Friday.",
        "Don't miss the eclipse tonight: the moon will cover the sun at 3:12 pm, and the next"
        " one will not be seen here until 2044.",
    ):
        assert lead_paragraph([f"<p>{text}</p><p>{STORY}</p>"]) == text
    for pitch in (
        "Want more stories like this? Sign up for our newsletter.",
        "Want more? Subscribe to our daily briefing.",
        "Want more stories like this?",
        "Don't miss our top stories — get the newsletter",
        "Don't miss a story. Get our free newsletter in your inbox every morning.",
        "Support independent journalism by becoming a member today.",
        "This newsletter is free, but paid subscribers keep it going.",
        "Join the 40,000 subscribers who get our newsletter.",
    ):
        assert lead_paragraph([f"<p>{pitch}</p><p>{STORY}</p>"]) == STORY


def test_a_pitch_written_with_an_apostrophe_is_dropped_like_one_without():
    # "You're reading ..." never matched (the rule wanted "you 're"), nor "Don’t miss" or
    # "You’re" with a typographic apostrophe: the pitch was the digest's lead
    for pitch in (
        "You're reading the free edition of Example Weekly.",
        "You’re reading the free edition of Example Weekly. Upgrade to paid for the full issue.",
        "Don’t miss our top stories — get the newsletter",
    ):
        assert lead_paragraph([f"<p>{pitch}</p><p>{STORY}</p>"]) == STORY
    for text in (
        "You’re reading this because the council met on Tuesday and voted to close the library.",
        "Don’t miss the eclipse tonight: the moon will cover the sun at 3:12 pm, and the next"
        " one will not be seen here until 2044.",
    ):
        assert lead_paragraph([f"<p>{text}</p><p>{STORY}</p>"]) == text


def test_a_hostile_pitch_of_many_sentences_is_read_quickly():
    # each sentence of a block that starts like a pitch is read for what it is about
    for html in ("<p>Want more? " + "Sign up. " * 5000 + "</p>", "<p>Want more? " + "our " * 20000):
        started = time.perf_counter()
        lead_paragraph([html], limit=20000)
        assert time.perf_counter() - started < 0.5


def test_an_elision_inside_the_text_is_not_the_feeds_cut():
    # "[…]" at the end is the feed cutting its summary short; inside the text it elides words
    # of a quote (real feeds: a blog quoting a release note, a law, a book)
    for text in (
        "Rails will continue their recent embrace of Rack, which [..] will improve the state of"
        " modular, sharable logic between applications.",
        'The law says the name "[...] shall not contain the word exchange", the court ruled.',
    ):
        assert lead_paragraph([f"<p>{text}</p>"]) == text
    cut = "The council approved the plan on Tuesday after a long"
    for trailer in (" […]", " [...] Continue reading →", " [&hellip;] Read more"):
        assert lead_paragraph([f"<p>{cut}{trailer}</p>"]) == cut + "…"


def test_a_trailer_phrase_joined_to_a_hyphen_or_an_opening_quote_is_inside_the_sentence():
    # real feeds: the rest of the lead went from "-advertisement" or from "Copyright (c)
    for text in (
        "We all read his code. That was how he wanted us to know him, not through the"
        " self-advertisement and vanity journalism of the Web today.",
        'Just because you can slap a "Copyright (c) 37signals, LLC" sticker on everything you'
        " touch does not mean you should.",
    ):
        assert lead_paragraph([f"<p>{text}</p>"]) == text
    story = "The council approved the plan on Tuesday."
    for trailer in (" - Advertisement", " -- Share this", " | Share this"):
        assert lead_paragraph([f"<p>{story}{trailer}</p>"]) == story


def test_a_paragraph_that_starts_like_a_credit_but_goes_on_is_the_story():
    # reddit's "Source: I'm a ..." opens a post's own text; the whole post had no lead
    text = (
        "Source: I'm a landscaper, and I actually enjoy working for people when they take a"
        " couple minutes to shoot the breeze. It makes me want to do a better job than usual."
    )
    assert lead_paragraph([f"<p>{text}</p>"]) == text
    for credit in (
        "Source: New York Times.",
        "Image credit: Shannon Cherry of Be Heard Solutions",
        "Photo: Jane Doe/Reuters. Used with permission.",
    ):
        assert lead_paragraph([f"<p>{credit}</p><p>{STORY}</p>"]) == STORY


def test_a_first_sentence_about_a_photo_agency_or_copyright_is_not_a_credit():
    # the story's first sentence was dropped as a credit: the lead came from the next one
    for text in (
        "Getty Images agreed to merge with Shutterstock in a $3.7bn deal.",
        "Getty Images CEO Craig Peters said the deal would close next year.",
        "Copyright lawsuits against AI companies are piling up.",
        "Shutterstock shares rose 5% on Tuesday.",
        "Courtesy of a tip from a reader, police found the stolen car within hours.",
    ):
        assert lead_paragraph([f"<p>{text}</p><p>{STORY}</p>"]) == text
    for credit in (
        "Getty Images",
        "Getty Images via AFP",
        "Getty Images for the Recording Academy",
        "Shutterstock / Jane Doe",
        "Copyright 2024 Example Ltd. All rights reserved.",
        "Copyright © 2024 Example Media",
        "© Reuters",
        "(c) AP",
        "Courtesy of the artist",
        "Courtesy of the artist and Example Gallery, New York",
    ):
        assert lead_paragraph([f"<p>{credit}</p><p>{STORY}</p>"]) == STORY


def test_a_first_sentence_that_starts_with_a_labels_words_is_not_a_label():
    # "Posted in ...", "Filed under ...", "Sign up ..." open labels; the story's first sentence
    # was dropped as one, and the lead came from the next paragraph
    for text in (
        "Posted in 1998, the letter was never delivered.",
        "Posted in the mail on Friday, the ballots arrived late.",
        "Filed under seal, the complaint names three executives.",
        "Sign up rates for the program doubled in March.",
        "Follow-up talks are set for Monday.",
    ):
        assert lead_paragraph([f"<p>{text}</p><p>{STORY}</p>"]) == text
    for label in (
        "Posted in Politics, World",
        "Posted in Uncategorized.",
        "Filed under: Tech",
        "Filed under Courts, Local News",
        "Sign up for our newsletter.",
        "Sign up to get the latest news.",
        "Follow us on Twitter",
    ):
        assert lead_paragraph([f"<p>{label}</p><p>{STORY}</p>"]) == STORY


def test_a_sentence_about_advertisement_is_not_an_advertisement_label():
    text = "Meta said profit rose. Advertisement revenue grew 20% to 40 billion dollars, it said."
    assert lead_paragraph([f"<p>{text}</p>"]) == text
    story = "The council approved the plan on Tuesday."
    for label in ("Advertisement", "ADVERTISEMENT Story continues below", "Advertisement The"):
        assert lead_paragraph([f"<p>{story} {label}</p>"]) == story


def test_a_lone_block_of_read_more_and_its_object_is_the_lead_rather_than_none():
    # maybe a resolution, maybe a link to more stories: the lead when nothing else is
    assert lead_paragraph(["<p>Read more books…</p>"]) == "Read more books…"
    assert lead_paragraph(["<p>Read more books...</p>"]) == "Read more books..."
    story = "The council approved the plan on Tuesday."
    assert lead_paragraph([f"<p>Read more books…</p><p>{story}</p>"]) == story
    assert lead_paragraph(["<p><a href='https://ex.org/'>Read more stories…</a></p>"]) == ""
    assert lead_paragraph(["<p>Read more news at Example.com</p>"]) == ""
    # a summary with a paragraph beats it too
    assert lead_paragraph(["<p>Read more books…</p>", story]) == story


def test_read_more_words_inside_a_sentence_stay():
    for text in (
        "O ministro disse que quem quiser leia mais sobre o plano no site oficial.",
        "Die Studie zeigt, dass Kinder mehr lesen, wenn Eltern vorlesen.",
        "Los expertos recomiendan leer más libros durante el verano.",
    ):
        assert lead_paragraph([f"<p>{text}</p>"]) == text


@pytest.mark.parametrize(
    "byline",
    [
        "Author: Jane Doe",
        "Autor: João Silva",
        "Autora: Maria Souza",
        "Auteur : Jean Dupont",
        "Por João Silva, da Folha",
        # a byline that lists several people with their roles
        "<i>By Mike Aizatsky, Kostya Serebryany (Software Engineers, Dynamic Tools); Oliver"
        " Chang, Abhishek Arya (Security Engineers, Google Chrome); and Meredith Whittaker"
        " (Open Research Lead).&nbsp;</i><br>",
    ],
)
def test_a_byline_block_before_or_after_the_story_is_not_the_lead(byline):
    story = "Negotiators met again on Monday. Both sides called the talks constructive."
    assert lead_paragraph([f"<p>{byline}</p><p>{story}</p>"]) == story
    # after a last line with no full stop, broken off by <br>: not run into it
    assert lead_paragraph([f"{story[:-1]}<br>{byline}"]) == story[:-1]


def test_sentences_that_start_like_a_byline_stay():
    for text in (
        "By now you have no doubt heard about the issue with the licence agreement.",
        "By popular demand, Scott and Aswath Damodaran discuss topics in cryptocurrency.",
        "By Monday, Apple and Google had both agreed to the terms.",
        "Por causa da chuva, o jogo entre Santos e Palmeiras foi adiado.",
        "Autor: o ministério não quis comentar o caso.",
    ):
        assert lead_paragraph([f"<p>{text}</p>"]) == text


def test_craigslist_show_contact_info_button_is_not_in_the_lead():
    button = '\n <a class="showcontact" href="/fb/sfo/apa/6" title="click to show contact info">'
    button += "show contact info</a>\n"
    listing = (
        f"Contact info: Nancy Barrera | {button}| {button} Carriage House Apartments,"
        " 38725 Lexington St, Fremont. Bedrooms: 1 Bed. Parking: 1 Carport."
    )
    assert lead_paragraph([listing]) == (
        "Contact info: Nancy Barrera Carriage House Apartments, 38725 Lexington St, Fremont."
        " Bedrooms: 1 Bed. Parking: 1 Carport."
    )
    viewing = f"Please contact Ma Properties at {button}if you wish to schedule a viewing."
    assert "show contact info" not in lead_paragraph([viewing])


def test_a_paragraph_ended_by_br_and_its_element_is_not_run_into_the_next():
    html = (
        "<p>Ousted president's private messages reveal admission of defeat<br></p>"
        "<p>The ousted Catalan president has admitted that it is over.</p>"
    )
    assert lead_paragraph([html]) == (
        "Ousted president's private messages reveal admission of defeat"
    )
    # a line broken by <br> inside one paragraph still goes on, and into a quote it opens
    assert lead_paragraph(["<p>Ferries stayed in<br>harbour on Monday.</p><p>Next.</p>"]) == (
        "Ferries stayed in harbour on Monday."
    )
    assert lead_paragraph(["Steve says<br><blockquote>it was 20x faster.</blockquote>"]) == (
        "Steve says it was 20x faster."
    )


def test_a_headline_cut_short_from_the_post_leaves_the_lead_whole():
    text = "Hey friends! Wanted to pop in and let you know that this year's calendars are out."
    title = "Hey friends! Wanted to pop in and let you know that this..."
    assert lead_paragraph([f"<p>{text}</p>"], headline=title) == text
    item = extract_item(entry(title=title, summary_html=f"<p>{text}</p>"), feed_url=F, now=NOW)
    assert item is not None and item.lead == text


def test_a_first_paragraph_the_headline_repeats_gives_way_to_the_next():
    title = "Hi friends!I am so happy to announce that my latest book,..."
    html = "<p>Hi friends!</p><p>I am so happy to announce that my latest book is out.</p>"
    item = extract_item(entry(title=title, summary_html=html), feed_url=F, now=NOW)
    assert item is not None
    assert item.lead == "I am so happy to announce that my latest book is out."
    # only whole words of the headline: "Hi friend" is not in "Hi friends ..."
    assert lead_paragraph(["<p>Hi friend.</p><p>Next.</p>"], headline=title) == "Hi friend."
    # a line that goes on after a <br> is not a paragraph of its own
    lyric = "<p>Blinded by the light,<br>revved up like a deuce.</p><p>Next.</p>"
    assert lead_paragraph([lyric], headline="Blinded by the light, revved up") == (
        "Blinded by the light, revved up like a deuce."
    )


def test_bidi_overrides_are_dropped_so_text_shows_as_it_reads():
    assert plain_text("Pay \u202eevil\u202c now \u2067x\u2069") == "Pay evil now x"


def test_script_and_style_text_never_reaches_a_headline():
    assert plain_text("Fire <script>alert(1)</script>drill <style>p {}</style>today") == (
        "Fire drill today"
    )
    assert plain_text("&lt;script&gt;alert(1)&lt;/script&gt; Sanctions widen") == (
        "Sanctions widen"
    )
    assert plain_text("How to use the &lt;script&gt; tag") == "How to use the tag"


def test_comparison_signs_in_a_headline_are_text_not_markup():
    # HTML opens a tag only with a letter, "/", "!" or "?" after "<" (what browsers do)
    assert plain_text("Why 2<3 and 5>4 matters") == "Why 2<3 and 5>4 matters"
    assert plain_text("When a < b and c > d, sort") == "When a < b and c > d, sort"
    assert plain_text("I &lt;3 Python &amp; x <- y") == "I <3 Python & x <- y"
    assert plain_text("A <i>tale</i> <!-- note --> told") == "A tale told"


def test_a_techmeme_style_headline_and_source_label_are_not_the_lead():
    html = (
        '<p><a href="https://techmeme.example/p99">#</a> Laszlo Bock / '
        '<a href="https://googleblog.example/">The Official Google Blog</a>:<br>'
        '<span><b><a href="https://googleblog.example/x">Announcing Google\'s Employee Option '
        "Exchange Program</a></b></span>&nbsp; &mdash;&nbsp; Today we announced our plans to "
        "do something more for our employees.</p>"
    )
    headline = "Announcing Google's Employee Option Exchange Program (Laszlo Bock/Google Blog)"
    assert lead_paragraph([html], headline=headline) == (
        "Today we announced our plans to do something more for our employees."
    )
    dashed = "<p>Q&amp;A: Microsoft defends return to DRM — Microsoft unveiled a music service.</p>"
    assert lead_paragraph([dashed], headline="Q&A: Microsoft defends return to DRM (PC Pro)") == (
        "Microsoft unveiled a music service."
    )


def test_a_headline_that_runs_on_into_the_first_sentence_stays_in_it():
    text = "<p>Ruby 1.9.1 Release Candidate 2 has been released. I will upgrade.</p>"
    assert lead_paragraph([text], headline="Ruby 1.9.1 Release Candidate 2") == (
        "Ruby 1.9.1 Release Candidate 2 has been released. I will upgrade."
    )
    text = "<p>Behavior-Driven Development (BDD) has been tugging at my brain for months.</p>"
    assert lead_paragraph([text], headline="Behavior-Driven Development").startswith(
        "Behavior-Driven Development (BDD)"
    )


def test_wire_dateline_stays():
    text = "<p>KYIV, Sept 7 (Reuters) - Russia launched drones overnight, officials said.</p>"
    assert lead_paragraph([text]).startswith("KYIV, Sept 7 (Reuters) - Russia")


def test_long_lead_is_cut_at_a_sentence_with_ellipsis():
    sentences = " ".join(f"Sentence number {n} says something." for n in range(30))
    lead = lead_paragraph([f"<p>{sentences}</p>"], limit=100)
    assert len(lead) <= 102
    assert lead.endswith("…")
    assert "Sentence number 0 says something." in lead


def test_short_lead_has_no_ellipsis():
    assert cut_at_sentence("Just one.", 400) == "Just one."


def test_entities_decoded_even_when_escaped_twice():
    assert plain_text("Tom &amp;amp; Jerry &lt;b&gt;live&lt;/b&gt;") == "Tom & Jerry live"
    assert headline("<b>Big</b> &amp; bold") == "Big & bold"


def test_site_suffix_dropped_only_when_it_names_the_feed():
    assert headline("Rates rise - Example News", feed_name="Example News") == "Rates rise"
    assert headline("Rates rise | Example", feed_title="Example") == "Rates rise"
    assert headline("Tom - Jerry reunion", feed_name="Example News") == "Tom - Jerry reunion"


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("HTTP://Example.COM:80/a?utm_source=x&id=3&fbclid=z#frag", "http://example.com/a?id=3"),
        ("https://ex.org:443/p?gclid=1&mc_cid=2&mc_eid=3&ref=rss", "https://ex.org/p"),
        ("javascript:alert(1)", None),
        ("data:text/html,hi", None),
        ("file:///etc/passwd", None),
        # credentials are dropped: the host a reader sees is the host the link goes to
        ("https://www.bbc.co.uk@evil.example/news", "https://evil.example/news"),
        ("https://user:secret@Ex.org:8443/a", "https://ex.org:8443/a"),
        # Google Alerts links go through Google: the article is the link
        (
            "https://www.google.com/url?rct=j&sa=t&url=https://news.example/a%3Fid%3D3"
            "%26utm_source%3Dga&ct=ga&cd=CAIy&usg=AFQjCN",
            "https://news.example/a?id=3",
        ),
        (
            "https://www.google.co.uk/url?q=https%3A%2F%2Fnews.example%2Fb&sa=U",
            "https://news.example/b",
        ),
        (
            "https://www.google.com/url?url=javascript:alert(1)",
            "https://www.google.com/url?url=javascript:alert(1)",
        ),
        (
            "https://www.google.com/search?q=https://x.example",
            "https://www.google.com/search?q=https://x.example",
        ),
        # Medium's "came from the feed" marker; another source= stays
        ("https://medium.com/p/abc?source=rss----d12c403d4976---4", "https://medium.com/p/abc"),
        ("https://ex.org/a?source=web&x=1", "https://ex.org/a?source=web&x=1"),
        # a redirector with the article's URL in its path after "*" (Folha, UOL)
        (
            "https://redir.folha.com.br/redir/online/emcimadahora/rss091/"
            "*https://www1.folha.uol.com.br/mercado/2026/11/x.shtml",
            "https://www1.folha.uol.com.br/mercado/2026/11/x.shtml",
        ),
        (
            "http://redir.example/r/*http://News.Example:80/a?utm_source=rss&id=3#top",
            "http://news.example/a?id=3",
        ),
        (
            "https://r1.example/*https://r2.example/x/*https://news.example/b",
            "https://news.example/b",
        ),
        ("https://r.example/go/*https://", "https://r.example/go/*https://"),
        ("https://r.example/go/*javascript:alert(1)", "https://r.example/go/*javascript:alert(1)"),
        ("https://ex.org/find?q=*https://x.example", "https://ex.org/find?q=*https://x.example"),
    ],
)
def test_canonical_link(raw, expected):
    assert canonical_link(raw) == expected


def test_relative_link_resolved_and_feedburner_origlink_preferred():
    e = entry(
        title="T",
        link="https://feeds.feedburner.com/~r/x/~3/abc",
        orig_link="https://site.example/story?utm_medium=rss",
    )
    assert extract_item(e, feed_url="https://feeds.feedburner.com/x", now=NOW).link == (
        "https://site.example/story"
    )
    e = entry(title="T", link="/posts/1")
    assert extract_item(e, feed_url="https://blog.example/feed.xml", now=NOW).link == (
        "https://blog.example/posts/1"
    )


def test_posts_at_anchors_of_one_page_keep_their_own_links():
    day = "http://scripting.example/2026/11/24.html"
    entries = [
        entry(summary_html="<p>First post of the day.</p>", link=f"{day}#a090000"),
        entry(summary_html="<p>Second post, later on.</p>", link=f"{day}#a120000"),
        entry(summary_html="<p>A third one?utm_source=x</p>", link=f"{day}?utm_source=rss#a150000"),
    ]
    anchored = anchored_entries(entries, ExtractInputs(feed_url=f"{day}.rss"))
    assert anchored == {0, 1, 2}  # one page once the tracking parameter is gone
    links = [
        extract_item(e, feed_url=f"{day}.rss", now=NOW, anchored=i in anchored).link
        for i, e in enumerate(entries)
    ]
    assert links == [f"{day}#a090000", f"{day}#a120000", f"{day}#a150000"]


def test_a_lone_fragment_is_still_dropped():
    story = "https://news.example/story"

    def anchored(*links: str) -> set[int]:
        return anchored_entries([entry(link=u) for u in links], ExtractInputs(feed_url=story))

    assert anchored(f"{story}#comments", "https://x.example/") == set()
    assert anchored(f"{story}#top", f"{story}#top") == set()  # one place, not two posts
    # a page and an anchor on it: the anchored entry keeps its fragment, the page has none
    assert anchored(story, f"{story}#update") == {1}
    item = extract_item(entry(title="T", link=f"{story}#comments"), feed_url=story, now=NOW)
    assert item.link == story


def test_untitled_item_gets_headline_from_text_marked_generated():
    e = entry(
        summary_html="<p>Just shipped the new version. It has dark mode.</p>",
        link="https://m.example/@a/1",
    )
    item = extract_item(e, feed_url="https://m.example/@a.rss", now=NOW)
    assert item.title == "Just shipped the new version."
    assert item.title_generated


def test_published_falls_back_and_future_dates_are_clamped():
    e = entry(title="T", updated=NOW - timedelta(hours=2))
    assert extract_item(e, feed_url="https://x.example/", now=NOW).published_at == (
        NOW - timedelta(hours=2)
    )
    e = entry(title="T", published=NOW + timedelta(days=3))
    assert extract_item(e, feed_url="https://x.example/", now=NOW).published_at == NOW


def test_key_falls_back_from_guid_to_link_to_hash():
    u = "https://x.example/"
    assert extract_item(entry(title="T", guid="g-1", link="/a"), feed_url=u, now=NOW).key == "g-1"
    assert extract_item(entry(title="T", link="/a"), feed_url=u, now=NOW).key == (
        "https://x.example/a"
    )
    assert extract_item(entry(title="T"), feed_url=u, now=NOW).key.startswith("hash:")


def test_repeated_guid_in_one_feed_is_disambiguated():
    u = "https://x.example/"
    a = extract_item(entry(title="A", guid="same", link="/a"), feed_url=u, now=NOW)
    b = extract_item(entry(title="B", guid="same", link="/b"), feed_url=u, now=NOW)
    keys = [i.key for i in disambiguate_keys([a, b, a])]
    assert len(keys) == 2 and len(set(keys)) == 2


def test_of_copies_with_one_link_the_later_is_kept_unless_only_the_earlier_has_a_lead():
    u = "https://x.example/"

    def item(guid, link, lead):
        e = entry(title="Dam opens", guid=guid, link=link, summary_html=lead)
        return extract_item(e, feed_url=u, now=NOW)

    rich, bare = "The dam opened on Tuesday.", ""
    other = item("o", "/other", "Another story today.")
    kept = one_item_per_link([item("1", "/a", rich), other, item("2", "/a", bare)])
    assert [(i.key, i.lead) for i in kept] == [("1", rich), ("o", other.lead)]
    # the later copy wins when it has a lead too, or neither has one (under the first key)
    edited = "The dam opened on Tuesday, a day late."
    kept = one_item_per_link([item("1", "/a", rich), item("2", "/a", edited)])
    assert [(i.key, i.guid, i.lead) for i in kept] == [("1", "2", edited)]
    neither = one_item_per_link([item("1", "/a", bare), item("2", "/a", bare)])
    assert [(i.key, i.guid) for i in neither] == [("1", "2")]
    assert len(one_item_per_link([item("1", None, rich), item("2", None, bare)])) == 2


def test_entries_under_one_link_with_their_own_guid_and_headline_are_separate_items():
    # A podcast (or a status page) links every episode to the show's page.
    u = "https://show.example/"
    episodes = [
        extract_item(
            entry(title=f"Episode {n}", guid=f"ep-{n}", link="/", summary_html=f"Guest {n}."),
            feed_url=u,
            now=NOW,
        )
        for n in range(1, 132)
    ]
    kept = one_item_per_link(disambiguate_keys(episodes))
    assert [i.key for i in kept] == [f"ep-{n}" for n in range(1, 132)]
    assert {i.link for i in kept} == {u}


def test_entries_under_one_link_are_copies_under_one_headline_or_without_guids():
    u = "https://x.example/"

    def item(guid, title):
        return extract_item(entry(title=title, guid=guid, link="/a"), feed_url=u, now=NOW)

    def titles(*items):
        return [i.title for i in one_item_per_link(disambiguate_keys(items))]

    # the same headline, folded: a copy whatever its GUID
    assert titles(item("1", "Dam opens"), item("2", "DAM OPENS!")) == ["DAM OPENS!"]
    # no GUID on either: the link is all that names them
    assert titles(item(None, "Dam opens"), item(None, "Dam shut")) == ["Dam shut"]
    # a GUID tells them apart, on one side or on both (one GUID under two headlines: pasted)
    for guids in [("1", "2"), (None, "2"), ("1", None), ("1", "1")]:
        assert titles(*map(item, guids, ["Dam opens", "Dam shut"])) == ["Dam opens", "Dam shut"]
    # an entry without GUID among many with: a copy of none of them
    many = [item(f"ep-{n}", f"Episode {n}") for n in range(3)]
    assert len(titles(many[0], item(None, "Trailer"), *many[1:])) == 4


def test_entry_with_nothing_is_dropped_and_unsafe_image_refused():
    assert extract_item(entry(), feed_url="https://x.example/", now=NOW) is None
    e = entry(title="T", image_url="javascript:alert(1)")
    assert extract_item(e, feed_url="https://x.example/", now=NOW).image_url is None


def test_editors_extend_the_tracking_list(tmp_path):
    from aggregator.config import load_config

    path = tmp_path / "feeds.yaml"
    path.write_text(
        "settings:\n  tracking_params: [Partner, emc, 'sh_*']\nfeeds:\n  - url: https://x.example/feed\n",
        encoding="utf-8",
    )
    extra = load_config(path).settings.tracking_params
    assert extra == ("partner", "emc", "sh_*")
    link = "https://x.example/a?partner=rss&emc=rss&sh_kw=1&sh_=2&id=7"
    assert canonical_link(link, extra_tracking=extra) == "https://x.example/a?id=7"
    assert canonical_link(link) == link


def test_bad_tracking_param_names_are_reported(tmp_path):
    from aggregator.config import load_config
    from aggregator.errors import ConfigError

    path = tmp_path / "feeds.yaml"
    path.write_text(
        "settings:\n  tracking_params: ['a b']\nfeeds:\n  - url: https://x.example/feed\n",
        encoding="utf-8",
    )
    with pytest.raises(ConfigError, match="tracking_params: not a query parameter name"):
        load_config(path)


@pytest.mark.parametrize(
    ("title", "names", "expected"),
    [
        (
            "France beats Spain - World Cup",
            {"feed_title": "World"},
            "France beats Spain - World Cup",
        ),
        ("Story | BBC News", {"feed_name": "BBC"}, "Story"),
        ("Story - Guardian", {"feed_title": "The Guardian World news"}, "Story"),
        ("Deal agreed - Reuters", {"source_name": "Reuters"}, "Deal agreed"),
        ("New phone review - Ars Technica", {"feed_name": "arstechnica.com"}, "New phone review"),
        ("Example News | Budget passes", {"feed_name": "Example News"}, "Budget passes"),
        (
            "東京都、給食を無償化へ｜東都ニュース",
            {"feed_title": "東都ニュース"},
            "東京都、給食を無償化へ",
        ),
        ("Untitled", {}, ""),
    ],
)
def test_site_names_are_dropped_from_headlines_only_when_they_name_the_site(title, names, expected):
    assert headline(title, **names) == expected


@pytest.mark.parametrize(
    ("text", "limit", "expected"),
    [
        (
            "KYIV, Sept. 7 (Reuters) - Drones hit the city. Five were hurt.",
            50,
            "KYIV, Sept. 7 (Reuters) - Drones hit the city. …",
        ),
        (
            "東京都は23日、方針を明らかにした。対象は60万人。費用は年間約300億円。",
            20,
            "東京都は23日、方針を明らかにした。…",
        ),
        (
            "Dr. J. K. Smith spoke. The U.S. Senate agreed on Monday.",
            30,
            "Dr. J. K. Smith spoke. …",
        ),
        (
            "One long sentence without any full stop that goes on and on",
            30,
            "One long sentence without any…",
        ),
    ],
)
def test_cuts_fall_after_whole_sentences(text, limit, expected):
    assert cut_at_sentence(text, limit) == expected


def test_a_lead_after_more_furniture_than_the_first_blocks_read_is_still_found():
    html = (
        "<p>By Jane Doe</p><p>Photo: Reuters</p><p>Share on Facebook</p><p>Updated 2 hours ago</p>"
        "<p>The city council voted on Tuesday to rebuild the old harbour bridge by 2028.</p>"
        "<p>Second paragraph.</p>"
    )
    assert lead_paragraph([html]) == (
        "The city council voted on Tuesday to rebuild the old harbour bridge by 2028."
    )


def test_a_sentence_broken_over_more_lines_than_the_first_blocks_read_is_joined_up():
    html = (
        "<p>The council voted<br>on Tuesday to<br>rebuild the old<br>harbour bridge<br>by 2028.</p>"
    )
    assert (
        lead_paragraph([html])
        == "The council voted on Tuesday to rebuild the old harbour bridge by 2028."
    )


def test_entry_fingerprint_changes_with_the_entry_and_with_what_extraction_reads():
    inputs = ExtractInputs(feed_url="https://n.example/feed")
    a = entry(guid="1", title="Rates rise", link="https://n.example/1")
    b = entry(guid="2", title="Rates fall", link="https://n.example/2")
    base = entry_fingerprints([a, b], inputs)
    assert len(set(base)) == 2
    assert entry_fingerprints([a, b], inputs) == base
    edited = entry(guid="1", title="Rates rise", link="https://n.example/1", author="Ann")
    assert entry_fingerprints([edited, b], inputs)[1] == base[1]
    assert entry_fingerprints([edited, b], inputs)[0] != base[0]
    assert entry_fingerprints([a, b], inputs, anchored=[0])[0] != base[0]
    for changed in (
        dict(feed_url="https://other.example/feed"),  # relative links resolve elsewhere
        dict(feed_name="N"),  # " - N" is cut from headlines
        dict(feed_title="N"),
        dict(lead_chars=200),
        dict(extra_tracking=("src",)),
    ):
        assert entry_fingerprints([a, b], replace(inputs, **changed))[0] != base[0], changed


def test_entry_fingerprints_tell_apart_entries_whose_fields_run_together():
    inputs = ExtractInputs(feed_url="https://n.example/feed")
    alike = [
        entry(guid="1", content_html=("ab", "c")),
        entry(guid="1", content_html=("a", "bc")),
        entry(guid="1", content_html=("abc",)),
        entry(guid="1", content_html=("abc",), summary_html=""),
        entry(guid="1", content_html=("abc",), summary_html="s"),
        entry(guid="1", content_html=("abc", "s")),
        entry(guid="1", categories=("a|b",)),
        entry(guid="1", categories=("a", "b")),
        entry(guid="1", title=""),
        entry(guid="1", title="n"),
        entry(guid="1", title="s1:x"),
        entry(guid="1", title="\ud800"),
        entry(guid="1", title="\\ud800"),
        entry(guid="1", published=NOW),
        entry(guid="1", updated=NOW),
        entry(guid="1", published=NOW + timedelta(seconds=1)),
        entry(guid="1"),
        entry(guid="1", link="1"),
        entry(guid="11"),
    ]
    assert len(set(entry_fingerprints(alike, inputs))) == len(alike)


def test_only_entries_with_a_settled_key_are_skipped_when_unchanged():
    inputs = ExtractInputs(feed_url="https://n.example/feed")
    a, b = entry(guid="1", title="A"), entry(link="https://n.example/b?utm_source=x", title="B")
    prints = entry_fingerprints([a, b], inputs)
    assert unchanged_entries([a, b], prints, set(prints), inputs) == {0, 1}
    assert unchanged_entries([a, b], prints, {prints[1]}, inputs) == {1}
    assert unchanged_entries([a, b], prints, set(), inputs) == set()
    # Keys settled among all entries (a content hash, a suffix): every entry is extracted.
    keyless = entry(title="C")
    prints = entry_fingerprints([a, keyless], inputs)
    assert unchanged_entries([a, keyless], prints, set(prints), inputs) == set()
    twin = entry(link="https://n.example/b?utm_medium=y", title="B again")  # same canonical link
    prints = entry_fingerprints([b, twin], inputs)
    assert unchanged_entries([b, twin], prints, set(prints), inputs) == set()


def test_entries_under_one_link_are_skipped_all_together_or_not_at_all():
    # one_item_per_link chooses among them: a copy without lead alone must not replace the other
    inputs = ExtractInputs(feed_url="https://n.example/feed")
    one, other = (entry(guid=g, title="Dam opens", link="/a") for g in ("1", "2"))
    alone = entry(guid="3", title="Elsewhere", link="/b")
    prints = entry_fingerprints([one, other, alone], inputs)
    assert unchanged_entries([one, other, alone], prints, set(prints), inputs) == {0, 1, 2}
    assert unchanged_entries([one, other, alone], prints, {prints[0], prints[2]}, inputs) == {2}


def test_a_short_question_on_a_line_of_its_own_is_joined_by_the_paragraph_answering_it():
    html = (
        '<font size="4">What is changing?</font><br /><br /> Starting June 30, you will no '
        "longer be able to upload Flash display ads. Existing Flash ads stop serving in "
        "January.<br /><br />If you have video ads, they are not affected."
    )
    assert lead_paragraph([html]) == (
        "What is changing? Starting June 30, you will no longer be able to upload Flash "
        "display ads. Existing Flash ads stop serving in January."
    )
    # several questions are a lead of their own, as is a question the feed gives alone
    many = "<p>Are you stressed? Feeling overwhelmed?</p><p>Join our class on Monday at six.</p>"
    assert lead_paragraph([many]) == "Are you stressed? Feeling overwhelmed?"
    assert lead_paragraph(["<p>Should I use a rules engine?</p>"]) == (
        "Should I use a rules engine?"
    )


@pytest.mark.parametrize(
    "html",
    [
        # a short question, then a hostile answer
        "<p>What?</p><p>Answer" + ". read more here" * 1500 + " x</p>",
        # a line broken with <br>, then a hostile rest
        "<p>Start of a line<br>cont" + ". read more here" * 1500 + " x</p>",
    ],
)
def test_a_hostile_block_joined_to_the_lead_is_read_no_further_than_the_first(html):
    # the first block is cut before its trailers are looked for; one joined to it was read
    # whole, and stripping its trailers one by one took seconds
    started = time.perf_counter()
    lead_paragraph([html])
    assert time.perf_counter() - started < 0.5


def test_a_hostile_run_of_abbreviations_is_read_once():
    # lines broken with <br> and no full stop are joined into one text; each "Mr." in it was
    # checked as an abbreviation by reading its sentence from the start (12 s for 60 KB)
    html = "<p>" + ("Mr. " * 250 + "x<br>") * 60 + "</p>"
    started = time.perf_counter()
    lead_paragraph([html])
    assert time.perf_counter() - started < 0.5


def test_a_long_run_of_digits_before_comments_is_read_once():
    # "12 Comments" after the last sentence is a trailer; a hostile run of digits made its
    # pattern try every digit of the run from every digit of it
    html = "<p>The council met. " + "1" * 20000 + " comments x</p>"
    started = time.perf_counter()
    lead_paragraph([html], limit=20000)
    assert time.perf_counter() - started < 0.5


def test_news_using_a_cookie_notices_words_is_not_a_cookie_notice():
    # a cookie notice's phrases are also a sentence of a story: the whole paragraph went
    for text in (
        "By continuing to use coal, the country will miss its climate targets, the report says.",
        "Websites can no longer force users to accept cookies, the court ruled on Tuesday.",
        "Google changes cookie settings in Chrome for millions of users in Europe.",
    ):
        assert lead_paragraph([f"<p>{text}</p><p>{STORY}</p>"]) == text
    # the notice itself, or its buttons as blocks of their own, still go
    for notice in (
        "By continuing to use this site you consent to the use of cookies.",
        "Accept all cookies",
        "Cookie settings",
    ):
        assert lead_paragraph([f"<p>{notice}</p><p>{STORY}</p>"]) == STORY


def test_a_label_over_nothing_else_is_the_story():
    # "WATCH: ..." over a story links elsewhere; alone it describes the story (it was dropped
    # and the item had no lead at all)
    for text in (
        "WATCH: Dramatic footage shows the bridge collapsing after a cargo ship struck it.",
        "More: the council also voted to raise parking fees in the city centre next year",
    ):
        assert lead_paragraph([f"<p>{text}</p>"]) == text
        assert lead_paragraph([f"<p>{text}</p><p>{STORY}</p>"]) == STORY
