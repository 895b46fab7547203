"""Topic assignment: keywords, plurals, accents, headline weight, feed prior, exclusions,
patterns, aliases, weights, the model's share, and filters."""

from __future__ import annotations

import pytest

from aggregator.categorize import (
    FALLBACK_TOPIC,
    Rules,
    categorize,
    filter_item,
    fingerprint,
    frequent_words,
    label_items,
)
from aggregator.config import FallbackTopic, FilterRule, Filters, Topic

TOPICS = (
    Topic("world", "World", ("ukraine", "russia", "north korea", "sanction")),
    Topic("business", "Business", ("economy", "market", "earnings")),
)


def test_headline_keyword_wins():
    choice = categorize("Russia and North Korea sign deal", "", topics=TOPICS, feed_topic=None)
    assert choice.topic == "world"
    assert "headline:north korea" in choice.evidence


def test_plural_and_accent_tolerant():
    assert (
        categorize("Markets rally as economies recover", "", topics=TOPICS, feed_topic=None).topic
        == "business"
    )
    accented = (Topic("world", "World", ("kyiv",)), Topic("x", "X", ("cafe",)))
    assert categorize("Le CAFÉ reopens", "", topics=accented, feed_topic=None).topic == "x"


def test_word_boundaries_are_respected():
    assert (
        categorize("Prussian history exhibit", "", topics=TOPICS, feed_topic=None).topic
        == FALLBACK_TOPIC
    )


@pytest.mark.parametrize(
    ("keyword", "headline"),
    [
        ("医生", "上海医生罢工"),  # Chinese has no spaces between words
        ("東京", "東京都で地震"),
        ("서울", "서울에서 시위"),  # Korean joins particles to the noun
        ("c++", "C++26 is out"),  # a keyword ending in a sign: no word boundary after it
        ("c++", "What C++ developers want"),
        (".net", "Microsoft ships .NET 9"),
        ("#metoo", "The #MeToo movement, five years on"),
    ],
)
def test_keywords_in_unspaced_scripts_and_with_signs_are_found(keyword, headline):
    topics = (Topic("x", "X", (keyword,)),)
    assert categorize(headline, "", topics=topics, feed_topic=None).topic == "x"


@pytest.mark.parametrize(
    ("keyword", "headline"),
    [
        ("ai", "Aid convoy reaches the city"),
        ("#metoo", "Metoo"),
        ("c++", "C is old"),
        # Georgian spaces its words: 'ომი' (war) is not in 'კომიტეტი' (committee)
        ("ომი", "კომიტეტი აკვირდება არჩევნებს"),
    ],
)
def test_a_keyword_with_signs_still_needs_its_letters_whole(keyword, headline):
    topics = (Topic("x", "X", (keyword,)),)
    assert categorize(headline, "", topics=topics, feed_topic=None).topic == FALLBACK_TOPIC


def test_headline_outweighs_lead_and_feed_prior_breaks_silence():
    choice = categorize(
        "Earnings season opens", "Officials in Ukraine said", topics=TOPICS, feed_topic=None
    )
    assert choice.topic == "business"
    assert categorize("Quiet day", "", topics=TOPICS, feed_topic="world").topic == "world"


def test_nothing_matches_goes_to_fallback():
    assert (
        categorize("Cat rescued from tree", "", topics=TOPICS, feed_topic=None).topic
        == FALLBACK_TOPIC
    )


# -- exclusions, patterns, aliases, weight --------------------------------------------------

HEALTH = Topic("health", "Health", ("drug", "hospital"), exclude=("doping",))
SPORT = Topic("sport", "Sport", ("tennis",))


def test_an_exclusion_word_vetoes_the_topic():
    choice = categorize(
        "Tennis star banned after drug test", "A doping panel ruled.", topics=(HEALTH, SPORT)
    )
    assert choice.topic == "sport"
    health = next(s for s in choice.scores if s.topic == "health")
    assert (health.total, health.excluded) == (0.0, ("doping",))


def test_patterns_score_like_keywords_headline_above_lead():
    topics = (Topic("science", "Science", patterns=(r"\bCOP\d+\b",)),)
    headline = categorize("COP29 opens in Baku", "", topics=topics)
    lead = categorize("Talks open", "Delegates gather for COP29.", topics=topics)
    assert (headline.topic, headline.score, headline.evidence) == (
        "science",
        2.0,
        (r"headline:/\bCOP\d+\b/",),
    )
    assert (lead.score, lead.evidence) == (1.0, (r"lead:/\bCOP\d+\b/",))


