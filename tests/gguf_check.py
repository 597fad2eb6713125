"""gguf_check.py: halfs' GGUF exports read by llama.cpp's own Python reader (the `gguf` package,
PyPI), run with pytest by tests/test_gguf.c (test_gguf_python) after it has written, into the
directory $HALFS_GGUF_DIR:
  model.json            {"dim", "layers", "heads", "ffn", "vocab", "max_seq", "eps", "theta",
                         "n_merges", "exports": {file name: weights type}}
  <HF name>.f32         every tensor of the model in Hugging Face order ([out, in], float32)
  <HF name>.qdq.f32     the seven linears of every block quantized-dequantized by halfs (hs_qdq
                         with the export's MXFP4 quantizer)
It checks the keys, tensor names, types and shapes llama.cpp expects, the q/k permutation (done
here as llama.cpp's converter does it), and that the reader's dequantization of every tensor
equals halfs' values exactly: qdq for MXFP4, the weights themselves for f32, their bf16/f16
roundings otherwise.
"""
import json
import os

import numpy as np
import pytest

gguf = pytest.importorskip("gguf")
from gguf import GGMLQuantizationType as QT  # noqa: E402
from gguf.quants import dequantize  # noqa: E402

DIR = os.environ.get("HALFS_GGUF_DIR", "")
pytestmark = pytest.mark.skipif(not DIR, reason="HALFS_GGUF_DIR is not set (run test_gguf)")


def meta():
    with open(os.path.join(DIR, "model.json")) as f:
        return json.load(f)


def hf(name, qdq=False):
    m = meta()
    raw = np.fromfile(os.path.join(DIR, name + (".qdq.f32" if qdq else ".f32")), dtype="<f4")
    if name.endswith("norm.weight") or "layernorm" in name:
        return raw
    rows = m["vocab"] if "embed" in name or "lm_head" in name else None
    if rows is None:
        out_f = m["ffn"] if ("gate" in name or "up_proj" in name) else m["dim"]
        return raw.reshape(out_f, -1)
    return raw.reshape(rows, -1)


def permute(w, n_head, n_head_kv):
    """convert_hf_to_gguf.py, LlamaModel.permute."""
    if n_head_kv is not None and n_head != n_head_kv:
        n_head = n_head_kv
    return (w.reshape(n_head, 2, w.shape[0] // n_head // 2, *w.shape[1:])
            .swapaxes(1, 2).reshape(w.shape))


LINEARS = [("attn_q", "self_attn.q_proj"), ("attn_k", "self_attn.k_proj"),
           ("attn_v", "self_attn.v_proj"), ("attn_output", "self_attn.o_proj"),
           ("ffn_gate", "mlp.gate_proj"), ("ffn_up", "mlp.up_proj"), ("ffn_down", "mlp.down_proj")]
TYPES = {"mxfp4": QT.MXFP4, "f32": QT.F32, "f16": QT.F16, "bf16": QT.BF16}


def field(r, key):
    f = r.fields[key]
    return f.contents() if hasattr(f, "contents") else f.parts[f.data[0]]


def rounded(x, t):
    if t == "f32":
        return x
    if t == "f16":
        return x.astype(np.float16).astype(np.float32)
    u = x.view(np.uint32).astype(np.uint64)  # bf16, round to nearest even
    u = ((u + 0x7FFF + ((u >> 16) & 1)) >> 16) << 16
    return u.astype(np.uint32).view(np.float32)


def exports():
    return sorted(meta()["exports"].items()) if DIR else []


@pytest.mark.parametrize("fname,wtype", exports())
def test_keys(fname, wtype):
    m = meta()
    r = gguf.GGUFReader(os.path.join(DIR, fname))
    assert field(r, "general.architecture") == "llama"
    assert field(r, "llama.embedding_length") == m["dim"]
    assert field(r, "llama.block_count") == m["layers"]
    assert field(r, "llama.feed_forward_length") == m["ffn"]
    assert field(r, "llama.context_length") == m["max_seq"]
    assert field(r, "llama.attention.head_count") == m["heads"]
    assert field(r, "llama.attention.head_count_kv") == m["heads"]
    assert field(r, "llama.rope.dimension_count") == m["dim"] // m["heads"]
    assert np.float32(field(r, "llama.attention.layer_norm_rms_epsilon")) == np.float32(m["eps"])
    assert np.float32(field(r, "llama.rope.freq_base")) == np.float32(m["theta"])
    assert field(r, "tokenizer.ggml.model") == "gpt2"
    assert field(r, "tokenizer.ggml.pre") == "gpt-2"
    assert len(r.fields["tokenizer.ggml.tokens"].data) == m["vocab"]
    assert len(r.fields["tokenizer.ggml.token_type"].data) == m["vocab"]
    assert len(r.fields["tokenizer.ggml.merges"].data) == m["n_merges"]
    tokens = field(r, "tokenizer.ggml.tokens")
    # GPT-2's byte-to-unicode spelling: byte 0x20 (space) is "Ġ", 'A' is itself
    assert tokens[ord("A")] == "A" and tokens[0x20] == "\u0120"
    merges = field(r, "tokenizer.ggml.merges")
    assert all(len(x.split(" ")) == 2 for x in merges)


@pytest.mark.parametrize("fname,wtype", exports())
def test_tensors(fname, wtype):
    m = meta()
    r = gguf.GGUFReader(os.path.join(DIR, fname))
    ts = {t.name: t for t in r.tensors}
    L, C, F, V = m["layers"], m["dim"], m["ffn"], m["vocab"]
    want = {"token_embd.weight": (C, V), "output_norm.weight": (C,), "output.weight": (C, V)}
    for i in range(L):
        want.update({f"blk.{i}.attn_norm.weight": (C,), f"blk.{i}.ffn_norm.weight": (C,)})
        for g, _ in LINEARS:
            want[f"blk.{i}.{g}.weight"] = (F, C) if g == "ffn_down" else \
                (C, F) if g in ("ffn_gate", "ffn_up") else (C, C)
    assert set(ts) == set(want)
    for name, shape in want.items():
        assert tuple(int(x) for x in ts[name].shape) == shape, name  # ggml order: ne[0] first
    for name in ("token_embd.weight", "output.weight", "output_norm.weight"):
        assert ts[name].tensor_type == QT.F32
    assert np.array_equal(dequantize(ts["token_embd.weight"].data, QT.F32).reshape(V, C),
                          hf("model.embed_tokens.weight"))
    assert np.array_equal(dequantize(ts["output.weight"].data, QT.F32).reshape(V, C),
                          hf("lm_head.weight"))
    for i in range(L):
        assert ts[f"blk.{i}.attn_norm.weight"].tensor_type == QT.F32
        assert np.array_equal(np.asarray(ts[f"blk.{i}.ffn_norm.weight"].data),
                              hf(f"model.layers.{i}.post_attention_layernorm.weight"))
        for g, h in LINEARS:
            t = ts[f"blk.{i}.{g}.weight"]
            assert t.tensor_type == TYPES[wtype], t.name
            name = f"model.layers.{i}.{h}.weight"
            if wtype == "mxfp4":
                ref = hf(name, qdq=True)
            else:
                ref = rounded(hf(name), wtype)
            if g in ("attn_q", "attn_k"):
                ref = permute(ref, m["heads"], m["heads"])
            got = dequantize(t.data, t.tensor_type).reshape(ref.shape)
            assert np.array_equal(got, ref), name
