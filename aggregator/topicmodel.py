"""The learned layer of topic assignment: a small local model fitted from editors' examples.

    load_examples(path, topic_keys)   read topic-examples.yaml; every problem as
                                      `file:line:col: key: message` (ConfigError)
    TopicModel.fit(examples)          TF-IDF over headline and lead words (headline words
                                      count twice; word pairs too) + multinomial logistic
                                      regression. Pure; a few hundred examples fit in well
                                      under a second, on the CPU, with no network
    model.probabilities(texts)        topic key -> probability, per (headline, lead)
    model.top_terms(...)              the words of one text that pushed it towards a topic:
                                      TF-IDF value x the topic's coefficient, largest first
    model_for(path, topic_keys)       the fitted model for the file as it is now: cached in
                                      this process, keyed by the sha256 of its bytes, so an
                                      edited file is learned again at the next poll
    evaluate(labelled, rules, model)  accuracy and fallback share on a labelled set

categorize combines the probabilities with the keyword rules (see categorize.label_items);
this module knows nothing of rules, filters or the store.
"""

from __future__ import annotations

import hashlib
import itertools
import logging
import threading
from collections.abc import Sequence
from dataclasses import dataclass, field
from difflib import get_close_matches
from pathlib import Path
from typing import Any

from ruamel.yaml import YAML
from ruamel.yaml.error import MarkedYAMLError, YAMLError

from .categorize import STOP_WORDS, Rules, label_items, tokens
from .errors import ConfigError, ConfigProblem

C = 8.0  # inverse regularisation of the logistic regression (chosen by cross-validation on
# the starter examples: bench/topics_eval.py --cv)
_SEP = "\x1f"  # between headline and lead in one document


@dataclass(frozen=True, slots=True)
class Example:
    """One labelled story: from topic-examples.yaml, or the labelled test set."""

    headline: str
    lead: str
    topic: str  # a topic key
    line: int = 0  # where it is in its file, for messages

    # categorize.ItemText, so examples can be labelled like items in evaluate()
    @property
    def title(self) -> str:
        return self.headline

    @property
    def link(self) -> str | None:
        return None

    @property
    def author(self) -> str | None:
        return None

    @property
    def categories(self) -> tuple[str, ...]:
        return ()


# -- reading examples ------------------------------------------------------------------------


