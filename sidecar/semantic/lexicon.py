"""Synonyms the substitution guard accepts: ``data/synonyms.tsv``, built from WordNet and the
embedding model by ``bench/semantic/lexicon.py`` (its docstring has the rules).

A word list written by hand grows one miss at a time; WordNet covers common English, and
the build keeps only pairs that are synonyms in the main sense of both words. Words are
compared as stems, so every inflection of a pair matches (``purchases`` / ``buying``); a
verb and its particle count as one word (``cut down`` / ``trim down``)."""

from __future__ import annotations

from functools import cache
from importlib.resources import files

from .stem import stem

PARTICLES = frozenset({"up", "down", "out", "off", "over", "away", "back"})


def key(word: str) -> str:
    """How a table word is compared: its stem, with its particle (``cut_down``)."""
    verb, _, particle = word.partition("_")
    return stem(verb) + ("_" + particle if particle else "")


@cache
def _table() -> tuple[frozenset[frozenset[str]], frozenset[str]]:
    pairs: set[frozenset[str]] = set()
    phrasal: set[str] = set()
    text = files(__package__).joinpath("data", "synonyms.tsv").read_text(encoding="utf-8")
    for line in text.splitlines():
        if line and not line.startswith("#"):
            a, b, _ = line.split("\t")
            if key(a) != key(b):
                pairs.add(frozenset((key(a), key(b))))
            phrasal.update(key(w) for w in (a, b) if "_" in w)
    return frozenset(pairs), frozenset(phrasal)


def synonymous(x: str, y: str) -> bool:
    """Two stems (``key``) that name one thing."""
    return frozenset((x, y)) in _table()[0]


def phrasal(verb: str, particle: str) -> str | None:
    """The key of ``verb particle`` when the table knows it as one word ("cut down")."""
    joined = f"{stem(verb)}_{particle}"
    return joined if particle in PARTICLES and joined in _table()[1] else None
