"""halfs.conformance: run your own quantizer against halfs' conformance vectors.

`halfs vectors --out DIR` writes, for every format × scale rule × rounding × grouping, inputs
that hit the edge cases (every tie point, saturation, NaN/Inf, all-zero and subnormal blocks,
exponent clamps, Half-S near-ties) with the expected packed codes, scales and dequantized
values of halfs' reference quantizer, and DIR/manifest.json (docs/PYTHON.md, "Conformance
vectors"). check() feeds each matching case's input to your function and compares bit for bit:

    import halfs.conformance as hc
    def my_quant(x, case):              # x: float32 rows × cols; case: the manifest entry
        return codes, scales            # or (codes, scales, tensor_scale), a QTensor, or the
                                        # dequantized float32 values
    report = hc.check(my_quant, "mxfp4", "halfs")
    print(report)                       # the first mismatches, readable
    assert report.ok

Codes are rows × row_bytes uint8 (E2M1/INT4: two per byte, element 2i in the low nibble of
byte i), scales rows × groups_per_row (uint8 E8M0/UE4M3 bytes, or float32), groups along rows.
"""
import json
import os
import shutil
import subprocess
import tempfile

import numpy as np

from . import RULES, QTensor, make_spec

__all__ = ["check", "load", "vectors_dir", "Report"]


def _cli():
    env = os.environ.get("HALFS_BIN")
    if env:
        return env
    here = os.path.dirname(os.path.abspath(__file__))
    tree = os.path.join(here, "..", "..", "build", "halfs")
    if os.path.exists(tree):
        return os.path.abspath(tree)
    found = shutil.which("halfs")
    if found:
        return found
    raise FileNotFoundError("halfs.conformance: no vectors given and no `halfs` CLI found to "
                            "write them (set HALFS_BIN, or run `halfs vectors --out DIR` and "
                            "pass vectors=DIR)")


def vectors_dir(path=None):
    """The vectors directory: path, else $HALFS_VECTORS, else a cached copy written once with
    `halfs vectors` under ~/.cache/halfs (or $XDG_CACHE_HOME/halfs)."""
    path = path or os.environ.get("HALFS_VECTORS")
    if path:
        if not os.path.exists(os.path.join(path, "manifest.json")):
            raise FileNotFoundError("'%s' has no manifest.json (write it with `halfs vectors "
                                    "--out %s`)" % (path, path))
        return path
    cache = os.path.join(os.environ.get("XDG_CACHE_HOME") or
                         os.path.join(os.path.expanduser("~"), ".cache"), "halfs")
    os.makedirs(cache, exist_ok=True)
    out = os.path.join(cache, "vectors-v1")
    if not os.path.exists(os.path.join(out, "manifest.json")):
        tmp = tempfile.mkdtemp(dir=cache)
        try:
            r = subprocess.run([_cli(), "vectors", "--out", os.path.join(tmp, "v")],
                               capture_output=True, text=True)
            if r.returncode != 0:
                raise RuntimeError("`halfs vectors` failed: " + r.stderr.strip())
            try:
                os.rename(os.path.join(tmp, "v"), out)
            except OSError:
                if not os.path.exists(os.path.join(out, "manifest.json")):
                    raise
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
    return out


class Vectors:
    """A loaded vectors directory: .cases (manifest entries) and their arrays."""

    def __init__(self, path):
        self.path = path
        with open(os.path.join(path, "manifest.json")) as f:
            self.manifest = json.load(f)
        self.cases = self.manifest["cases"]
        self._inputs = {}

    def _file(self, rel, dtype):
        return np.fromfile(os.path.join(self.path, rel), dtype=dtype)

    def input(self, case):
        key = "%s.%s" % (case["format"], case["input"])
        if key not in self._inputs:
            info = self.manifest["inputs"][key]
            self._inputs[key] = self._file(info["file"], np.float32).reshape(info["rows"],
                                                                              info["cols"])
        x = self._inputs[key].copy()
        x.flags.writeable = True
        return x

    def expected(self, case):
        """(codes, scales or None, tensor_scale, dequantized)."""
        r = case["rows"]
        codes = self._file(case["codes"], np.uint8).reshape(r, case["row_bytes"])
        scales = None
        if case["scales"]:
            dt = np.float32 if case["scale_bytes"] == 4 else np.uint8
            scales = self._file(case["scales"], dt).reshape(r, case["groups_per_row"])
        deq = self._file(case["dequant"], np.float32).reshape(r, case["cols"])
        return codes, scales, np.float32(case["tensor_scale"]), deq


