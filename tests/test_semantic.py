"""Semantic building blocks without the model: guards, canonical rendering, index, records."""

from __future__ import annotations

import time
from collections import Counter

import numpy as np
import pytest
from llmcache.bench.semantic.pairs import labelled, shared_swaps, splits, swapped
from llmcache.sidecar.semantic import guards
from llmcache.sidecar.semantic.canonical import render
from llmcache.sidecar.semantic.index import Record, VectorIndex
from llmcache.sidecar.semantic.store import decode_record, encode_record
from llmcache.sidecar.semantic.thresholds import FALLBACK, default_threshold, effective_threshold


@pytest.mark.parametrize(
    ("a", "b", "guard"),
    [
        ("How do I convert a string to an integer in Java?",
         "How do I convert an integer to a string in Java?", "order"),
        ("Is Python faster than Java?", "Is Java faster than Python?", "order"),
        ("What is 15% of 200?", "What is 15% of 300?", "numbers"),
        ("Give me two reasons to learn Rust.", "Give me three reasons to learn Rust.", "numbers"),
        ("Is it safe to eat raw eggs?", "Is it not safe to eat raw eggs?", "negation"),
        ("Is it legal to record a call?", "Is it illegal to record a call?", "negation"),
        ("How do I reverse a list in Python?", "How do I reverse a list in Ruby?", "entities"),
        ("What is 5G?", "What is 4G?", "numbers"),
        ("Enable 2FA on GitHub", "Enable 2FA on GitLab", "entities"),
        ("Python 3 features", "Ruby 3 features", "entities"),
        ("Paris hotels near the Louvre", "Hotels near the Louvre", "entities"),
        # Both open with a verb, and not the same one.
        ("Encrypt the file with AES.", "Decrypt the file with AES.", "entities"),
    ],
)  # fmt: skip
def test_guards_veto_hard_negatives(a: str, b: str, guard: str) -> None:
    assert guards.first_failure(a, b) == guard


@pytest.mark.parametrize(
    ("a", "b"),
    [
        ("What is the GDP of Japan?", "What's Japan's GDP?"),
        ("How do I undo the last git commit?", "How can I undo my last git commit?"),
        ("How do I convert Celsius to Fahrenheit?", "How can I convert Celsius into Fahrenheit?"),
        ("How do I sort a dictionary by value in Python?",
         "How can I sort a Python dictionary by its values?"),
        # Words mixing digits and letters are entities and are found in the other text.
        ("What is 5G?", "What is 5G?"),
        ("Set an alarm for 7pm.", "Set an alarm for 7pm."),
        ("How do I enable 2FA on GitHub?", "How can I turn on 2FA for GitHub?"),
        # A capitalised opening verb is the request, not a name.
        ("Outline the causes of the First World War.",
         "What were the causes of the First World War?"),
        ("Recommend a good book about Rust.", "What is a good book about Rust?"),
        ("Suggest names for a black cat.", "What are good names for a black cat?"),
    ],
)  # fmt: skip
def test_guards_let_paraphrases_through(a: str, b: str) -> None:
    assert guards.first_failure(a, b) is None