def test_feed_categories_count_only_through_aliases():
    topics = (Topic("world", "World", aliases=("World News",)), Topic("business", "Business"))
    # The feed filed it under "Business": no alias says so, so the label is no evidence.
    assert categorize("Envoy visits", "", topics=topics, categories=("Business",)).fallback
    choice = categorize("Envoy visits", "", topics=topics, categories=("world news",))
    assert (choice.topic, choice.evidence) == ("world", ("category:World News",))


def test_topic_weight_breaks_a_close_call():
    a = Topic("a", "A", ("vote",))
    b = Topic("b", "B", ("vote",), weight=1.5)
    assert categorize("The vote", "", topics=(a, b)).topic == "b"


def test_threshold_and_fallback_key_are_settings():
    topics = (Topic("world", "World", ("ukraine",)),)
    assert categorize("x", "Ukraine", topics=topics).topic == "world"
    high = categorize("x", "Ukraine", topics=topics, threshold=1.5, fallback="other")
    assert (high.topic, high.fallback, high.evidence) == ("other", True, ("lead:ukraine",))


class FakeModel:
    """A TopicScorer that believes what it is told."""

    def __init__(self, probabilities):
        self.p = probabilities

    def probabilities(self, texts):
        return [dict(self.p) for _ in texts]

    def top_terms(self, headline, lead, topic, n):
        return [("deal", 0.5)]

    def top_terms_many(self, texts, topics, n):
        return [self.top_terms(h, lead, t, n) for (h, lead), t in zip(texts, topics, strict=True)]


def item(title, lead="", link=None, author=None, categories=()):
    return _Item(title, lead, link, author, categories)


class _Item:
    def __init__(self, title, lead, link, author, categories):
        self.title, self.lead, self.link = title, lead, link
        self.author, self.categories = author, tuple(categories)


def test_the_model_adds_its_confidence_above_chance_times_the_weight_strong_rules_win():
    rules = Rules(topics=TOPICS, model_weight=4.0)
    model = FakeModel({"world": 0.2, "business": 0.8})
    # No keyword: the model decides, and its terms are kept as evidence.
    [quiet] = label_items([item("Talks on a new deal")], rules=rules, model=model)
    assert quiet.topic == "business"
    assert quiet.evidence["model_terms"] == [["deal", 0.5]]
    scores = {s["topic"]: s for s in quiet.evidence["scores"]}
    # Two topics: chance is 0.5, so 0.8 is 60% of the way to certain: 0.6 x 4 points.
    assert scores["business"]["model"] == 2.4 and "model" not in scores.get("world", {})
    # Two headline keywords (4 points) beat the model's 2.4.
    [strong] = label_items([item("Ukraine and Russia")], rules=rules, model=model)
    assert strong.topic == "world"


def test_model_weight_zero_switches_the_model_off():
    rules = Rules(topics=TOPICS, model_weight=0.0)
    [label] = label_items([item("Talks on a new deal")], rules=rules, model=FakeModel({}))
    assert (label.topic, label.evidence["fallback"]) == ("more", True)


def test_fallback_topic_from_rules():
    rules = Rules(topics=TOPICS, fallback=FallbackTopic("other", "Other"))
    [label] = label_items([item("Cat rescued")], rules=rules)
    assert label.topic == "other"


# -- filters --------------------------------------------------------------------------------

SPONSORED = Filters(block=(FilterRule(words=("sponsored", "partner content")),))


def test_block_rule_on_words_in_headline_or_lead():
    decision = filter_item(item("Sponsored: winter deals"), filters=SPONSORED)
    assert decision.filtered
    assert decision.reason == "blocked by global rule: 'sponsored' in headline"
    assert not filter_item(item("Winter storms"), filters=SPONSORED).filtered


def test_block_rule_on_link_and_author_with_a_pattern():
    rules = Filters(
        block=(
            FilterRule(pattern=r"/(advertorial|promo)/", fields=("link",)),
            FilterRule(words=("Brand Studio",), fields=("author",)),
        )
    )
    by_link = filter_item(item("Deals", link="https://x.example/promo/1"), filters=rules)
    assert by_link.reason == "blocked by global rule: /" + r"/(advertorial|promo)/" + (
        "/ matched '/promo/' in link"
    )
    assert filter_item(item("Deals", author="BRAND STUDIO"), filters=rules).filtered
    # The headline is not read by a rule `in: link`.
    assert not filter_item(item("promo/ advertorial/"), filters=rules).filtered


