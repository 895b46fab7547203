"""How well the shipped topics place news: accuracy and fallback share, rules alone and
rules + the learned layer.

    .venv/bin/python bench/topics_eval.py            # on the held-out labelled set
    .venv/bin/python bench/topics_eval.py --cv       # 5-fold cross-validation on the starter
                                                     # examples: the only numbers to tune on
    .venv/bin/python bench/topics_eval.py --misses   # also list what the labelled set gets wrong

The labelled set (tests/data/topics/labelled.yaml) is never used for training or tuning;
tests/test_topic_quality.py asserts the targets on it.
"""

from __future__ import annotations

import argparse
import dataclasses
import random
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from aggregator.categorize import Rules  # noqa: E402
from aggregator.config import load_config  # noqa: E402
from aggregator.topicmodel import C, Evaluation, TopicModel, evaluate, load_examples  # noqa: E402

LABELLED = ROOT / "tests" / "data" / "topics" / "labelled.yaml"


def line(name: str, result: Evaluation) -> str:
    return (
        f"{name:<22} accuracy {result.accuracy:6.1%}  fallback {result.fallback_share:6.1%}"
        f"  ({result.correct}/{result.total} right, {result.fallback} to fallback)"
    )


def cross_validate(rules: Rules, examples: list, folds: int, c: float) -> Evaluation:
    shuffled = list(examples)
    random.Random(7).shuffle(shuffled)
    total = correct = fallback = 0
    for k in range(folds):
        held = shuffled[k::folds]
        train = [e for i, e in enumerate(shuffled) if i % folds != k]
        result = evaluate(held, rules, TopicModel.fit(train, c=c))
        total += result.total
        correct += result.correct
        fallback += result.fallback
    return Evaluation(total, correct, fallback, ())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--config", default=str(ROOT / "feeds.yaml"))
    parser.add_argument("--cv", action="store_true", help="cross-validate on the examples")
    parser.add_argument("--misses", action="store_true", help="list the labelled set's misses")
    args = parser.parse_args()
    config = load_config(args.config)
    rules = Rules.from_config(config)
    keys = [t.key for t in config.topics]
    path = config.settings.topic_examples
    if path is None:
        sys.exit("no topic examples next to the config")
    examples = list(load_examples(path, keys))
    print(f"config: {config.path}\nexamples: {path} ({len(examples)})")
    if args.cv:
        print(line("rules alone", evaluate(examples, rules)))
        for weight in (3.0, 4.0, 6.0, 8.0):
            for c in (4.0, 8.0, 16.0):
                tuned = dataclasses.replace(rules, model_weight=weight)
                print(line(f"w={weight:g} C={c:g} (5-fold)", cross_validate(tuned, examples, 5, c)))
        return
    labelled = list(load_examples(LABELLED, keys))
    print(f"labelled: {LABELLED} ({len(labelled)})")
    started = time.perf_counter()
    import sklearn.linear_model  # noqa: F401 - imported once per process, timed apart

    imported = time.perf_counter()
    model = TopicModel.fit(examples, c=C)
    fitted = time.perf_counter()
    print(
        f"scikit-learn imported in {(imported - started) * 1000:.0f} ms,"
        f" model fitted in {(fitted - imported) * 1000:.0f} ms"
    )
    alone = evaluate(labelled, rules)
    both = evaluate(labelled, rules, model)
    print(line("rules alone", alone))
    print(line("rules + model", both))
    if args.misses:
        for example, given in both.wrong:
            print(f"  [{example.topic} -> {given}] {example.headline}")


if __name__ == "__main__":
    main()
