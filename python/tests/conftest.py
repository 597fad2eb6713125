"""Fixtures of the halfs Python tests: the CLI (HALFS_BIN, else build/halfs of this tree), a
scratch directory, conformance vectors and a tiny trained run, each made once per session.
tests/python_tests.sh runs them from `make test` with HALFS_LIB and HALFS_BIN set."""
import gzip
import json
import os
import subprocess

import numpy as np
import pytest

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))


def cli_path():
    return os.environ.get("HALFS_BIN") or os.path.join(ROOT, "build", "halfs")


def run_cli(*args, check=True):
    """Run the halfs CLI; returns stdout (str)."""
    r = subprocess.run([cli_path(), *map(str, args)], capture_output=True, text=True)
    if check and r.returncode != 0:
        raise AssertionError("halfs %s failed (%d): %s" % (" ".join(map(str, args)),
                                                           r.returncode, r.stderr))
    return r


@pytest.fixture(scope="session")
def cli():
    if not os.path.exists(cli_path()):
        pytest.skip("no halfs CLI at %s (make)" % cli_path())
    return run_cli


@pytest.fixture(scope="session")
def scratch(tmp_path_factory):
    return tmp_path_factory.mktemp("halfs")


@pytest.fixture(scope="session")
def vectors(cli, scratch):
    """`halfs vectors` written once (45 MB), removed at the end of the session."""
    import shutil
    import halfs.conformance as hc
    d = scratch / "vectors"
    cli("vectors", "--out", d)
    yield hc.load(str(d))
    shutil.rmtree(d, ignore_errors=True)


@pytest.fixture(scope="session")
def tiny_corpus(cli, scratch):
    """A byte-level BPE tokenizer (vocab 320) trained by the CLI on 60 kB of the embedded KJV
    validation text, the text, and its token shard."""
    d = scratch / "corpus"
    d.mkdir()
    with gzip.open(os.path.join(ROOT, "data", "kjv-val.txt.gz"), "rb") as f:
        text = f.read(60000)
    (d / "text.txt").write_bytes(text)
    cli("tokenizer", "train", "--vocab", 320, "-o", d / "tok.json", d / "text.txt")
    cli("tokenizer", "encode", "--tokenizer", d / "tok.json", "-o", d / "text.bin", d / "text.txt")
    return d


def read_shard(path):
    """Token ids of an llm.c shard (256 int32 header, magic 20240520, then uint16 tokens)."""
    raw = open(path, "rb").read()
    head = np.frombuffer(raw[:1024], dtype="<i4")
    assert head[0] == 20240520, "not an llm.c shard"
    n = int(head[2])
    return np.frombuffer(raw[1024:1024 + 2 * n], dtype="<u2").astype(np.int64)


@pytest.fixture(scope="session")
def tiny_run(cli, tiny_corpus, scratch):
    """A nano model trained 40 steps in mxfp4-halfs on the tiny corpus: its checkpoint dir."""
    out = scratch / "run"
    shard = tiny_corpus / "text.bin"
    cli("train", "--model", "nano", "--vocab", 320, "--data", shard, "--val", shard, "--steps", 40,
        "--batch", 2, "--seq", 32, "--eval-every", 0, "--out", out, "--quiet")
    ck = sorted(p for p in out.iterdir() if p.name.startswith("ckpt-"))[-1]
    return ck
