#!/usr/bin/python3
"""torch_ref.py: the PyTorch twin of halfs's nano model, for tests/test_torch.c.

Usage: /usr/bin/python3 tests/torch_ref.py DIR [DIR...]

DIR holds what the C test wrote: meta.txt (config, schedule and the tensor table: name, shape,
offset in floats), params.f32 (initial weights, the halfs parameter layout), batches.i32
(steps × 2 × B × T: inputs then targets of each step). This script builds the same model in
plain PyTorch (Hugging Face Llama conventions: RMSNorm, rotate_half RoPE, SwiGLU, untied or tied
lm_head), and writes
  logits.f32 (B×T×V of step 0's batch), loss.f32 (1), grads.f32 (the gradient of step 0, halfs
  layout), losses.f32 (the training loss of each step of an AdamW run: torch.optim.AdamW with
  weight decay on matrices only, clip_grad_norm_, constant learning rate).
The comparison and its tolerances live in the C test.
"""
import math
import sys

import torch
import torch.nn.functional as F


def read_meta(path):
    cfg, tensors = {}, []
    with open(path) as f:
        for line in f:
            parts = line.split()
            if not parts:
                continue
            if parts[0] == "tensor":
                name, off, numel, ndim = parts[1], int(parts[2]), int(parts[3]), int(parts[4])
                shape = [int(x) for x in parts[5:5 + ndim]]
                tensors.append((name, off, numel, shape))
            else:
                cfg[parts[0]] = float(parts[1]) if "." in parts[1] or "e" in parts[1] else int(parts[1])
    return cfg, tensors


def rms_norm(x, w, eps):
    var = x.pow(2).mean(-1, keepdim=True)
    return w * (x * torch.rsqrt(var + eps))


def rotate_half(x):
    h = x.shape[-1] // 2
    return torch.cat((-x[..., h:], x[..., :h]), dim=-1)


def forward(p, cfg, inputs):
    B, T = inputs.shape
    C, H, L = cfg["dim"], cfg["heads"], cfg["layers"]
    hd = C // H
    inv_freq = 1.0 / (cfg["rope_theta"] ** (torch.arange(0, hd, 2).float() / hd))
    t = torch.arange(T).float()
    freqs = torch.outer(t, inv_freq)
    emb = torch.cat((freqs, freqs), dim=-1)
    cos, sin = emb.cos(), emb.sin()
    x = p["model.embed_tokens.weight"][inputs]
    mask = torch.full((T, T), float("-inf")).triu(1)
    for i in range(L):
        pre = f"model.layers.{i}."
        h = rms_norm(x, p[pre + "input_layernorm.weight"], cfg["eps"])
        q = (h @ p[pre + "self_attn.q_proj.weight"].T).view(B, T, H, hd).transpose(1, 2)
        k = (h @ p[pre + "self_attn.k_proj.weight"].T).view(B, T, H, hd).transpose(1, 2)
        v = (h @ p[pre + "self_attn.v_proj.weight"].T).view(B, T, H, hd).transpose(1, 2)
        q = q * cos + rotate_half(q) * sin
        k = k * cos + rotate_half(k) * sin
        att = (q @ k.transpose(-1, -2)) / math.sqrt(hd) + mask
        att = torch.softmax(att, dim=-1)
        o = (att @ v).transpose(1, 2).reshape(B, T, C)
        x = x + o @ p[pre + "self_attn.o_proj.weight"].T
        h = rms_norm(x, p[pre + "post_attention_layernorm.weight"], cfg["eps"])
        g = h @ p[pre + "mlp.gate_proj.weight"].T
        u = h @ p[pre + "mlp.up_proj.weight"].T
        x = x + (F.silu(g) * u) @ p[pre + "mlp.down_proj.weight"].T
    x = rms_norm(x, p["model.norm.weight"], cfg["eps"])
    w = p["lm_head.weight"] if "lm_head.weight" in p else p["model.embed_tokens.weight"]
    return x @ w.T


def run(d):
    cfg, tensors = read_meta(d + "/meta.txt")
    flat = torch.from_numpy(__import__("numpy").fromfile(d + "/params.f32", dtype="float32"))
    B, T, V, S = cfg["batch"], cfg["seq"], cfg["vocab"], cfg["steps"]
    batches = torch.from_numpy(__import__("numpy").fromfile(d + "/batches.i32", dtype="int32"))
    batches = batches.view(S, 2, B, T).long()
    p = {}
    for name, off, numel, shape in tensors:
        p[name] = flat[off:off + numel].clone().view(*shape).requires_grad_(True)

    def loss_of(step):
        logits = forward(p, cfg, batches[step, 0])
        return logits, F.cross_entropy(logits.view(-1, V), batches[step, 1].reshape(-1))

    logits, loss = loss_of(0)
    loss.backward()
    logits.detach().numpy().astype("float32").tofile(d + "/logits.f32")
    torch.tensor([loss.item()], dtype=torch.float32).numpy().tofile(d + "/loss.f32")
    grads = torch.zeros_like(flat)
    for name, off, numel, shape in tensors:
        grads[off:off + numel] = p[name].grad.reshape(-1)
    grads.numpy().tofile(d + "/grads.f32")

    for t in p.values():
        t.grad = None
    decay = [p[n] for n, _, _, s in tensors if len(s) == 2]
    no_decay = [p[n] for n, _, _, s in tensors if len(s) == 1]
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": cfg["wd"]},
                             {"params": no_decay, "weight_decay": 0.0}],
                            lr=cfg["lr"], betas=(cfg["beta1"], cfg["beta2"]), eps=cfg["adam_eps"])
    losses = []
    for s in range(S):
        opt.zero_grad(set_to_none=True)
        _, loss = loss_of(s)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(list(p.values()), cfg["clip"])
        opt.step()
        losses.append(loss.item())
    torch.tensor(losses, dtype=torch.float32).numpy().tofile(d + "/losses.f32")


if __name__ == "__main__":
    torch.set_num_threads(1)
    for d in sys.argv[1:]:
        run(d)