def load_examples(path: Path, topic_keys: Sequence[str]) -> tuple[Example, ...]:
    """The examples in `path` (topic key -> list of {headline, lead} or plain headlines)."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError([ConfigProblem(str(path), 0, 0, "", f"cannot read: {exc}")]) from exc
    return parse_examples(text, str(path), topic_keys)


def parse_examples(text: str, shown: str, topic_keys: Sequence[str]) -> tuple[Example, ...]:
    problems: list[ConfigProblem] = []

    def report(line: int, column: int, key: str, message: str) -> None:
        problems.append(ConfigProblem(shown, line, column, key, message))

    try:
        document = YAML(typ="rt").load(text)
    except MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line, column = (mark.line + 1, mark.column + 1) if mark else (0, 0)
        raise ConfigError(
            [ConfigProblem(shown, line, column, "", f"YAML syntax error: {exc.problem}")]
        ) from exc
    except YAMLError as exc:
        raise ConfigError([ConfigProblem(shown, 0, 0, "", f"YAML syntax error: {exc}")]) from exc
    if document is None:
        return ()
    if not isinstance(document, dict):
        raise ConfigError([ConfigProblem(shown, 1, 1, "", "expected topic: [examples...]")])
    examples: list[Example] = []
    for topic, entries in document.items():
        line, column = _where(document, "key", topic)
        if topic not in topic_keys:
            close = get_close_matches(str(topic), list(topic_keys), n=1)
            if close:
                hint = f"did you mean {close[0]!r}?"
            elif topic_keys:
                hint = "expected one of: " + ", ".join(topic_keys)
            else:
                hint = "feeds.yaml defines no topics"
            report(line, column, str(topic), f"unknown topic {topic!r} ({hint})")
            continue
        if entries is None:
            continue
        if not isinstance(entries, list):
            report(line, column, str(topic), "expected a list of examples")
            continue
        for index, entry in enumerate(entries):
            key = f"{topic}[{index}]"
            eline, ecolumn = _where(entries, "item", index, (line, column))
            if isinstance(entry, str) and entry.strip():
                examples.append(Example(entry.strip(), "", str(topic), eline))
                continue
            if not isinstance(entry, dict):
                report(eline, ecolumn, key, "expected {headline: ..., lead: ...} or a headline")
                continue
            unknown = [k for k in entry if k not in ("headline", "lead")]
            for k in unknown:
                kline, kcolumn = _where(entry, "key", k, (eline, ecolumn))
                report(kline, kcolumn, f"{key}.{k}", f"unknown key {k!r} (use headline, lead)")
            headline, lead = entry.get("headline"), entry.get("lead", "")
            if not isinstance(headline, str) or not headline.strip():
                report(eline, ecolumn, f"{key}.headline", "a headline (text) is required")
                continue
            if lead is None:
                lead = ""
            if not isinstance(lead, str):
                report(eline, ecolumn, f"{key}.lead", "expected text")
                continue
            if not unknown:
                examples.append(Example(headline.strip(), lead.strip(), str(topic), eline))
    if problems:
        raise ConfigError(problems)
    return tuple(examples)


def _where(
    container: Any, kind: str, index: object, fallback: tuple[int, int] = (0, 0)
) -> tuple[int, int]:
    try:
        line, column = getattr(container.lc, kind)(index)
    except (AttributeError, KeyError, IndexError, TypeError):
        return fallback
    return line + 1, column + 1


# -- the model -------------------------------------------------------------------------------


def _stem(word: str) -> str:
    """A light plural stripper, enough to join 'markets' and 'market', 'economies' and
    'economy'; words are only ever compared with words stemmed the same way."""
    if len(word) > 4 and word.endswith("ies"):
        return word[:-3] + "y"
    if len(word) > 3 and word.endswith("s") and not word.endswith(("ss", "us", "is")):
        return word[:-1]
    return word


def _words(text: str) -> list[str]:
    return [_stem(t) for t in tokens(text) if t not in STOP_WORDS]


def analyse(document: str) -> list[str]:
    """Features of one document (headline SEP lead): words and adjacent word pairs; headline
    words twice, as the headline says more about the topic than the lead."""
    headline, _, lead = document.partition(_SEP)
    features: list[str] = []
    for part, times in ((headline, 2), (lead, 1)):
        words = _words(part)
        grams = words + [f"{a} {b}" for a, b in itertools.pairwise(words)]
        features.extend(grams * times)
    return features


def _document(headline: str, lead: str) -> str:
    return f"{headline.replace(_SEP, ' ')}{_SEP}{lead.replace(_SEP, ' ')}"


@dataclass(frozen=True)
class TopicModel:
    """A fitted model. Implements categorize.TopicScorer."""

    vectorizer: Any  # sklearn TfidfVectorizer
    classifier: Any  # sklearn LogisticRegression
    topics: tuple[str, ...]  # the classifier's classes, in its order
    examples: int  # how many examples it learned from
    key: str = ""  # sha256 of the examples file it came from ("" when fitted from memory)
    _terms: Any = field(default=None, repr=False, compare=False)  # feature names, cached

    @classmethod
    def fit(cls, examples: Sequence[Example], *, key: str = "", c: float = C) -> TopicModel | None:
        """Fit on the examples; None when fewer than two topics have any."""
        if len({e.topic for e in examples}) < 2:
            return None
        from sklearn.feature_extraction.text import TfidfVectorizer
        from sklearn.linear_model import LogisticRegression

        vectorizer = TfidfVectorizer(analyzer=analyse, sublinear_tf=True)
        matrix = vectorizer.fit_transform([_document(e.headline, e.lead) for e in examples])
        classifier = LogisticRegression(C=c, solver="saga", max_iter=5000, random_state=0)
        classifier.fit(matrix, [e.topic for e in examples])
        topics = tuple(str(t) for t in classifier.classes_)
        terms = vectorizer.get_feature_names_out()
        return cls(vectorizer, classifier, topics, len(examples), key, terms)

    def probabilities(self, texts: Sequence[tuple[str, str]]) -> list[dict[str, float]]:
        if not texts:
            return []
        matrix = self.vectorizer.transform([_document(h, lead) for h, lead in texts])
        rows = self.classifier.predict_proba(matrix)
        return [
            {topic: float(p) for topic, p in zip(self.topics, row, strict=True)} for row in rows
        ]

    def top_terms(self, headline: str, lead: str, topic: str, n: int) -> list[tuple[str, float]]:
        return self.top_terms_many([(headline, lead)], [topic], n)[0]

    def top_terms_many(
        self, texts: Sequence[tuple[str, str]], topics: Sequence[str], n: int
    ) -> list[list[tuple[str, float]]]:
        """top_terms for many texts (each with its own topic), from one transform."""
        if not texts:
            return []
        matrix = self.vectorizer.transform([_document(h, lead) for h, lead in texts]).tocsr()
        out: list[list[tuple[str, float]]] = []
        for i, topic in enumerate(topics):
            if topic not in self.topics:
                out.append([])
                continue
            coef = self.classifier.coef_[self.topics.index(topic)]
            start, end = matrix.indptr[i], matrix.indptr[i + 1]
            columns, values = matrix.indices[start:end], matrix.data[start:end]
            pushes = [
                (str(self._terms[j]), float(v * coef[j]))
                for j, v in zip(columns, values, strict=True)
                if v * coef[j] > 0
            ]
            pushes.sort(key=lambda p: (-p[1], p[0]))
            out.append([(term, round(weight, 4)) for term, weight in pushes[:n]])
        return out

    def topic_terms(self, topic: str, n: int = 10) -> list[str]:
        """The words that say `topic` most strongly, whatever the text (for `check`)."""
        if topic not in self.topics:
            return []
        coef = self.classifier.coef_[self.topics.index(topic)]
        best = coef.argsort()[::-1][:n]
        return [str(self._terms[j]) for j in best]


# -- the cache -------------------------------------------------------------------------------

log = logging.getLogger("aggregator.topicmodel")
_lock = threading.Lock()
_cache: dict[tuple[str, tuple[str, ...]], TopicModel | None] = {}
_refused: set[tuple[str, tuple[str, ...]]] = set()  # file versions whose problems were logged


def file_key(path: Path) -> str:
    """sha256 of the file's bytes: names one version of the examples."""
    return hashlib.sha256(path.read_bytes()).hexdigest()