@pytest.mark.parametrize(
    ("a", "b", "guard"),
    [
        # Issue 14: one content word swapped for its opposite or a sibling, below 0.95 too.
        ("How do I speed up my Wi-Fi?", "How do I slow down my Wi-Fi?", "substitution"),
        ("Is coffee good for you?", "Is coffee bad for you?", "substitution"),
        ("Why is my internet slow at night?", "Why is my internet fast at night?",
         "substitution"),
        # A word with an opposite is never filler ("quickly" once was).
        ("Why does my kettle boil slowly?", "Why does my kettle boil quickly?", "substitution"),
        ("How do I implement a stack in C?", "How do I implement a deque in C?", "substitution"),
        ("Write a ballad about the moon.", "Write a villanelle about the moon.", "substitution"),
        ("How do I monitor inodes on a server?", "How do I monitor threads on a server?",
         "substitution"),
        ("What is the minimum wage in Germany?", "What is the maximum wage in Germany?",
         "substitution"),
        # A content word where the other text has a function word, or one side of a choice.
        ("How do I write a for loop in Bash?", "How do I write a while loop in Bash?",
         "substitution"),
        ("Should I use tabs or spaces?", "Should I use spaces?", "substitution"),
        # Added words that flip or narrow the question; another question word.
        ("How do I sort a list in Go?", "How do I sort a list in reverse in Go?", "substitution"),
        ("What is the GDP of Japan?", "What is the GDP growth rate of Japan?", "substitution"),
        ("When did the Berlin Wall fall?", "Why did the Berlin Wall fall?", "substitution"),
        ("Why is grep -i foo slow?", "Why is grep -v foo slow?", "substitution"),
        # Code: one operator changes the snippet.
        ("What does `x += 1` do?", "What does `x -= 1` do?", "code"),
        ("Why is a && b slow?", "Why is a || b slow?", "code"),
        ("What is 7 - 2 in binary?", "What is 7 + 2 in binary?", "code"),
        ("How do I write unit tests for this function?",
         "How do I run unit tests for this function?", "substitution"),
        ("How do I get rid of a cold?", "How do I catch a cold?", "substitution"),
        # "X in a Y" after "how many" is a ratio: its terms keep their sides.
        ("How many miles are in a kilometer?", "How many kilometers are in a mile?", "order"),
        # Ordinals are numbers: still a different one.
        ("Who won the third series of the baking contest?",
         "Who won series 4 of the baking contest?", "numbers"),
    ],
)  # fmt: skip
def test_verifier_stops_swaps(a: str, b: str, guard: str) -> None:
    assert guards.first_failure(a, b) == guard
    assert guards.first_failure(b, a) == guard


@pytest.mark.parametrize(
    ("a", "b"),
    [
        # A capitalised opening verb off the old word list, or followed by a particle.
        ("What is a deadlock?", "I'd like to know what a deadlock is."),
        ("Break down the steps of photosynthesis.", "What are the steps of photosynthesis?"),
        ("Sketch out a plan for a garden party.", "Can you give me a plan for a garden party?"),
        # Ordinal vs numeral, numbered events written another way, proper-name synonyms.
        ("Who won the third series of the baking contest?",
         "Who won series 3 of the baking contest?"),
        ("What is the 2nd step of the scientific method?",
         "What is the second step of the scientific method?"),
        ("What caused WWI?", "What caused World War I?"),
        ("What caused World War 1?", "What caused the First World War?"),
        ("What is the GDP of the US?", "What is the GDP of America?"),
        ("How do I set a variable in JS?", "How do I set a variable in JavaScript?"),
        # Clauses reordered across sentences; synonyms; one added content word.
        ("I have never done this before. How do I descale a kettle?",
         "How do I descale a kettle? I have never done it before."),
        ("How do I make a website with Django?", "How do I build a website with Django?"),
        ("What documents do I need to rent an apartment?",
         "What documents do I require to rent an apartment?"),
        ("How do I grow tomatoes?", "How can I grow tomatoes at home?"),
        ("How do I change a car tire?", "What's the best way to change a car tire?"),
        ("What does `git stash pop` do?", "Explain what `git stash pop` does."),
    ],
)  # fmt: skip
def test_verifier_lets_rewordings_through(a: str, b: str) -> None:
    assert guards.first_failure(a, b) is None
    assert guards.first_failure(b, a) is None


