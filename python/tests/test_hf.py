"""halfs' files in the Python ecosystem's own readers: Hugging Face safetensors reads every
checkpoint tensor (model and optimizer state) with its Llama name, dtype and shape; tokenizers
loads halfs' tokenizer.json and gives the ids of `halfs tokenizer encode`; transformers'
LlamaForCausalLM, where installed, gives the loss of `halfs eval --recipe fp32` (skipped when
transformers is absent; docs/PYTHON.md records a run by hand). The values the safetensors reader
returns are checked in test_torch.py: the nano model built from them matches `halfs eval`."""
import gzip
import json
import os

import numpy as np
import pytest

from conftest import ROOT, read_shard


def llama_shapes(cfg):
    C, F, V, L = (cfg["hidden_size"], cfg["intermediate_size"], cfg["vocab_size"],
                  cfg["num_hidden_layers"])
    want = {"model.embed_tokens.weight": (V, C), "model.norm.weight": (C,)}
    if not cfg["tie_word_embeddings"]:
        want["lm_head.weight"] = (V, C)
    for i in range(L):
        pre = "model.layers.%d." % i
        want.update({pre + "input_layernorm.weight": (C,),
                     pre + "post_attention_layernorm.weight": (C,),
                     pre + "mlp.gate_proj.weight": (F, C), pre + "mlp.up_proj.weight": (F, C),
                     pre + "mlp.down_proj.weight": (C, F)})
        for k in "qkvo":
            want[pre + "self_attn.%s_proj.weight" % k] = (C, C)
    return want


def test_safetensors_reads_every_tensor(tiny_run):
    safetensors = pytest.importorskip("safetensors")
    cfg = json.load(open(tiny_run / "config.json"))
    want = llama_shapes(cfg)
    with safetensors.safe_open(str(tiny_run / "model.safetensors"), framework="np") as f:
        names = set(f.keys())
        assert names == set(want)
        for n in names:
            t = f.get_tensor(n)
            assert t.dtype == np.float32 and t.shape == want[n], n
            assert np.isfinite(t).all(), n
    with safetensors.safe_open(str(tiny_run / "optimizer.safetensors"), framework="np") as f:
        names = set(f.keys())
        assert names == {"%s.%s" % (m, n) for m in ("exp_avg", "exp_avg_sq") for n in want}
        for n in names:
            t = f.get_tensor(n)
            assert t.dtype == np.float32 and t.shape == want[n.split(".", 1)[1]], n
            if n.startswith("exp_avg_sq."):
                assert (t >= 0).all(), n
    pt = pytest.importorskip("safetensors.torch")
    sd = pt.load_file(str(tiny_run / "model.safetensors"))
    assert {k: tuple(v.shape) for k, v in sd.items()} == want


def halfs_ids(cli, tok, text_path, tmp_path):
    out = tmp_path / "ids.txt"
    cli("tokenizer", "encode", "--tokenizer", tok, "--ids", "-o", out, text_path)
    return [int(t) for t in out.read_text().split()]


def test_tokenizers_gives_halfs_ids(cli, tiny_corpus, tmp_path):
    tokenizers = pytest.importorskip("tokenizers")
    tok = tokenizers.Tokenizer.from_file(str(tiny_corpus / "tok.json"))
    text = (tiny_corpus / "text.txt").read_bytes().decode("utf-8")
    ids = tok.encode(text).ids
    assert ids == halfs_ids(cli, tiny_corpus / "tok.json", tiny_corpus / "text.txt", tmp_path)
    assert ids == read_shard(tiny_corpus / "text.bin").tolist()
    assert tok.decode(ids) == text
    assert tok.get_vocab_size() == 320


def test_tokenizers_on_the_corpus(cli, tmp_path):
    """The embedded corpus' tokenizer (vocab 4096) on the validation text, when
    `halfs corpus` has prepared it (~/.cache/halfs)."""
    tokenizers = pytest.importorskip("tokenizers")
    info = json.loads(cli("corpus", "--json").stdout)
    if not info.get("cached"):
        pytest.skip("the embedded corpus is not prepared (run `halfs corpus`)")
    with gzip.open(os.path.join(ROOT, "data", "kjv-val.txt.gz"), "rb") as f:
        raw = f.read()
    (tmp_path / "val.txt").write_bytes(raw)
    tok = tokenizers.Tokenizer.from_file(info["tokenizer"])
    ids = tok.encode(raw.decode("utf-8")).ids
    assert len(ids) > 10000
    assert ids == halfs_ids(cli, info["tokenizer"], tmp_path / "val.txt", tmp_path)


def test_transformers_llama_loss(cli, tiny_run, tiny_corpus):
    """transformers' LlamaForCausalLM on the checkpoint directory: the loss of `halfs eval
    --recipe fp32` on the same windows (fp32 on both sides, different summation orders)."""
    transformers = pytest.importorskip("transformers")
    torch = pytest.importorskip("torch")
    B, T = 4, 32
    shard = tiny_corpus / "text.bin"
    want = json.loads(cli("eval", tiny_run, "--data", shard, "--batches", 1, "--batch", B,
                          "--seq", T, "--recipe", "fp32", "--json").stdout)
    model = transformers.LlamaForCausalLM.from_pretrained(str(tiny_run)).eval()
    tok = torch.from_numpy(read_shard(shard)[: B * T + 1].copy())
    w = torch.stack([tok[b * T: b * T + T + 1] for b in range(B)])
    with torch.no_grad():
        logits = model(w[:, :T]).logits
    loss = torch.nn.functional.cross_entropy(logits.reshape(-1, logits.shape[-1]),
                                             w[:, 1:].reshape(-1)).item()
    print("transformers %s: loss %.7f, halfs eval %.6f" % (transformers.__version__, loss,
                                                          want["loss"]))
    assert abs(loss - want["loss"]) <= 5e-6