def load(path=None):
    """The Vectors of a directory (see vectors_dir for the default)."""
    return Vectors(vectors_dir(path))


def grouping_of(case):
    """A case's grouping name as in its file name: b16..b128, row, tensor, tile16 (+"-2l")."""
    g = case["group"]
    if g == "block":
        g = "tile%d" % case["tile2d"] if case["tile2d"] else "b%d" % case["block"]
    return g + ("-2l" if case["two_level"] else "")


def case_spec(case):
    """The QuantSpec of a case (halfs.quantize(x, case_spec(case)) reproduces it)."""
    fmt = case["format"]
    return make_spec(fmt, rule=case["rule"] if case["scale"] != "none" else None,
                     block=case["block"] if case["group"] == "block" else None,
                     rounding=case["rounding"], seed=int(case["seed"]), stream=case["stream"],
                     group=case["group"], tile2d=case["tile2d"] or None,
                     two_level=bool(case["two_level"]), sr_prescale=case["sr_prescale"])


class Report:
    """The result of check(): .ok, .cases (names run), .failures [(name, message)]."""

    def __init__(self, title, cases, failures):
        self.title, self.cases, self.failures = title, cases, failures

    @property
    def ok(self):
        return bool(self.cases) and not self.failures

    def __bool__(self):
        return self.ok

    def __str__(self):
        if not self.cases:
            return "%s: no vectors match" % self.title
        if not self.failures:
            return "%s: all %d cases pass" % (self.title, len(self.cases))
        lines = ["%s: %d of %d cases FAIL" % (self.title, len(self.failures), len(self.cases))]
        for name, msg in self.failures[:8]:
            lines.append("  %s:" % name)
            lines.extend("    " + m for m in msg.split("\n"))
        if len(self.failures) > 8:
            lines.append("  ... and %d more" % (len(self.failures) - 8))
        return "\n".join(lines)

    __repr__ = __str__


def _scale_str(v, nbytes, scale):
    if nbytes == 4:
        return repr(float(v))
    v = int(v)
    if scale == "e8m0":
        return "0x%02x (%s)" % (v, "NaN" if v == 0xFF else "2^%d" % (v - 127))
    return "0x%02x" % v


def _diff(what, got, exp, fmt_item, max_items):
    """A message about the elements where got and exp differ bitwise, or None."""
    if got.shape != exp.shape:
        return "%s: shape %s, expected %s" % (what, got.shape, exp.shape)
    g = got.view(np.uint8).reshape(got.shape[0], -1) if got.dtype != np.uint8 else got
    e = exp.view(np.uint8).reshape(exp.shape[0], -1) if exp.dtype != np.uint8 else exp
    if got.dtype == np.float32:  # NaN is NaN whatever its payload
        both_nan = np.isnan(got) & np.isnan(exp)
        bad = (got.view(np.uint32) != exp.view(np.uint32)) & ~both_nan
    else:
        bad = g != e
    n = int(bad.sum())
    if n == 0:
        return None
    idx = np.argwhere(bad)[:max_items]
    items = ", ".join("[%d,%d] got %s expected %s" % (r, c, fmt_item(got[r, c]), fmt_item(exp[r, c]))
                      for r, c in idx)
    return "%s differ in %d of %d: %s" % (what, n, bad.size, items)