def test_keep_rules_per_level_and_block_wins():
    feed = Filters(keep=(FilterRule(words=("climate",)),))
    kept = filter_item(
        item("Climate talks", "Sponsored by nobody"), filters=Filters(), feed_filters=feed
    )
    assert not kept.filtered
    assert kept.checks == ("feed keep rule ['climate' in headline/lead]: 'climate' in headline",)
    dropped = filter_item(item("Football results"), filters=Filters(), feed_filters=feed)
    assert dropped.reason == "no feed keep rule matched ('climate' in headline/lead)"
    both = filter_item(item("Sponsored climate deals"), filters=SPONSORED, feed_filters=feed)
    assert both.filtered and both.reason.startswith("blocked by global rule")


def test_filtered_items_keep_a_topic_and_say_why():
    rules = Rules(topics=TOPICS, filters=SPONSORED)
    [label] = label_items([item("Sponsored: Ukraine tours")], rules=rules)
    assert (label.topic, label.filtered) == ("world", True)
    assert label.filter_reason == "blocked by global rule: 'sponsored' in headline"
    assert label.evidence["filters"] == [
        "global block rule ['sponsored', 'partner content' in headline/lead]: 'sponsored' in headline"
    ]


# -- for editors ----------------------------------------------------------------------------


def test_frequent_words_leave_out_stop_words_and_keywords():
    texts = ["The storm hit the coast", "Storm warnings for the coast", "Ukraine storm"]
    assert frequent_words(texts, n=3, ignore=["ukraine"]) == [
        ("storm", 3),
        ("coast", 2),
        ("hit", 1),
    ]


