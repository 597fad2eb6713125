#!/usr/bin/python3
"""torch_train_speed.py: PyTorch CPU training speed of the same Llama-style model halfs trains.

The baseline of issue 4's "fp32 at least as fast as PyTorch CPU fp32": this script builds the
model of tests/torch_ref.py (the PyTorch twin the gradient test checks halfs against: same
RMSNorm, RoPE, causal attention, SwiGLU, untied lm_head, cross-entropy) with the dimensions of a
halfs preset, and times full training steps (forward, backward, clip_grad_norm_, AdamW) on
synthetic tokens, like `halfs bench train`: warm-up step(s), then the median of the timed
steps. `--autocast bf16` runs the forward under torch.autocast(cpu, bfloat16), PyTorch's bf16
mixed precision.

Usage: /usr/bin/python3 bench/torch_train_speed.py [--dim 256] [--layers 6] [--heads 8]
          [--ffn 704] [--vocab 4096] [--batch 16] [--seq 256] [--steps 5] [--threads 2]
          [--autocast none|bf16] [--json]
Defaults are halfs's `small` preset at B=16, T=256 (the shape `halfs bench train` uses).
Run it with OPENBLAS_CORETYPE and OPENBLAS_L2_SIZE unset, as the halfs benchmarks.
"""
import argparse
import json
import os
import statistics
import sys
import time

import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests"))
from torch_ref import forward  # noqa: E402  (the model the gradient test validates)


def params(a):
    g = torch.Generator().manual_seed(1)
    C, V, Fd = a.dim, a.vocab, a.ffn

    def mat(r, c):
        return (torch.randn(r, c, generator=g) * 0.02).requires_grad_(True)

    p = {"model.embed_tokens.weight": mat(V, C)}
    for i in range(a.layers):
        pre = f"model.layers.{i}."
        p[pre + "input_layernorm.weight"] = torch.ones(C, requires_grad=True)
        p[pre + "post_attention_layernorm.weight"] = torch.ones(C, requires_grad=True)
        for n in ("q", "k", "v", "o"):
            p[pre + f"self_attn.{n}_proj.weight"] = mat(C, C)
        p[pre + "mlp.gate_proj.weight"] = mat(Fd, C)
        p[pre + "mlp.up_proj.weight"] = mat(Fd, C)
        p[pre + "mlp.down_proj.weight"] = mat(C, Fd)
    p["model.norm.weight"] = torch.ones(C, requires_grad=True)
    p["lm_head.weight"] = mat(V, C)
    return p


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--dim", type=int, default=256)
    ap.add_argument("--layers", type=int, default=6)
    ap.add_argument("--heads", type=int, default=8)
    ap.add_argument("--ffn", type=int, default=704)
    ap.add_argument("--vocab", type=int, default=4096)
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--seq", type=int, default=256)
    ap.add_argument("--steps", type=int, default=5)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--autocast", choices=("none", "bf16"), default="none")
    ap.add_argument("--json", action="store_true")
    a = ap.parse_args()
    for k in ("dim", "layers", "heads", "ffn", "vocab", "batch", "seq", "steps", "threads"):
        if getattr(a, k) < 1:
            ap.error(f"--{k} must be at least 1")
    if a.dim % a.heads or (a.dim // a.heads) % 2:
        ap.error("--heads must divide --dim into an even head size")
    torch.set_num_threads(a.threads)
    cfg = {"dim": a.dim, "heads": a.heads, "layers": a.layers, "rope_theta": 10000.0, "eps": 1e-5}
    p = params(a)
    mats = [t for n, t in p.items() if t.dim() == 2]
    vecs = [t for n, t in p.items() if t.dim() == 1]
    opt = torch.optim.AdamW([{"params": mats, "weight_decay": 0.1},
                             {"params": vecs, "weight_decay": 0.0}], lr=1e-3)
    g = torch.Generator().manual_seed(2)
    tokens = torch.randint(0, a.vocab, (a.batch, a.seq + 1), generator=g)
    inputs, targets = tokens[:, :-1], tokens[:, 1:]

    def step():
        opt.zero_grad(set_to_none=True)
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=a.autocast == "bf16"):
            logits = forward(p, cfg, inputs)
        loss = F.cross_entropy(logits.float().reshape(-1, a.vocab), targets.reshape(-1))
        loss.backward()
        torch.nn.utils.clip_grad_norm_(list(p.values()), 1.0)
        opt.step()
        return loss.item()

    step()  # warm-up
    times = []
    for _ in range(a.steps):
        t0 = time.perf_counter()
        step()
        times.append(time.perf_counter() - t0)
    ms = statistics.median(times) * 1e3
    tps = a.batch * a.seq / (ms / 1e3)
    name = "torch-fp32" if a.autocast == "none" else "torch-bf16-autocast"
    if a.json:
        print(json.dumps({"recipe": name, "torch": torch.__version__, "threads": a.threads,
                          "batch": a.batch, "seq": a.seq, "ms_per_step": round(ms, 1),
                          "tokens_per_s": round(tps)}))
    else:
        print(f"{name}: PyTorch {torch.__version__}, {a.threads} threads, B={a.batch} T={a.seq}: "
              f"{ms:.1f} ms/step, {tps:.0f} tokens/s (median of {a.steps} steps)")


if __name__ == "__main__":
    main()