@pytest.mark.parametrize(
    ("a", "b", "guard"),
    [
        # Issue 14, heldout2: two terms trade places around the words between them.
        ("Does Alice owe Bob money?", "Does Bob owe Alice money?", "order"),
        ("Is a tomato a fruit?", "Is a fruit a tomato?", "order"),
        ("Why do cats chase dogs?", "Why do dogs chase cats?", "order"),
        ("Map port 3000 on the host to port 22 in the container.",
         "Map port 22 on the host to port 3000 in the container.", "order"),
        ("My tests pass locally but fail on CI.", "My tests fail locally but pass on CI.",
         "order"),
        ("Convert to Celsius from Fahrenheit.", "Convert from Celsius to Fahrenheit.", "order"),
        # heldout3: the article changes with the swapped terms ("an English" / "a French").
        ("What should an Italian cook know about a Spanish kitchen?",
         "What should a Spanish cook know about an Italian kitchen?", "order"),
        # heldout5: the number changes with the swapped terms ("cats ... dog" / "dogs ... cat").
        ("Can horses eat cow feed?", "Can cows eat horse feed?", "order"),
        # "turn off" reads as "disable": a negating verb is a content word, not skipped.
        ("How do I turn on notifications on Android?",
         "How do I turn off notifications on Android?", "substitution"),
        ("How do I stop a Docker container?", "How do I start a Docker container?",
         "substitution"),
        ("How do I speed up Gradle?", "How do I stop Gradle?", "substitution"),
        # A request verb used as a content word ("show"/"hide the toolbar").
        ("How do I hide the toolbar in Word?", "How do I show the toolbar in Word?",
         "substitution"),
        ("How do I list the files in a folder?", "How do I delete the files in a folder?",
         "substitution"),
        # Courtesy is stripped only where it is courtesy; as content it still counts.
        ("How do I say thank you in Korean?", "How do I say sorry in Korean?", "substitution"),
        ("Hi! Is it easy to learn Rust? Thanks!", "Is it hard to learn Rust?", "substitution"),
        ("Run the backup twice a day.", "Run the backup three times a day.", "numbers"),
        ("Plan a 3-day trip to Rome.", "Plan a 4-day trip to Rome.", "numbers"),
        # A compound or an adverb pairs off only with its own other form.
        ("How do I sort a dataframe by date?", "How do I sort a data table by date?",
         "substitution"),
        ("Plan a week-long trip to Rome.", "Plan a week-end trip to Rome.", "substitution"),
        ("Why does my build run slowly?", "Why is my build fast to run?", "substitution"),
    ],
)  # fmt: skip
def test_verifier_stops_role_swaps_and_content_verbs(a: str, b: str, guard: str) -> None:
    assert guards.first_failure(a, b) == guard
    assert guards.first_failure(b, a) == guard


@pytest.mark.parametrize(
    ("a", "b"),
    [
        # Issue 14, heldout2: a phrase or clause moved as a block, symmetric coordination.
        ("In 2020, what was the GDP of France?", "What was the GDP of France in 2020?"),
        ("With Docker, how do I list the volumes?", "How do I list the volumes with Docker?"),
        ("Before a run, what should I eat?", "What should I eat before a run?"),
        ("What do cats and dogs eat?", "What do dogs and cats eat?"),
        ("Which is bigger, the sun or the moon?", "Which is bigger, the moon or the sun?"),
        ("My tests fail on CI but pass locally. Why?",
         "My tests pass locally but fail on CI. Why?"),
        # Negating verbs said two ways; request verbs as wording.
        ("How do I turn off notifications on Android?",
         "How do I disable notifications on Android?"),
        ("Show me how to reverse a string in Go.", "Tell me how to reverse a string in Go."),
        ("How do I show hidden files in Finder?", "How do I display hidden files in Finder?"),
        # Greetings, thanks and filler around the request; pronouns opening a sentence.
        ("Hey! How do I rename a branch in git? Thanks a lot.", "How do I rename a branch in git?"),
        ("OK so, what is a closure in JavaScript?", "What is a closure in JavaScript?"),
        ("Sorry to bother you, but how do I boil rice?", "How do I boil rice?"),
        ("How do I sort a list in Go? Any help is appreciated.", "How do I sort a list in Go?"),
        # A dash between words is prose, not an operator (heldout3's "Just curious - why ...").
        ("Just wondering - how do magnets work?", "How do magnets work?"),
        ("Dear assistant, list three uses of baking soda. Many thanks.",
         "List three uses of baking soda."),
        # Synonyms whose misses recur across heldout2, heldout3 and heldout5.
        ("What's the difference between TCP and UDP?",
         "What's the distinction between TCP and UDP?"),
        ("What does this snippet print? `print(2 ** 3)`",
         "What is the output of this snippet? `print(2 ** 3)`"),
        ("Draft a reply to a customer asking for a refund.",
         "Write a reply to a customer asking for a refund."),
        ("How do I kill a zombie process?", "How do I terminate a zombie process?"),
        ("How do I get rid of duplicate rows in pandas?",
         "How do I remove duplicate rows in pandas?"),
        ("Quick one \u2014 how do magnets work?", "How do magnets work?"),
        ("Our users were billed twice. They are upset. Write an apology.",
         "Write an apology: our users were billed twice and are upset."),
        # Number words and multiples, number-unit compounds; general synonyms; CV/resume.
        ("Why does my cron job run twice?", "Why does my cron job run two times?"),
        ("Plan a three-day trip to Rome.", "Plan a trip to Rome for three days."),
        ("Our build takes 40 minutes. How can we cut it?",
         "How can we cut our 40-minute build?"),
        ("How do I delete a Docker volume?", "How do I remove a Docker volume?"),
        ("Is it safe to reuse a salt?", "Is it secure to reuse a salt?"),
        ("What is an easy way to learn chess?", "What is a simple way to learn chess?"),
        ("How do I write a CV for a first job?",
         "How do I write a r\u00e9sum\u00e9 for a first job?"),
        # One word written as two, hyphenated, as a verb and its particle, or as an adverb.
        ("How do I sort a data frame by date?", "How do I sort a dataframe by date?"),
        ("My two-year-old daughter won't sleep.", "My daughter is two years old and won't sleep."),
        ("Plan a week-long trip to Rome.", "Plan a long trip to Rome for a week."),
        ("How do I back up my phone?", "How do I make a backup of my phone?"),
        ("Why does my build run slowly?", "Why is my build slow to run?"),
        ("I deleted a branch by accident. Can I get it back?",
         "I accidentally deleted a branch. Can I get it back?"),
    ],
)  # fmt: skip
def test_verifier_lets_moved_phrases_courtesy_and_synonyms_through(a: str, b: str) -> None:
    assert guards.first_failure(a, b) is None
    assert guards.first_failure(b, a) is None


