"""Conformance vectors (`halfs vectors`): halfs' own quantizers (hs_quantize through
halfs.quantize, the dispatched SIMD kernels) reproduce every vector's codes, scales, tensor scale
and dequantized values bit for bit; the manifest covers every format × rule × rounding ×
grouping; and a deliberately wrong quantizer fails with a readable report."""
import numpy as np
import pytest

import halfs
import halfs.conformance as hc


def own(x, case):
    return halfs.quantize(x, hc.case_spec(case))


def test_every_vector_passes(vectors):
    bad = [(c["name"], m) for c in vectors.cases if (m := hc.run_case(own, vectors, c))]
    assert not bad, bad[:3]
    deq = [(c["name"], m) for c in vectors.cases
           if (m := hc.run_case(lambda x, case: halfs.quantize(x, hc.case_spec(case)).dequantize(),
                                vectors, c))]
    assert not deq, deq[:3]


def test_coverage(vectors):
    names = {c["name"] for c in vectors.cases}
    assert len(names) == len(vectors.cases) > 1000
    for fmt in halfs.FORMATS:
        spec = halfs.make_spec(fmt)
        cases = [c for c in vectors.cases if c["elem"] == spec.elem and c["scale"] == spec.scale_fmt]
        assert cases, fmt
        if spec.scale_fmt == "none":
            continue
        assert {c["rounding"] for c in cases} == set(halfs.ROUNDINGS), fmt
        rules = {r for r in halfs.RULES if _applies(fmt, r)}
        assert {c["rule"] for c in cases} == rules, fmt
    groupings = {hc.grouping_of(c) for c in vectors.cases if c["elem"] == "e2m1"}
    assert {"b16", "b32", "b64", "b128", "row", "tensor", "tile16", "b16-2l", "tile16-2l"} <= groupings
    # the edge cases are in the inputs: ties, NaN, ±Inf, zeros, subnormals, huge values
    fin = vectors.input(next(c for c in vectors.cases if c["format"] == "mxfp4" and c["input"] == "finite"))
    spc = vectors.input(next(c for c in vectors.cases if c["format"] == "mxfp4" and c["input"] == "special"))
    assert np.isfinite(fin).all() and np.isnan(spc).any() and np.isposinf(spc).any() and np.isneginf(spc).any()
    tiny = np.abs(fin[(fin != 0)]) < np.finfo(np.float32).tiny
    assert tiny.any() and (np.abs(spc) > 1e38).any()
    assert (fin.reshape(-1, 16) == 0).all(axis=1).any()
    for t in (0.25, 0.75, 1.25, 1.75, 2.5, 3.5, 5.0):  # every E2M1 tie at scale 1
        assert (np.abs(fin) == t).any()


def _applies(fmt, rule):
    try:
        halfs.make_spec(fmt, rule=rule)
        return True
    except ValueError:
        return False


def test_check_accepts_halfs_and_each_output_form(vectors):
    for fmt, rule in (("mxfp4", "halfs"), ("mxfp4", "ocp"), ("nvfp4", "4over6"), ("fp4row", "halfs"),
                      ("int4", "max"), ("mxfp8-e4m3", "ocp"), ("bf16", None)):
        r = hc.check(own, fmt, rule, vectors=vectors)
        assert r.ok and r.cases, str(r)
    tup = lambda x, c: (lambda q: (q.codes, q.scales, q.tensor_scale))(own(x, c))
    assert hc.check(tup, "nvfp4", "max", vectors=vectors, groupings="all").ok
    assert hc.check(lambda x, c: own(x, c).dequantize(), "mxfp4", "halfs", vectors=vectors).ok
    r = hc.check(own, "mxfp4", None, rounding=None, groupings="all", vectors=vectors)
    assert r.ok and len(r.cases) > 200


def test_wrong_quantizer_fails_readably(vectors):
    ceil_as_ocp = lambda x, case: halfs.quantize(x, "mxfp4", rule="ceil")
    r = hc.check(ceil_as_ocp, "mxfp4", "ocp", vectors=vectors)
    assert not r.ok and len(r.failures) == len(r.cases) == 2
    text = str(r)
    assert "conformance mxfp4/ocp/rne: 2 of 2 cases FAIL" in text
    assert "mxfp4.b32.ocp.rne.finite" in text and "scales differ in" in text
    assert "expected 0x" in text and "(2^" in text
    # rounding ties away instead of to even: only the codes of tie points differ
    rna = lambda x, case: halfs.quantize(x, "mxfp4", rule="ocp", rounding="rna")
    r = hc.check(rna, "mxfp4", "ocp", vectors=vectors)
    assert not r.ok and "codes (bytes) differ" in str(r) and "scales differ" not in str(r)
    # a quantizer that raises, and one returning the wrong shape, are failures, not crashes
    def boom(x, case):
        raise RuntimeError("kernel not ready")
    assert "raised RuntimeError: kernel not ready" in str(hc.check(boom, "mxfp4", "ocp", vectors=vectors))
    assert "shape" in str(hc.check(lambda x, c: x[:, :8], "mxfp4", "ocp", vectors=vectors))
    with pytest.raises(ValueError, match="unknown scale rule"):
        hc.check(own, "mxfp4", "oc", vectors=vectors)


def test_vectors_cli_errors(cli, tmp_path):
    import os
    for args, msg in ((["vectors"], "missing --out"),
                      (["vectors", "--out", tmp_path], "already exists"),
                      (["vectors", "--out", tmp_path / "no" / "such"], "cannot create"),
                      (["vectors", "--out", tmp_path / "v", "extra"], "unexpected operand")):
        r = cli(*args, check=False)
        assert r.returncode == 1 and r.stderr.startswith("halfs: error: ") and msg in r.stderr
        assert "hint: " in r.stderr
    assert sorted(os.listdir(tmp_path)) == []  # nothing left behind
    r = cli("vectors", "--out", tmp_path / "v")
    assert "cases" in r.stdout and sorted(os.listdir(tmp_path)) == ["v"]
    assert sorted(os.listdir(tmp_path / "v")) == ["cases", "inputs", "manifest.json"]