# Items that fell to "More news", as feeds in other languages gave them: what `topics` lists
# must be what they are about, not their articles and prepositions.
FELL_THROUGH = {
    "German": [
        "Die Bahn streicht Züge: Streik der Lokführer legt den Verkehr lahm",
        "Der Streik der Lokführer soll bis Freitag dauern, sagte die Gewerkschaft",
        "Das ist der längste Streik in der Geschichte der Bahn, und er wird teuer",
    ],
    "French": [
        "La grève des cheminots paralyse le trafic dans toute la France",
        "Les syndicats appellent à une nouvelle grève pour la semaine prochaine",
        "Le gouvernement dit que la grève est illégale et qu'il ne cèdera pas",
    ],
    "Spanish": [
        "La huelga de los controladores aéreos obliga a cancelar cientos de vuelos",
        "Los sindicatos dicen que la huelga seguirá hasta que el gobierno negocie",
        "El ministro afirmó que no hay dinero para una subida de los salarios",
    ],
    "Portuguese": [
        "A greve dos professores fecha as escolas em todo o país",
        "Os sindicatos dizem que a greve vai continuar até que o governo negocie",
        "O ministro afirmou que não há dinheiro para um aumento dos salários",
    ],
    "Italian": [
        "Lo sciopero dei treni blocca il traffico in tutta Italia",
        "I sindacati dicono che lo sciopero continuerà per tutta la settimana",
        "Il ministro ha detto che non ci sono soldi per gli aumenti degli stipendi",
    ],
    "Dutch": [
        "De staking van het spoorpersoneel legt het verkeer in het hele land plat",
        "De vakbonden zeggen dat de staking door zal gaan tot het kabinet betaalt",
        "Het is de langste staking van het spoor en die wordt duur voor de reizigers",
    ],
    "Urdu": [
        "کراچی میں شدید بارش کے بعد سیلاب اور ٹریفک جام",
        "بارش کی وجہ سے شہر میں بجلی کا نظام بھی متاثر ہوا ہے",
        "محکمہ موسمیات کے مطابق بارش کا سلسلہ اگلے ہفتے تک جاری رہے گا",
    ],
    "Russian": [
        "Забастовка железнодорожников парализовала движение поездов в Москве",
        "Профсоюз заявил, что забастовка продлится до пятницы, если не будет договора",
        "Это самая долгая забастовка за последние годы, сообщил глава профсоюза",
    ],
    "Turkish": [
        "İstanbul'da grev nedeniyle metro seferleri durdu ve trafik kilitlendi",
        "Sendika grevin cuma gününe kadar süreceğini ve bunun için hazır olduğunu söyledi",
        "Bakan grev için bir açıklama yaptı ama sendika ile görüşme olmadı",
    ],
    "Persian": [
        "اعتصاب کارگران راه آهن در تهران حرکت قطارها را متوقف کرد",
        "سندیکا اعلام کرد که این اعتصاب تا روز جمعه ادامه خواهد داشت",
        "وزیر گفت که برای افزایش حقوق کارگران بودجه ای وجود ندارد و اعتصاب غیرقانونی است",
    ],
    "Arabic": [
        "أمطار غزيرة في القاهرة وتوقف حركة المرور في عدة شوارع",
        "قال مسؤول إن الأمطار تسببت في انقطاع الكهرباء عن عدة أحياء",
        "من المتوقع أن تستمر الأمطار حتى نهاية الأسبوع على القاهرة",
    ],
}
FUNCTION_WORDS = {
    "German": {"die", "der", "das", "den", "und", "ist", "soll", "bis", "sagte", "wird"},
    "French": {"la", "les", "le", "des", "dans", "pour", "une", "que", "est", "qu"},
    "Spanish": {"la", "los", "de", "que", "el", "para", "una", "hay", "hasta", "dicen"},
    "Portuguese": {"dos", "que", "para", "um", "em", "todo", "nao", "vai", "ate"},
    "Italian": {"lo", "dei", "il", "tutta", "che", "per", "non", "degli", "sono", "ha"},
    "Dutch": {"de", "het", "van", "dat", "door", "zal", "tot", "die", "wordt", "voor"},
    "Urdu": {"میں", "کے", "اور", "کی", "سے", "کا", "بھی", "ہوا", "ہے", "تک", "گا"},
    "Arabic": {"في", "عن", "حتى", "على", "من", "ان", "قال", "عدة"},
    "Russian": {"в", "что", "до", "если", "не", "будет", "это", "за", "заявил", "сообщил"},
    "Turkish": {"ve", "icin", "bir", "ile", "ama", "kadar", "bunun"},
    "Persian": {"در", "را", "که", "این", "تا", "اعلام", "کرد", "برای", "و", "است", "گفت"},
}
ABOUT = {
    "German": {"streik", "lokfuhrer", "bahn"},
    "French": {"greve"},
    "Spanish": {"huelga"},
    "Portuguese": {"greve", "sindicatos"},
    "Italian": {"sciopero"},
    "Dutch": {"staking"},
    "Urdu": {"بارش"},
    "Arabic": {"الامطار", "القاهرة"},
    "Russian": {"забастовка", "профсоюз"},
    "Turkish": {"grev", "sendika"},
    "Persian": {"اعتصاب", "کارگران"},
}


@pytest.mark.parametrize("language", sorted(FELL_THROUGH))
def test_frequent_words_leave_out_the_function_words_of_other_languages(language):
    words = {w for w, _ in frequent_words(FELL_THROUGH[language], n=50)}
    assert ABOUT[language] <= words
    assert not words & FUNCTION_WORDS[language], words & FUNCTION_WORDS[language]


def test_an_english_word_that_is_a_function_word_elsewhere_stays_in_english_text():
    # "war" and "die" are German function words, "son" and "car" French, "van" Dutch
    texts = [
        "War in the north: dozens die as the car bomb hits a van",
        "His son says the war will go on after the car bomb",
    ]
    words = dict(frequent_words(texts, n=50))
    assert {"war": 2, "car": 2, "die": 1, "son": 1, "van": 1}.items() <= words.items()


def test_fingerprint_changes_with_rules_feeds_and_examples(tmp_path):
    from aggregator.config import load_config

    path = tmp_path / "feeds.yaml"
    path.write_text("topics:\n  world: {keywords: [ukraine]}\nfeeds: []\n", encoding="utf-8")
    base = fingerprint(load_config(path), None)
    assert fingerprint(load_config(path), None) == base
    assert fingerprint(load_config(path), "abc") != base
    path.write_text("topics:\n  world: {keywords: [russia]}\nfeeds: []\n", encoding="utf-8")
    assert fingerprint(load_config(path), None) != base