def test_negating_verbs_are_content_not_negations() -> None:
    """Verbs such as "stop" or "disable" negate what follows but are the question's verb: the
    substitution guard weighs them, the negation guard counts only grammatical negation."""
    assert guards.negations("How do I stop a container?") == 0
    assert guards.negations("How do I not stop a container?") == 1
    assert guards.numbers("twice") == guards.numbers("two times") == Counter({"x2": 1})
    assert guards.entities("They were billed twice. Most of it is a 40-minute job.") == set()
    assert guards.without_courtesy("Hi! What is Rust? Thanks!") == "What is Rust?"
    assert guards.without_courtesy("Well water: is it safe?") == "Well water: is it safe?"


def test_old_guards_behaviour_kept_where_it_was_right() -> None:
    """Names still veto one-sided ("Paris hotels"), and a prompt agrees with itself."""
    assert guards.first_failure("Paris hotels near the Louvre", "Hotels near the Louvre") == (
        "entities"
    )
    assert guards.numbers("the 3rd, third and 3 rounds") == Counter({"3": 3})
    assert guards.canonical_names("the United States and WWII") == "USA and WW2"


def test_held_out_split_shares_no_swapped_words_with_tuning() -> None:
    """The held-out figure means something only if the tuning split never swaps the words a
    held-out pair swaps (grammar-level swaps the old guards already knew are allowed)."""
    assert len(labelled("tuning")) + len(labelled("heldout")) >= 1200
    grammar = {("do", "should"), ("with", "without"), ("2nd", "second"), ("4th", "fourth")}
    assert shared_swaps() <= grammar
    tuning = {(a, b) for a, b, _, _ in labelled("tuning")}
    assert not tuning & {(a, b) for a, b, _, _ in labelled("heldout")}


@pytest.mark.parametrize(
    ("split", "size"), [("heldout2", 200), ("heldout3", 150), ("heldout4", 200), ("heldout5", 200)]
)
def test_blind_held_out_split_shares_no_pair_or_word_swap_with_the_others(
    split: str, size: int
) -> None:
    """``heldout2`` to ``heldout5`` were written blind (data/README.md): no pair of one, in
    either order, is in another split, and a one-word swap it shares with them only swaps
    numbers."""
    blind = labelled(split)
    assert len(blind) >= size
    seen = [p for other in splits() if other != split for p in labelled(other)]
    pairs = {(a, b) for a, b, _, _ in seen} | {(b, a) for a, b, _, _ in seen}
    assert not pairs & {(a, b) for a, b, _, _ in blind}
    seen_swaps = {s for a, b, _, _ in seen if (s := swapped(a, b)) is not None}
    shared = {s for a, b, _, _ in blind if (s := swapped(a, b)) in seen_swaps}
    assert all(w.isdigit() for s in shared for w in s)


