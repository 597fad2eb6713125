#!/usr/bin/env python3
"""train_convert.py: train a small PyTorch model in fp32 and in a halfs FP4 recipe, and print
the loss gap.

The model is a two-layer causal self-attention language model on characters of a short text;
halfs.torch.convert swaps its nn.Linear modules (all but the output head) for halfs Linear
layers whose forward and backward GEMMs run in the recipe, on the CPU.

usage: python3 train_convert.py [RECIPE ...]   (default: mxfp4-halfs mxfp4-max nvfp4)
"""
import gzip
import math
import os
import sys
import time

import torch

import halfs.torch as ht

STEPS, B, T, C = 100, 12, 64, 128


class Block(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.qkv, self.o = torch.nn.Linear(C, 3 * C, bias=False), torch.nn.Linear(C, C, bias=False)
        self.up, self.down = torch.nn.Linear(C, 4 * C, bias=False), torch.nn.Linear(4 * C, C, bias=False)
        self.n1, self.n2 = torch.nn.LayerNorm(C), torch.nn.LayerNorm(C)

    def forward(self, x):
        Bn, Tn, _ = x.shape
        q, k, v = self.qkv(self.n1(x)).split(C, dim=-1)
        q, k, v = (t.view(Bn, Tn, 4, C // 4).transpose(1, 2) for t in (q, k, v))
        mask = torch.full((Tn, Tn), float("-inf")).triu(1)
        a = torch.softmax(q @ k.transpose(-1, -2) / math.sqrt(C // 4) + mask, -1) @ v
        x = x + self.o(a.transpose(1, 2).reshape(Bn, Tn, C))
        return x + self.down(torch.nn.functional.gelu(self.up(self.n2(x))))


class LM(torch.nn.Module):
    def __init__(self, vocab):
        super().__init__()
        self.emb, self.pos = torch.nn.Embedding(vocab, C), torch.nn.Parameter(torch.zeros(T, C))
        self.blocks = torch.nn.Sequential(Block(), Block())
        self.head = torch.nn.Linear(C, vocab)

    def forward(self, idx):
        return self.head(self.blocks(self.emb(idx) + self.pos[: idx.shape[1]]))


def text():
    path = os.path.join(os.path.dirname(__file__), "..", "..", "data", "kjv-train.txt.gz")
    with gzip.open(path, "rb") as f:
        return f.read(400000)


def train(recipe, data, vocab):
    torch.manual_seed(0)
    model = LM(vocab)
    if recipe != "fp32":
        ht.convert(model, recipe, skip=["head"], seed=1)
    opt = torch.optim.AdamW(model.parameters(), lr=2e-3, weight_decay=0.01)
    g = torch.Generator().manual_seed(1)
    losses = []
    for step in range(STEPS):
        i = torch.randint(0, len(data) - T - 1, (B,), generator=g)
        batch = torch.stack([data[j: j + T + 1] for j in i])
        loss = torch.nn.functional.cross_entropy(model(batch[:, :-1]).reshape(-1, vocab),
                                                 batch[:, 1:].reshape(-1))
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    return sum(losses[-20:]) / 20


def main():
    recipes = sys.argv[1:] or ["mxfp4-halfs", "mxfp4-max", "nvfp4"]
    raw = text()
    chars = sorted(set(raw))
    data = torch.tensor([chars.index(c) for c in raw], dtype=torch.long)
    t0 = time.time()
    base = train("fp32", data, len(chars))
    print("fp32 (PyTorch): loss %.4f over the last 20 of %d steps (%.1f s)"
          % (base, STEPS, time.time() - t0))
    for r in recipes:
        t0 = time.time()
        loss = train(r, data, len(chars))
        print("%-14s loss %.4f  gap to fp32 %+.4f (%+.2f%%)  (%.1f s)"
              % (r, loss, loss - base, 100 * (loss - base) / base, time.time() - t0))


if __name__ == "__main__":
    main()
