"""The WordNet synonym table of the substitution guard: the rules that build it, and what the
guard does with it, both ways (paraphrases it lets through, swaps it still stops)."""

from __future__ import annotations

from pathlib import Path

import pytest
from llmcache.bench.semantic.lexicon import WordNet, candidates
from llmcache.sidecar.semantic import guards, lexicon

# A small WordNet in the database's own format: (offset, pos, {word: tagged uses}, pointers).
SYNSETS = [
    ("00000001", "n", {"stack": 20, "pile": 12}, []),
    ("00000003", "n", {"heap": 15, "mound": 0}, []),
    ("00000002", "n", {"heap": 1, "stack": 2, "lot": 0}, []),  # a rare sense of heap and stack
    ("00000010", "n", {"unit_of_measurement": 0, "unit": 0}, []),
    ("00000011", "n", {"time_unit": 0}, [("@", "00000010", "n")]),
    ("00000012", "n", {"minute": 0, "min": 0}, [("@", "00000011", "n")]),
    ("00000019", "a", {"fast": 30, "firm": 30}, []),  # main senses, but antonyms in others
    ("00000018", "a", {"fast": 5}, [("!", "00000017", "a")]),
    ("00000017", "a", {"firm": 5}, [("!", "00000018", "a")]),
    ("00000020", "a", {"easy": 30, "simple": 0}, [("!", "00000021", "a")]),
    ("00000021", "a", {"difficult": 0, "hard": 40}, [("!", "00000020", "a")]),
    ("00000022", "r", {"earlier": 0, "earliest": 0}, []),
    ("00000030", "v", {"speed_up": 0, "accelerate": 0}, []),
    ("00000031", "v", {"zymurgy": 0, "brewing": 0}, []),  # not in the model's vocabulary
    ("00000040", "n", {"motorcycle": 0, "bike": 0}, []),  # an untagged word of two senses
    ("00000041", "n", {"bicycle": 0, "bike": 0}, []),
    ("00000050", "v", {"buy": 100, "purchase": 0}, []),
    ("00000051", "n", {"buy": 0, "steal": 0}, []),  # "it was a steal": rare for both words
    ("00000052", "v", {"steal": 50}, []),
]


def _write_wordnet(root: Path) -> None:
    files = {"n": "noun", "v": "verb", "a": "adj", "r": "adv"}
    senses: dict[tuple[str, str], list[str]] = {}
    data: dict[str, list[str]] = {pos: [] for pos in files}
    tagged = []
    for offset, pos, words, pointers in SYNSETS:
        ptrs = " ".join(f"{s} {o} {p} 0000" for s, o, p in pointers)
        members = " ".join(f"{w} 0" for w in words)
        data[pos].append(
            f"{offset} 00 {pos} {len(words):02x} {members} {len(pointers):03d} {ptrs} | x"
        )
        for w, uses in words.items():
            senses.setdefault((w, pos), []).append(offset)
            tagged.append(f"{w}%{'nvar'.index(pos) + 1}:00:00:: {offset} 1 {uses}")
    for pos, name in files.items():
        index = [
            f"{w} {p} {len(offs)} 0 {len(offs)} 0 {' '.join(offs)}"
            for (w, p), offs in sorted(senses.items())
            if p == pos
        ]
        (root / f"index.{name}").write_text("\n".join(index) + "\n")
        (root / f"data.{name}").write_text("\n".join(data[pos]) + "\n")
    (root / "index.sense").write_text("\n".join(sorted(tagged)) + "\n")


def test_build_keeps_only_main_sense_synonyms_without_antonymy_or_units(tmp_path: Path) -> None:
    _write_wordnet(tmp_path)
    vocabulary = {"stack", "pile", "heap", "lot", "mound", "minute", "min", "easy", "simple",
                  "hard", "difficult", "speed", "up", "accelerate", "brewing", "bike",
                  "bicycle", "motorcycle", "buy", "purchase", "steal", "fast", "firm",
                  "earlier", "earliest"}  # fmt: skip
    assert candidates(WordNet(tmp_path), vocabulary) == {
        ("pile", "stack"),  # heap/stack and lot/stack share a rare sense only
        ("heap", "mound"),
        ("easy", "simple"),
        ("difficult", "hard"),  # fast/firm share a main sense but are antonyms in others
        ("accelerate", "speed_up"),  # a verb and its particle
        ("buy", "purchase"),
    }  # minute/min are units; zymurgy is not a common word; bike has two untagged senses;
    # earlier/earliest are two degrees of one word


def test_table_ships_with_its_license_and_reads_inflections() -> None:
    table = Path(lexicon.__file__).parent / "data" / "synonyms.tsv"
    head = table.read_text().split("\n\n")[0]
    assert "Princeton University" in head and "WordNet" in head
    assert lexicon.synonymous(lexicon.key("purchases"), lexicon.key("buying"))
    assert lexicon.phrasal("cutting", "down") == "cut_down"
    assert lexicon.phrasal("cut", "in") is None


@pytest.mark.parametrize(
    ("a", "b"),
    [
        ("Why do my files disappear after a reboot?", "Why do my files vanish after a reboot?"),
        ("Where can I purchase a used laptop?", "Where can I buy a used laptop?"),
        ("Do I need an attorney to write a will?", "Do I need a lawyer to write a will?"),
        ("How should I answer an angry customer email?",
         "How should I reply to an angry customer email?"),
        ("What are common causes of memory leaks in Node.js applications?",
         "What are typical causes of memory leaks in Node.js apps?"),
        ("Is a large pizza enough for four people?", "Is a big pizza enough for four people?"),
        ("How can I cut down my AWS bill?", "How can I trim down my AWS bill?"),
    ],
)  # fmt: skip
def test_synonyms_of_the_table_pass(a: str, b: str) -> None:
    assert guards.first_failure(a, b) is None
    assert guards.first_failure(b, a) is None


@pytest.mark.parametrize(
    ("a", "b"),
    [
        # WordNet synonyms in a rarer sense only: siblings here.
        ("What is stored on the stack in C?", "What is stored on the heap in C?"),
        ("Is it easy to learn Rust?", "Is it slow to learn Rust?"),
        ("How do I run a test in Jest?", "How do I run a trial in Jest?"),
        # Units are never synonyms; antonyms never are.
        ("Run the job every minute.", "Run the job every hour."),
        ("How do I speed up Gradle?", "How do I slow down Gradle?"),
        ("How do I start a Docker container?", "How do I stop a Docker container?"),
    ],
)  # fmt: skip
def test_swaps_outside_the_table_still_veto(a: str, b: str) -> None:
    assert guards.first_failure(a, b) == "substitution"
    assert guards.first_failure(b, a) == "substitution"