def test_default_threshold_is_the_embedders() -> None:
    assert default_threshold("all-MiniLM-L6-v2") == 0.85
    assert default_threshold("sentence-transformers/all-MiniLM-L6-v2") == 0.85
    assert default_threshold("BAAI/bge-small-en-v1.5") == 0.90
    assert default_threshold("text-embedding-3-small") == FALLBACK == 0.95
    assert effective_threshold(None, "all-MiniLM-L6-v2") == 0.85
    assert effective_threshold(0.97, "all-MiniLM-L6-v2") == 0.97


def test_every_labelled_prompt_passes_against_itself() -> None:
    texts = {t for a, b, _, _ in labelled("all") for t in (a, b)}
    assert [t for t in texts if guards.first_failure(t, t)] == []
    assert guards.entities("Set an alarm for 7pm, then call Anna.") == {"7pm", "anna"}
    assert guards.entities("Outline the causes. Paris hotels?") == {"paris"}
    # A sentence without a word (heldout4's writer found it: the guards raised ValueError,
    # and the sidecar served the request as a miss, counted as a lookup error).
    for text in ("Fix this. `;;`", "What is wrong here? --> <--", "Why? !!!"):
        assert guards.first_failure(text, text) is None


def msg(text: str, system: str = "S", history: list[dict[str, str]] | None = None) -> dict:
    return {"model": "m", "max_tokens": 10, "system": system,
            "messages": [*(history or []), {"role": "user", "content": text}]}  # fmt: skip


def test_partition_covers_everything_but_the_last_user_turn() -> None:
    base = render("anthropic.messages", "m", "tenant", msg("Hi there"))
    assert base is not None and base.text == "Hi there"
    same = render("anthropic.messages", "m", "tenant", {**msg("Hello"), "stream": True})
    assert same is not None and same.partition == base.partition
    for other in (
        render("anthropic.messages", "m", "other-tenant", msg("Hi there")),
        render("anthropic.messages", "m2", "tenant", msg("Hi there")),
        render("anthropic.messages", "m", "tenant", msg("Hi there", system="T")),
        render("anthropic.messages", "m", "tenant", {**msg("Hi there"), "temperature": 0}),
        render("anthropic.messages", "m", "tenant",
               msg("Hi there", history=[{"role": "user", "content": "x"},
                                        {"role": "assistant", "content": "y"}])),
    ):  # fmt: skip
        assert other is not None and other.partition != base.partition


def test_non_text_last_turns_are_not_semantic() -> None:
    tool_result = {
        "role": "user",
        "content": [{"type": "tool_result", "tool_use_id": "t", "content": "4"}],
    }
    assert render("anthropic.messages", "m", "t", {"messages": [tool_result]}) is None
    assert (
        render("openai.chat", "m", "t", {"messages": [{"role": "assistant", "content": "x"}]})
        is None
    )
    assert render("openai.responses", "m", "t", {"input": "Hello"}) is not None
    assert render("openai.embeddings", "m", "t", {"input": "Hello"}) is None


def unit(seed: int, dim: int = 8) -> np.ndarray:
    v = np.random.default_rng(seed).standard_normal(dim).astype(np.float32)
    return v / np.linalg.norm(v)


def test_index_finds_best_in_partition_and_forgets_expired() -> None:
    index = VectorIndex(8, max_entries=100)
    far = time.time() + 60
    for i in range(50):
        index.add(Record(f"r{i}", "p" if i < 40 else "q", "", "m", far), unit(i))
    rid, score = index.search("p", unit(7))[0].id, index.search("p", unit(7))[1]  # type: ignore[index]
    assert (rid, round(score, 5)) == ("r7", 1.0)
    found = index.search("p", unit(45))
    assert found is not None and found[0].id != "r45"  # other partition is invisible
    index.add(Record("old", "p", "", "m", time.time() - 1), unit(1000))
    found = index.search("p", unit(1000))
    assert found is not None and found[0].id != "old" and "old" not in index.records
    index.remove("r7")
    found = index.search("p", unit(7))
    assert found is not None and found[0].id != "r7"