def _normalise(out, case):
    """(codes, scales, tensor_scale, deq) from what the user's function returned."""
    if isinstance(out, QTensor):
        return out.codes, out.scales, np.float32(out.tensor_scale), None
    if isinstance(out, tuple):
        if len(out) not in (2, 3):
            raise TypeError("return (codes, scales) or (codes, scales, tensor_scale)")
        ts = np.float32(out[2]) if len(out) == 3 else None
        codes = None if out[0] is None else np.ascontiguousarray(np.asarray(out[0]))
        scales = None if out[1] is None else np.ascontiguousarray(np.asarray(out[1]))
        return codes, scales, ts, None
    a = out.detach().numpy() if hasattr(out, "detach") else np.asarray(out)
    return None, None, None, np.ascontiguousarray(a, dtype=np.float32)


def run_case(fn, vec, case, max_items=4):
    """Run fn on one case; None if it matches, else a message."""
    x = vec.input(case)
    codes, scales, ts, deq = vec.expected(case)
    try:
        out = fn(x, dict(case))
    except Exception as e:  # the user's quantizer refused the case: that is a failure to report
        return "raised %s: %s" % (type(e).__name__, e)
    gc, gs, gts, gd = _normalise(out, case)
    msgs = []
    if gd is not None:
        m = _diff("dequantized values", gd.reshape(deq.shape) if gd.size == deq.size else gd,
                  deq, lambda v: repr(float(v)), max_items)
        if m:
            msgs.append(m)
    else:
        if gc is not None:
            gc = gc.astype(np.uint8, copy=False)
            m = _diff("codes (bytes)", gc, codes, lambda v: "0x%02x" % int(v), max_items)
            if m:
                msgs.append(m)
        if scales is not None:
            if gs is None:
                msgs.append("no scales returned; the case has %s scales" % case["scale"])
            else:
                gs = gs.astype(scales.dtype, copy=False)
                m = _diff("scales", gs, scales,
                          lambda v: _scale_str(v, case["scale_bytes"], case["scale"]), max_items)
                if m:
                    msgs.append(m)
        if gts is not None and case["two_level"] and \
                np.float32(gts).view(np.uint32) != ts.view(np.uint32):
            msgs.append("tensor scale %r, expected %r" % (float(gts), float(ts)))
    return "\n".join(msgs) if msgs else None


def select(vec, format, rule=None, rounding="rne", groupings=None, inputs=None):
    """The cases of a format (its element and scale format), rule, rounding, groupings (None:
    the format's own preset grouping; "all"; or names like ["b16", "b32", "row", "tile16"])."""
    spec = make_spec(format)
    elem, scale = spec.elem, spec.scale_fmt
    if groupings is None:
        g = "tile%d" % spec.tile2d if spec.tile2d else (
            "b%d" % spec.block if spec.group == "block" else spec.group)
        groupings = [g + ("-2l" if spec.two_level else "")]
    elif isinstance(groupings, str) and groupings != "all":
        groupings = [groupings]
    out = []
    for c in vec.cases:
        if c["elem"] != elem or c["scale"] != scale:
            continue
        if rule is not None and scale != "none" and c["rule"] != rule:
            continue
        if rounding is not None and c["rounding"] != rounding:
            continue
        if groupings != "all" and grouping_of(c) not in groupings:
            continue
        if inputs is not None and c["input"] not in inputs:
            continue
        out.append(c)
    return out


def check(fn, format, rule=None, rounding="rne", groupings=None, vectors=None, max_items=4):
    """Run quantizer fn(x, case) on every vector of format/rule/rounding/groupings and return
    a Report (bool(report) is True when every case matches bit for bit). vectors: a directory
    or a loaded Vectors (default: vectors_dir()). rule None: every rule; rounding None: every
    rounding (sr cases need halfs' counter-based generator, halfs/rng.h)."""
    vec = vectors if isinstance(vectors, Vectors) else load(vectors)
    if rule is not None and rule not in RULES:
        raise ValueError("unknown scale rule '%s'" % rule)
    cases = select(vec, format, rule, rounding, groupings)
    failures = []
    for c in cases:
        m = run_case(fn, vec, c, max_items)
        if m:
            failures.append((c["name"], m))
    title = "conformance %s/%s/%s" % (format, rule or "every rule", rounding or "every rounding")
    return Report(title, [c["name"] for c in cases], failures)
