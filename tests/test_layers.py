"""Each pipeline stage imports only what sits below it (read from the source with ast)."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import aggregator

PACKAGE = Path(aggregator.__file__).parent

# module -> the package modules it may import. A new module must be placed here on purpose.
ALLOWED: dict[str, set[str]] = {
    "__init__": set(),
    "errors": set(),
    "clock": set(),
    "records": set(),
    "config": {"errors"},
    "fetch": {"records", "errors", "clock"},
    "parse": {"records", "errors", "text"},
    "text": set(),
    "locks": set(),
    "extract": {"records", "text"},
    "article": {"records", "clock", "fetch", "extract"},
    "stopwords": {"text"},
    "categorize": {"config", "records", "text", "stopwords"},
    "topicmodel": {"categorize", "errors"},
    "dedupe": {"records", "text", "clock"},  # clock.micros: times the index gives
    "schedule": {"records"},
    "bandindex": {"clock"},
    "store": {"records", "errors", "text", "bandindex", "clock"},
    "digest": {"records", "config"},
    "render": {"records", "config", "errors", "extract"},
    "outbox": {"errors"},
    "deliver": {"outbox", "errors", "config", "records", "clock"},
    "pipeline": {
        "records",
        "errors",
        "clock",
        "config",
        "fetch",
        "parse",
        "extract",
        "article",
        "categorize",
        "topicmodel",
        "dedupe",
        "schedule",
        "store",
        "digest",
        "render",
        "outbox",
        "deliver",
        "tokens",
        "locks",
    },
    "daemon": {"pipeline", "config", "clock", "errors", "store", "records", "deliver", "locks"},
    "tokens": {"errors"},
    "web": {"pipeline", "store", "config", "clock", "errors", "render", "tokens"},
    "opml": {"config", "errors", "records", "text"},
    "cli": {"*"},
    "__main__": {"cli"},  # python -m aggregator
}
FEEDPARSER_OWNER = "parse"


def package_imports(path: Path) -> tuple[set[str], set[str]]:
    """(package modules, third-party top-level names) imported by one file."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    inner: set[str] = set()
    outer: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom):
            if node.level:
                if node.module:
                    inner.add(node.module.split(".")[0])
                else:
                    inner.update(a.name for a in node.names)
            elif node.module and node.module.startswith("aggregator"):
                rest = node.module.split(".")[1:]
                inner.update(rest[:1] or [a.name for a in node.names])
            elif node.module:
                outer.add(node.module.split(".")[0])
        elif isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.startswith("aggregator."):
                    inner.add(alias.name.split(".")[1])
                else:
                    outer.add(alias.name.split(".")[0])
    return inner, outer


def test_every_module_has_a_place_in_the_layering():
    modules = {p.stem for p in PACKAGE.glob("*.py")}
    assert modules <= set(ALLOWED), f"place these in ALLOWED: {modules - set(ALLOWED)}"


def test_stages_import_only_what_sits_below_them():
    wrong = []
    for path in sorted(PACKAGE.glob("*.py")):
        allowed = ALLOWED.get(path.stem, set())
        inner, _ = package_imports(path)
        if "*" in allowed:
            continue
        bad = inner - allowed - {"__version__"}
        if bad:
            wrong.append(f"{path.stem} imports {sorted(bad)}")
    assert not wrong


def test_only_parse_calls_feedparser_and_only_store_speaks_sql():
    for path in sorted(PACKAGE.glob("*.py")):
        _, outer = package_imports(path)
        if "feedparser" in outer:
            assert path.stem == FEEDPARSER_OWNER
        if "sqlalchemy" in outer or "sqlite3" in outer:
            assert path.stem == "store"


def test_time_comes_from_the_injected_clock():
    for path in sorted(PACKAGE.glob("*.py")):
        if path.stem in ("clock", "cli"):
            continue
        source = path.read_text(encoding="utf-8")
        for call in ("datetime.now(", "datetime.utcnow(", "time.time(", "date.today("):
            assert call not in source, f"{path.name} calls {call}: use the injected clock"


def test_the_stopword_lists_are_loaded_by_topics_only():
    # Polling, the daemon and the CLI's other commands import categorize; only
    # frequent_words (`aggregator topics`) needs the lists of other languages.
    probe = (
        "import sys, aggregator.cli, aggregator.daemon, aggregator.pipeline, aggregator.categorize;"
        "print('aggregator.stopwords' in sys.modules)"
    )
    result = subprocess.run(
        [sys.executable, "-c", probe],
        capture_output=True,
        text=True,
        check=True,
        cwd=PACKAGE.parent,
    )
    assert result.stdout.strip() == "False"