def test_index_is_bounded() -> None:
    index = VectorIndex(8, max_entries=10)
    for i in range(25):
        index.add(Record(f"r{i}", "p", "", "m", time.time() + 60), unit(i))
    assert len(index) == 10 and "r0" not in index.records and "r24" in index.records


def test_record_round_trip_and_garbage() -> None:
    rec = Record("id", "part", "text", "model", 123.5, ("a",))
    decoded = decode_record("id", encode_record(rec, unit(1)), 8)
    assert decoded is not None and decoded[0] == rec and np.allclose(decoded[1], unit(1))
    assert decode_record("id", b"garbage", 8) is None
    assert decode_record("id", encode_record(rec, unit(1)), 16) is None


def test_large_partitions_prefilter_by_sign_bits_and_find_the_exact_best() -> None:
    rng = np.random.default_rng(7)
    dim, n = 384, 12_000  # above EXACT_MAX: the sign-bit prefilter runs
    vectors = rng.standard_normal((n, dim)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    index = VectorIndex(dim, max_entries=n)
    far = time.time() + 60
    for i in range(n):
        index.add(Record(f"r{i}", "p", "", "m", far), vectors[i])
    for i in range(0, 200, 2):  # holes: the last rows move into them, bits must follow
        index.remove(f"r{i}")
    live = [i for i in range(n) if f"r{i}" in index.records]
    for target in rng.choice(live, 50, replace=False):
        noise = rng.standard_normal(dim).astype(np.float32)
        query = vectors[target] * 0.95 + noise / np.linalg.norm(noise) * 0.31
        query /= np.linalg.norm(query)
        found = index.search("p", query)
        exact = max(live, key=lambda j: float(vectors[j] @ query))
        assert found is not None and found[0].id == f"r{exact}"
        assert found[1] == pytest.approx(float(vectors[exact] @ query), abs=1e-5)


def test_bench_reports_each_split_with_its_false_hits() -> None:
    """``llmcache bench semantic`` scores a split on its own: counts at the threshold, the
    pairs served wrongly, and which guard vetoed what (vectors made up, no model)."""
    from llmcache.bench.semantic import _split_quality

    pairs = [
        ("How do I reverse a list in Python?", "How can I reverse a list in Python?", True, "p"),
        ("Why is my internet slow at night?", "Why is my internet fast at night?", False, "a"),
        # A clause swap that is also reworded: no guard sees it (docs/semantic.md).
        ("My code runs fine locally but fails in CI. Why?",
         "Why does my code fail locally but run fine in CI?", False, "o"),
    ]  # fmt: skip
    near = unit(1) * 0.96 + unit(2) * 0.28
    vecs = {t: unit(1) for a, b, _, _ in pairs for t in (a, b)}
    vecs["How can I reverse a list in Python?"] = near / np.linalg.norm(near)
    q = _split_quality(pairs, vecs, 0.85)
    assert q["at_threshold"]["similarity_only"]["fp"] == 2
    verified = q["at_threshold"]["verified"]
    assert (verified["tp"], verified["fp"], verified["fn"]) == (1, 1, 0)
    assert [f["group"] for f in q["false_hits"]] == ["o"]
    assert q["vetoes_by_first_guard"]["substitution"] == 1


def test_embedder_comparison_scores_separation_and_the_safe_threshold() -> None:
    """The other-embedders benchmark (``bench/semantic/models.py``): AUC is the chance that a
    paraphrase outscores a hard negative, and the guarded threshold is the lowest that
    serves no wrong answer (cosines made up, no model)."""
    from llmcache.bench.semantic.models import auc, lowest_safe, separation

    assert auc(np.array([0.9, 0.8]), np.array([0.7, 0.6])) == 1.0
    assert auc(np.array([0.6]), np.array([0.7, 0.6])) == 0.25  # one below, one tie
    cos = np.array([0.95, 0.86, 0.90, 0.74])
    gold = np.array([True, True, False, False])
    passes = np.array([True, True, True, False])  # a guard vetoes the 0.74 negative
    assert lowest_safe(cos, gold, passes) == 0.91  # the 0.90 negative passes the guards
    row = separation(cos, gold, passes, 0.91)
    assert row["guards"] == {"threshold": 0.91, "recall": 0.5, "wrong": 0}
    assert row["recall_zero_wrong_cosine"] == 0.5
