"""halfs' numerics from Python against the CLI and the C library on the same inputs: qdq values
and stats bit for bit, theory equal, packed codes and scales against the conformance vectors
(test_conformance.py), the packed GEMM against float64, zero-copy inputs, and every bad input
raising ValueError or TypeError with the library's message."""
import json

import numpy as np
import pytest

import halfs
from conftest import run_cli


def heavy(rows, cols, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.standard_t(3, size=(rows, cols)).astype(np.float32)
    x[0, :7] = [0.0, -0.0, 1e-40, 3.0, -6.0, 0.25, 1e30]
    return x


def cjson(v):
    """A number as the CLI's JSON writer (cJSON) prints it: %.15g unless that does not read back
    within cJSON's tolerance (DBL_EPSILON relative), then %.17g; containers element-wise."""
    if isinstance(v, dict):
        return {k: cjson(e) for k, e in v.items()}
    if isinstance(v, float):
        s = float("%.15g" % v)
        return s if abs(s - v) <= np.finfo(np.float64).eps * max(abs(s), abs(v)) \
            else float("%.17g" % v)
    return v


QDQ_CASES = [
    ("mxfp4", "halfs", [], {}),
    ("mxfp4", "ocp", ["--block", "16"], {"block": 16}),
    ("mxfp4", "ceil", ["--rounding", "sr", "--seed", "7"], {"rounding": "sr", "seed": 7}),
    ("nvfp4", "4over6", [], {}),
    ("nvfp4", "max", ["--transpose"], {"axis": 0}),
    ("fp4", "mse", [], {}),
    ("fp4row", "halfs", [], {}),
    ("mxfp8-e4m3", "ocp", ["--rounding", "rna"], {"rounding": "rna"}),
    ("int4", "max", [], {}),
    ("bf16", None, [], {}),
    ("mxfp4", "halfs", ["--rht", "32", "--rht-seed", "5"], {"rht": 32, "rht_seed": 5}),
]


@pytest.mark.parametrize("fmt,rule,args,kw", QDQ_CASES)
def test_qdq_matches_cli(cli, tmp_path, fmt, rule, args, kw):
    x = heavy(64, 128)
    x.tofile(tmp_path / "in.f32")
    scale = ["--scale", rule] if rule else []
    cli("qdq", "--format", fmt, *scale, *args, "--cols", 128, tmp_path / "in.f32",
        tmp_path / "out.f32")
    want = np.fromfile(tmp_path / "out.f32", dtype=np.float32).reshape(64, 128)
    got = halfs.qdq(x, fmt, rule=rule, **kw)
    assert got.dtype == np.float32 and got.shape == x.shape
    assert np.array_equal(got.view(np.uint32), want.view(np.uint32))


@pytest.mark.parametrize("fmt,args,kw", [
    ("mxfp4", [], {}), ("nvfp4", ["--transpose"], {"axis": 0}),
    ("fp4", ["--block", "64"], {"block": 64}), ("int4", [], {}), ("bf16", [], {}),
    ("mxfp4", ["--rounding", "sr", "--seed", "3"], {"rounding": "sr", "seed": 3}),
])
def test_stats_matches_cli(cli, tmp_path, fmt, args, kw):
    x = heavy(32, 256, seed=1)
    x.tofile(tmp_path / "in.f32")
    want = json.loads(cli("stats", "--format", fmt, *args, "--cols", 256, "--json",
                          tmp_path / "in.f32").stdout)
    got = halfs.stats(x, fmt, **kw)
    assert cjson(got) == want
    assert list(got) == list(want)  # the same rules, in the same order


def test_theory_matches_cli(cli):
    want = json.loads(cli("theory", "--dist", "t:4", "--group", "32,256", "--samples", 4096,
                          "--seed", 9, "--json").stdout)
    assert cjson(halfs.theory("t:4", "e2m1", groups=(32, 256), samples=4096, seed=9)) == want


@pytest.mark.parametrize("fmt,kw", [
    ("mxfp4", {}), ("mxfp4", {"rule": "ceil", "block": 16}), ("nvfp4", {}),
    ("nvfp4", {"tile2d": 16}), ("fp4", {}), ("fp4row", {}), ("mxfp8-e4m3", {}), ("int4", {}),
    ("bf16", {}), ("fp32", {}), ("mxfp4", {"group": "tensor", "rule": "ocp"}),
    ("mxfp4", {"rounding": "sr", "seed": 11}),
])
@pytest.mark.parametrize("axis", [-1, 0])
def test_quantize_dequantize_is_qdq(fmt, kw, axis):
    x = heavy(48, 96, seed=2)
    q = halfs.quantize(x, fmt, axis=axis, **kw)
    assert q.shape == x.shape and q.axis == (0 if axis == 0 else -1)
    assert q.packed_shape == (x.shape[::-1] if axis == 0 else x.shape)
    y = q.dequantize()
    assert np.array_equal(y.view(np.uint32), halfs.qdq(x, fmt, axis=axis, **kw).view(np.uint32))


def test_packed_layout():
    x = np.zeros((2, 64), dtype=np.float32)
    x[0, 0], x[0, 1], x[1, 33] = 6.0, -0.5, 3.0
    q = halfs.quantize(x, "mxfp4", rule="ocp")
    assert q.codes.shape == (2, 32) and q.scales.shape == (2, 2) and q.scales.dtype == np.uint8
    assert q.codes[0, 0] == 0x7 | (0x9 << 4)  # 6 = code 7 in the low nibble, -0.5 = 0x9 high
    assert q.scales[0, 0] == 127 and q.scales[1, 1] == 126  # 2^0; 3 = 1.5·2^1 → 2^(1-2)
    assert q.codes[1, 16] == 0x7 << 4  # element 33: the high nibble of byte 16, 3/0.5 = 6
    nv = halfs.quantize(x, "nvfp4")
    assert nv.scales.dtype == np.uint8 and nv.tensor_scale != 1.0
    f = halfs.quantize(x, "fp4")
    assert f.scales.dtype == np.float32 and f.scales[0, 0] == 1.0


def test_matmul_packed_gemm():
    rng = np.random.default_rng(3)
    a = rng.standard_normal((40, 96)).astype(np.float32)
    b = rng.standard_normal((96, 24)).astype(np.float32)
    for fmt in ("mxfp4", "nvfp4", "fp4row", "int4"):
        qa, qb = halfs.quantize(a, fmt), halfs.quantize(b, fmt, axis=0)
        c = halfs.matmul(qa, qb)
        A, B = qa.dequantize().astype(np.float64), qb.dequantize().astype(np.float64)
        # fp32 accumulation of K products: |c − AB| ≤ γ_K·|A||B|, γ_K = K·u/(1 − K·u)
        K, u = 96, 2.0 ** -24
        bound = K * u / (1 - K * u) * (np.abs(A) @ np.abs(B)) + 1e-30
        assert np.all(np.abs(c - A @ B) <= bound), fmt
        assert np.array_equal(c, qa @ qb)
    w = rng.standard_normal((24, 96)).astype(np.float32)  # a weight, N × K
    qw = halfs.quantize(w, "mxfp4")
    c = halfs.matmul(halfs.quantize(a, "mxfp4"), qw.T)
    assert c.shape == (40, 24)
    W = qw.dequantize().astype(np.float64)
    A = halfs.qdq(a, "mxfp4").astype(np.float64)
    assert np.allclose(c, A @ W.T, rtol=0, atol=96 * 2.0 ** -23 * np.abs(A).max() * np.abs(W).max() * 96)


def test_zero_copy_inputs():
    x = heavy(32, 160, seed=4)
    sub = x[:, :128]  # row stride 160: read in place (ld), not copied
    assert not sub.flags.c_contiguous
    assert np.array_equal(halfs.qdq(sub, "mxfp4"), halfs.qdq(np.ascontiguousarray(sub), "mxfp4"))
    q1, q2 = halfs.quantize(sub, "nvfp4"), halfs.quantize(sub.copy(), "nvfp4")
    assert np.array_equal(q1.codes, q2.codes) and np.array_equal(q1.scales, q2.scales)
    x3 = heavy(4 * 8, 64, seed=5).reshape(4, 8, 64)
    assert halfs.qdq(x3, "mxfp4").shape == (4, 8, 64)
    assert np.array_equal(halfs.qdq(x3, "mxfp4").reshape(32, 64), halfs.qdq(x3.reshape(32, 64), "mxfp4"))


def test_torch_inputs():
    torch = pytest.importorskip("torch")
    x = heavy(16, 64, seed=6)
    t = torch.from_numpy(x.copy()).requires_grad_(True)
    y = halfs.qdq(t, "mxfp4")
    assert isinstance(y, torch.Tensor) and torch.equal(y, torch.from_numpy(halfs.qdq(x, "mxfp4")))
    q = halfs.quantize(t[:, :32], "mxfp4")  # a strided view, read in place
    assert np.array_equal(q.dequantize(), halfs.qdq(x[:, :32], "mxfp4"))
    with pytest.raises(TypeError, match="float32"):
        halfs.quantize(t.double(), "mxfp4")
    with pytest.raises(ValueError, match="contiguous"):
        halfs.quantize(t.t(), "mxfp4")


BAD = [
    (lambda x: halfs.quantize(x.astype(np.float64), "mxfp4"), TypeError, "float64"),
    (lambda x: halfs.quantize(np.zeros(x.shape, np.float16), "mxfp4"), TypeError, "float16"),
    (lambda x: halfs.quantize(list(x), "mxfp4"), TypeError, "numpy array"),
    (lambda x: halfs.quantize(x[:, ::2], "mxfp4"), ValueError, "contiguous"),
    (lambda x: halfs.quantize(x.T, "mxfp4"), ValueError, "contiguous"),
    (lambda x: halfs.quantize(x[:, :0], "mxfp4"), ValueError, "empty"),
    (lambda x: halfs.quantize(x, "mxfp5"), ValueError, "unknown format 'mxfp5'"),
    (lambda x: halfs.quantize(x, "mxfp4", rule="halfz"), ValueError, "unknown scale rule"),
    (lambda x: halfs.quantize(x, "mxfp4", rounding="up"), ValueError, "unknown rounding"),
    (lambda x: halfs.quantize(x, "mxfp4", block=17), ValueError, "block"),
    (lambda x: halfs.quantize(x, "mxfp4", rule="max"), ValueError, "E8M0"),
    (lambda x: halfs.quantize(x, "mxfp4", rule="4over6"), ValueError, "4over6"),
    (lambda x: halfs.quantize(x, "mxfp4", rht=24), ValueError, "rht"),
    (lambda x: halfs.quantize(x[:, :40], "mxfp4", rht=32), ValueError, "40"),
    (lambda x: halfs.quantize(x, "mxfp4", axis=2), ValueError, "axis"),
    (lambda x: halfs.quantize(x, "mxfp4", seed=-1), ValueError, "seed"),
    (lambda x: halfs.quantize(x, "mxfp4", group="col"), ValueError, "group"),
    (lambda x: halfs.quantize(x, 4), TypeError, "format"),
    (lambda x: halfs.qdq(x, "nvfp4", tile2d=8), ValueError, "tile|block"),
    (lambda x: halfs.stats(x, "mxfp4", rule="nope"), ValueError, "unknown scale rule"),
    (lambda x: halfs.theory("cauchy"), ValueError, "cauchy"),
    (lambda x: halfs.theory("t:2"), ValueError, "2"),
    (lambda x: halfs.theory(groups=(1,)), ValueError, "group"),
    (lambda x: halfs.matmul(x, x), TypeError, "QTensor"),
    (lambda x: halfs.matmul(halfs.quantize(x, "mxfp4"), halfs.quantize(x, "mxfp4")),
     ValueError, "axis 0"),
    (lambda x: halfs.matmul(halfs.quantize(x, "mxfp4"), halfs.quantize(x[:32], "mxfp4", axis=0)),
     ValueError, "chain"),
]


@pytest.mark.parametrize("i", range(len(BAD)))
def test_bad_input_raises(i):
    fn, exc, msg = BAD[i]
    x = heavy(16, 64, seed=7)
    with pytest.raises(exc, match=msg) as e:
        fn(x)
    assert str(e.value)


def test_quantize_into_out():
    x = heavy(32, 64, seed=8)
    q = halfs.quantize(x, "mxfp4", rule="ocp")
    codes = q.codes
    r = halfs.quantize(x * 2, "mxfp4", rule="halfs", out=q)
    assert r is q and q.spec.rule == "halfs" and np.shares_memory(codes, q.codes)
    assert np.array_equal(q.dequantize(), halfs.qdq(x * 2, "mxfp4"))
    with pytest.raises(ValueError, match="layout"):
        halfs.quantize(x, "nvfp4", out=q)
    with pytest.raises(ValueError, match="layout"):
        halfs.quantize(x[:16], "mxfp4", out=q)
    with pytest.raises(TypeError, match="QTensor"):
        halfs.quantize(x, "mxfp4", out=x)


def test_qtensor_copy_and_pickle():
    import copy
    import pickle
    x = heavy(32, 64, seed=9)
    for fmt in ("mxfp4", "nvfp4", "fp4", "bf16"):
        q = halfs.quantize(x, fmt)
        c = copy.deepcopy(q)
        assert not np.shares_memory(c.codes, q.codes) and np.array_equal(c.codes, q.codes)
        assert c.tensor_scale == q.tensor_scale
        del q
        assert np.array_equal(c.dequantize(), halfs.qdq(x, fmt))
        with pytest.raises(TypeError, match="pickle"):
            pickle.dumps(c)