def model_for(path: Path | None, topic_keys: Sequence[str]) -> TopicModel | None:
    """The model fitted from `path` as it is now; None without a file or with too few topics.

    Raises ConfigError when the file has problems. Cached per (file hash, topics): fitting
    happens once per version of the file in each process (worker processes forked after a
    fit inherit it).
    """
    if path is None:
        return None
    key = (file_key(path), tuple(topic_keys))
    with _lock:
        if key in _cache:
            return _cache[key]
    model = TopicModel.fit(load_examples(path, topic_keys), key=key[0])
    with _lock:
        if len(_cache) > 8:  # old versions of the file: keep memory flat in a long-running daemon
            _cache.clear()
        _cache[key] = model
    return model


def usable_model(path: Path | None, topic_keys: Sequence[str]) -> TopicModel | None:
    """model_for, except that a file with problems means no model: the problems are logged
    once per version of the file, and topics are placed by the rules alone meanwhile."""
    try:
        return model_for(path, topic_keys)
    except (ConfigError, OSError) as exc:
        key = (str(path), tuple(topic_keys))
        with _lock:
            first = key not in _refused
            _refused.add(key)
        if first:
            log.error("topic examples unusable, placing topics by rules alone: %s", exc)
        return None


# -- measuring -------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Evaluation:
    total: int
    correct: int
    fallback: int  # items that fell to the fallback topic (counted as wrong)
    wrong: tuple[tuple[Example, str], ...]  # (example, topic given) for each miss

    @property
    def accuracy(self) -> float:
        return self.correct / self.total if self.total else 0.0

    @property
    def fallback_share(self) -> float:
        return self.fallback / self.total if self.total else 0.0


def evaluate(
    labelled: Sequence[Example], rules: Rules, model: TopicModel | None = None
) -> Evaluation:
    """How many labelled items categorize places in their labelled topic (no feed hint)."""
    labels = label_items(labelled, rules=rules, model=model)
    wrong = tuple(
        (example, label.topic)
        for example, label in zip(labelled, labels, strict=True)
        if label.topic != example.topic
    )
    fallback = sum(1 for label in labels if label.topic == rules.fallback.key)
    return Evaluation(len(labelled), len(labelled) - len(wrong), fallback, wrong)
