"""English stemming for the substitution guard (Snowball's Porter2, cached per word)."""

from __future__ import annotations

from functools import lru_cache

import snowballstemmer

_STEMMER = snowballstemmer.stemmer("english")


@lru_cache(maxsize=65_536)
def stem(word: str) -> str:
    """``meditating`` and ``meditation`` -> ``medit``; lower-case input."""
    return str(_STEMMER.stemWord(word))
