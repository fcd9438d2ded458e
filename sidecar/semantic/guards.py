"""Verification of the best candidate before a semantic hit.

Sentence embeddings are blind to the details that flip an answer: with all-MiniLM-L6-v2,
"convert a string to an integer" and "convert an integer to a string" score 0.997. Each
guard compares the new prompt with the cached one on one such detail and vetoes the hit
when they disagree. They are pure string work on two short texts (microseconds), so they
cost nothing measurable on the hit path. ``bench/semantic`` measures what each one buys.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Callable

_WORD = re.compile(r"[A-Za-z][A-Za-z0-9+#.'_-]*[A-Za-z0-9+#]|[A-Za-z]")
_NUMBER = re.compile(r"(?<![A-Za-z])[-+]?\d+(?:[.,]\d+)*(?:%|[a-z]{1,3}\b)?")
_NUMBER_WORDS = {
    "zero": "0", "one": "1", "two": "2", "three": "3", "four": "4", "five": "5", "six": "6",
    "seven": "7", "eight": "8", "nine": "9", "ten": "10", "eleven": "11", "twelve": "12",
    "twenty": "20", "thirty": "30", "forty": "40", "fifty": "50", "hundred": "100",
    "thousand": "1000", "million": "1000000", "billion": "1000000000", "first": "1st",
    "second": "2nd", "third": "3rd", "fourth": "4th", "fifth": "5th", "half": "0.5",
    "twice": "x2", "double": "x2", "triple": "x3", "dozen": "12",
}  # fmt: skip
_NEGATIONS = {
    "not", "no", "never", "none", "nobody", "nothing", "neither", "nor", "nowhere", "without",
    "cannot", "can't", "don't", "doesn't", "didn't", "isn't", "aren't", "wasn't", "weren't",
    "won't", "wouldn't", "shouldn't", "couldn't", "mustn't", "hasn't", "haven't", "hadn't",
    "avoid", "except", "excluding", "unless", "instead", "lack", "fail", "fails", "disable",
    "stop", "prevent",
}  # fmt: skip
# Words around which the order of two terms carries the meaning ("X to Y", "X than Y").
_DIRECTIONAL = {
    "to", "into", "from", "than", "vs", "versus", "over", "before", "after", "onto", "by",
    "per", "under", "above", "below", "towards", "toward", "against", "with",
}  # fmt: skip
_STOP = {
    "a", "an", "the", "is", "are", "was", "were", "be", "been", "do", "does", "did", "i", "me",
    "my", "you", "your", "we", "our", "it", "its", "of", "in", "on", "at", "for", "and", "or",
    "what", "which", "who", "whom", "how", "why", "when", "where", "can", "could", "should",
    "would", "will", "shall", "may", "might", "must", "this", "that", "these", "those", "there",
    "here", "please", "tell", "explain", "describe", "give", "show", "about", "some", "any",
    "way", "ways", "best", "good", "make", "get", "use", "using", "one's", "s", "if", "so",
    "as", "also", "just", "like", "mean", "means", "meaning", "difference", "between",
}  # fmt: skip
# Capitalised words that start questions or are capitalised by habit, not entities.
_COMMON_CAPS = {
    "what", "how", "why", "when", "where", "who", "which", "is", "are", "can", "could", "should",
    "would", "does", "do", "did", "explain", "describe", "tell", "give", "list", "write",
    "show", "please", "i", "i'm", "i've", "in", "on", "for", "the", "a", "an", "my", "if",
    "define", "summarize", "summarise", "compare", "help", "find", "convert", "create", "make",
    "hey", "hi", "hello", "ok", "okay", "so", "and", "but", "or", "any", "some", "quick",
    "question", "whats", "what's", "how's", "it", "to", "difference", "meaning",
}  # fmt: skip
# Verbs that open a request for text ("Recommend ...", "Outline ..."), never names: only at
# a sentence start, where a capital says nothing, so a name spelled like one mid-sentence
# stays an entity. Verbs with an opposite ("Encrypt"/"Decrypt") are deliberately absent.
_REQUEST_VERBS = {
    "recommend", "suggest", "outline", "name", "translate", "calculate", "provide", "identify",
    "discuss", "rewrite", "simplify", "generate", "draft", "solve", "analyze", "analyse",
    "evaluate", "teach", "imagine", "estimate", "predict", "rank", "brainstorm", "proofread",
    "elaborate", "clarify", "recap", "illustrate", "demonstrate", "let",
}  # fmt: skip
# Lower-case words that follow an imperative verb but not a sentence-opening name
# ("Outline the causes", "Recommend me a book"; but "Paris hotels", "Python 3 features").
_VERB_OBJECTS = {
    "a", "an", "the", "this", "these", "those", "some", "all", "every", "each", "my", "your",
    "our", "their", "his", "her", "me", "us", "him", "them",
}  # fmt: skip
_EDGE_PUNCT = "\"'()[]{}<>,;:!?."


def _tokens(text: str) -> list[str]:
    """Words, with the possessive "'s" dropped (Japan's GDP ~ GDP of Japan)."""
    return [w[:-2] if w.endswith(("'s", "\u2019s")) else w for w in _WORD.findall(text)]


def numbers(text: str) -> Counter[str]:
    found = [m.group(0).lower().replace(",", "").lstrip("+") for m in _NUMBER.finditer(text)]
    found += [_NUMBER_WORDS[t] for t in (w.lower() for w in _tokens(text)) if t in _NUMBER_WORDS]
    return Counter(found)


def numbers_agree(a: str, b: str) -> bool:
    """The same numbers (digits or number words), as many times each."""
    return numbers(a) == numbers(b)


def negations(text: str) -> int:
    words = [w.lower().replace("\u2019", "'") for w in _tokens(text)]
    count = sum(1 for w in words if w in _NEGATIONS or w.endswith("n't"))
    return count


_PREFIXES = ("un", "in", "il", "im", "ir", "dis", "non", "non-")


def _prefixed_antonym(a: set[str], b: set[str]) -> bool:
    """A word of one text appears in the other with a negating prefix (legal/illegal,
    enable/disable, safe/unsafe)."""

    def one_way(x: set[str], y: set[str]) -> bool:
        return any(
            p + w in y and p + w not in x
            for w in x - y
            if len(w) > 2 and w not in _STOP and w not in _DIRECTIONAL
            for p in _PREFIXES
        )

    return one_way(a, b) or one_way(b, a)


def negations_agree(a: str, b: str) -> bool:
    """Both negated or both not, and no word negated by a prefix in one text only."""
    if (negations(a) > 0) != (negations(b) > 0):
        return False
    wa = {w.lower() for w in _tokens(a)}
    wb = {w.lower() for w in _tokens(b)}
    return not _prefixed_antonym(wa, wb)


def _bare(raw: str) -> str:
    """A whitespace-separated word without edge punctuation and possessive "'s"."""
    word = raw.strip(_EDGE_PUNCT)
    return word[:-2] if word.endswith(("'s", "\u2019s")) else word


def _scan(text: str) -> tuple[set[str], set[str]]:
    """The text's entities, and the capitalised words opening a sentence as a verb (a
    capital word followed by a lower-case determiner or object pronoun: "Encrypt the")."""
    names: set[str] = set()
    verbs: set[str] = set()
    raws = text.split()
    sentence_start = True
    for i, raw in enumerate(raws):
        word = _bare(raw)
        if word:
            lower = word.lower()
            inner = any(c.isupper() for c in word[1:]) or (
                any(c.isdigit() for c in word) and any(c.isalpha() for c in word)
            )
            capital = word[0].isupper() and lower not in _COMMON_CAPS
            if inner or (capital and not sentence_start):
                names.add(lower)
            elif capital and lower not in _STOP and lower not in _REQUEST_VERBS:
                after = _bare(raws[i + 1]) if i + 1 < len(raws) else ""
                joined = not raw.endswith((",", ";", ":"))
                if joined and after.islower() and after in _VERB_OBJECTS:
                    verbs.add(lower)
                else:
                    names.add(lower)
        sentence_start = raw.endswith((".", "?", "!", ":"))
    return names, verbs


def entities(text: str) -> set[str]:
    """Proper names and technical terms: capitalised words not at a sentence start, words
    with inner capitals or digits (``JavaScript``, ``iPhone``, ``GPT-4``, ``5G``), acronyms,
    and capitalised words opening a sentence unless they read as the request's verb."""
    return _scan(text)[0]


def _vocabulary(text: str) -> set[str]:
    """Every spelling of the text's words an entity may take: guard tokens (``Japan's`` ->
    ``japan``) and whole words as ``entities`` cuts them (``7pm``, ``5G``, ``2FA``)."""
    return {w.lower() for w in _tokens(text)} | {_bare(raw).lower() for raw in text.split()}


def entities_agree(a: str, b: str) -> bool:
    """Every entity of one text occurs (in any case) in the other: a different product,
    person, place or language means a different question. An opening verb is no entity
    ("Outline the causes of X" ~ "What caused X?"), but two texts that both open with one
    must open with the same ("Encrypt the file" vs "Decrypt the file")."""
    names_a, verbs_a = _scan(a)
    names_b, verbs_b = _scan(b)
    if verbs_a and verbs_b and verbs_a != verbs_b:
        return False
    words_a, words_b = _vocabulary(a), _vocabulary(b)
    return all(e in words_b for e in names_a) and all(e in words_a for e in names_b)


def _content(text: str) -> list[str]:
    """Content words in order, lower-cased; single capital letters ("table A") count."""
    out = []
    for w in _tokens(text):
        lower = w.lower()
        if lower in _DIRECTIONAL:
            out.append("\0" + lower)  # a marker, kept in place
        elif lower not in _STOP or (len(w) == 1 and w.isupper() and w != "I"):
            out.append(lower)
    return out


def _pairs_across_markers(words: list[str]) -> set[tuple[str, str]]:
    """(x, y): the nearest content words left and right of each directional marker
    (skipping words that occur twice, like "table" in "table A to table B")."""
    plain = [w for w in words if not w.startswith("\0")]
    pairs: set[tuple[str, str]] = set()

    def nearest(seq: list[str]) -> str | None:
        for x in seq:
            if x.startswith("\0"):
                continue
            if plain.count(x) == 1:
                return x
        return None

    for i, w in enumerate(words):
        if w.startswith("\0"):
            x, y = nearest(list(reversed(words[:i]))), nearest(words[i + 1 :])
            if x and y and x != y:
                pairs.add((x, y))
    return pairs


def order_agrees(a: str, b: str) -> bool:
    """Terms on the two sides of a directional word ("to", "from", "than", "into", ...) keep
    their sides: "string to integer" vs "integer to string", "Python faster than Java" vs
    "Java faster than Python", "from New York to London" vs "from London to New York"."""
    wa, wb = _content(a), _content(b)
    plain_a = [w for w in wa if not w.startswith("\0")]
    plain_b = [w for w in wb if not w.startswith("\0")]
    shared = {w for w in plain_a if plain_a.count(w) == 1 and plain_b.count(w) == 1}
    pos_b = {w: i for i, w in enumerate(plain_b) if w in shared}
    pos_a = {w: i for i, w in enumerate(plain_a) if w in shared}
    for words, pos_other in ((wa, pos_b), (wb, pos_a)):
        for x, y in _pairs_across_markers(words):
            if x in pos_other and y in pos_other and pos_other[x] > pos_other[y]:
                return False
    return True


GUARDS: dict[str, Callable[[str, str], bool]] = {
    "numbers": numbers_agree,
    "negation": negations_agree,
    "entities": entities_agree,
    "order": order_agrees,
}


def first_failure(a: str, b: str, enabled: tuple[str, ...] = tuple(GUARDS)) -> str | None:
    """The name of the first guard that vetoes ``a`` being served ``b``'s answer."""
    for name in enabled:
        if not GUARDS[name](a, b):
            return name
    return None
