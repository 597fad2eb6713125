"""halfs: FP4 (MXFP4, NVFP4, ...) numerics with Half-S scaling, from numpy and PyTorch.

A thin ctypes layer over the C library libhalfs.so: every result comes from the same code as the
`halfs` command-line tool, byte for byte. The interface follows torchao's MX formats and
microxcaling (formats by name, a scale rule, a block size, an axis):

    import numpy as np, halfs
    x = np.random.randn(256, 1024).astype(np.float32)
    q = halfs.quantize(x, "mxfp4", rule="halfs")        # packed codes + E8M0 scales
    y = q.dequantize()                                   # float32, x's shape
    y2 = halfs.qdq(x, "nvfp4")                           # quantize-dequantize in one call
    halfs.stats(x, "mxfp4")                              # == `halfs stats --json`
    c = halfs.matmul(halfs.quantize(a, "mxfp4"), halfs.quantize(b, "mxfp4", axis=0))

Inputs are float32 numpy arrays or CPU float32 torch tensors, read in place (no copy) when their
last axis is contiguous. Bad input raises ValueError or TypeError with the library's message.
docs/PYTHON.md describes everything; halfs.torch has the PyTorch Linear layer, halfs.conformance
the conformance vectors.
"""
import ctypes
import json

import numpy as np

from . import _lib
from ._lib import HalfsError, set_num_threads

__all__ = ["quantize", "qdq", "dequantize", "stats", "theory", "matmul", "make_spec",
           "QTensor", "QuantSpec", "HalfsError", "set_num_threads", "isa", "FORMATS", "RULES",
           "ROUNDINGS"]
__version__ = "0.1.0"

_L = _lib.lib


def _names(fn, n):
    return tuple(fn(i).decode() for i in range(n))


FORMATS = _names(_L.hs_format_name, _lib.FMT_COUNT)
RULES = _names(_L.hs_rule_name, _lib.RULE_COUNT)
ROUNDINGS = _names(_L.hs_rounding_name, _lib.ROUND_COUNT)


def isa():
    """The instruction set the kernels dispatch to: "ref", "avx2" or "avx512"."""
    return _L.hs_isa_name().decode()


# ------------------------------------------------------------------ specs

def _parse(fn, kind, name, choices):
    if not isinstance(name, str):
        raise TypeError("%s must be a name (str), got %s" % (kind, type(name).__name__))
    out = ctypes.c_int()
    st = fn(name.encode(), ctypes.byref(out))
    if st != _lib.HS_OK:
        _L.hs_clear_error()
        raise ValueError("unknown %s '%s' (one of: %s)" % (kind, name, ", ".join(choices)))
    return out.value


class QuantSpec:
    """A quantizer (hs_quant_spec): element format, scale format, grouping, rule, rounding,
    seeds. Built by make_spec(); fields readable as attributes, as_dict() for all of them."""

    __slots__ = ("_c", "format")

    def __init__(self, c, fmt=None):
        self._c = c
        self.format = fmt

    def __getattr__(self, name):
        c = object.__getattribute__(self, "_c")
        if name in ("elem", "scale_fmt", "group", "rule", "rounding"):
            v = getattr(c, name)
            return {"elem": _lib.ELEM_NAMES, "scale_fmt": _lib.SCALE_NAMES,
                    "group": _lib.GROUP_NAMES, "rule": RULES, "rounding": ROUNDINGS}[name][v]
        if name in ("block", "tile2d", "two_level", "sr_prescale", "rht", "rht_seed", "seed",
                    "stream"):
            return getattr(c, name)
        raise AttributeError(name)

    def as_dict(self):
        d = {"format": self.format}
        for k in ("elem", "scale_fmt", "group", "block", "tile2d", "two_level", "rule",
                  "rounding", "sr_prescale", "rht", "rht_seed", "seed", "stream"):
            d[k] = getattr(self, k)
        return d

    def quantizes(self):
        return self._c.elem != _lib.ELEM_FP32

    def __repr__(self):
        return "QuantSpec(%s)" % ", ".join("%s=%r" % kv for kv in self.as_dict().items())

    def __eq__(self, other):
        return isinstance(other, QuantSpec) and bytes(self._c) == bytes(other._c)

    __hash__ = None


def make_spec(format, rule=None, block=None, rounding=None, seed=None, stream=None, group=None,
              tile2d=None, two_level=None, rht=None, rht_seed=None, sr_prescale=None):
    """The quantizer spec of a named format (mxfp4, nvfp4, fp4, fp4row, mxfp8-e4m3, int4, bf16,
    fp32: docs/FORMATS.md §5) with fields changed: rule (ocp ceil rceil even half halfs
    halfs-sigma mse max 4over6; default: the format's), block (16/32/64/128), rounding (rne rna
    rts sr), seed and stream (stochastic rounding), group ("tensor", "row", "block"), tile2d
    (16: one scale per 16×16 tile), two_level (NVFP4's FP32 per-tensor scale), rht
    (0/16/32/64/128: random Hadamard transform along the groups) and rht_seed, sr_prescale
    (-1 automatic, 0, 1). A QuantSpec passes through unchanged. Raises ValueError when the
    combination is invalid, with the library's reason."""
    if isinstance(format, QuantSpec):
        return format
    f = _parse(_L.hs_format_parse, "format", format, FORMATS)
    c = _lib.Spec()
    _lib.check(_L.hs_quant_spec_init(ctypes.byref(c), f))
    if rule is not None:
        c.rule = _parse(_L.hs_rule_parse, "scale rule", rule, RULES)
    if rounding is not None:
        c.rounding = _parse(_L.hs_rounding_parse, "rounding", rounding, ROUNDINGS)
    if group is not None:
        if group not in _lib.GROUP_NAMES:
            raise ValueError("unknown group '%s' (one of: tensor, row, block)" % (group,))
        c.group = _lib.GROUP_NAMES.index(group)
    for name, v in (("block", block), ("tile2d", tile2d), ("rht", rht)):
        if v is None:
            continue
        if isinstance(v, bool) or not isinstance(v, (int, np.integer)):
            raise TypeError("%s must be an int, got %r" % (name, v))
        setattr(c, name, int(v))
    if tile2d:
        c.group = _lib.GROUP_BLOCK
        if block is None:
            c.block = int(tile2d)
    if two_level is not None:
        c.two_level = 1 if two_level else 0
    if sr_prescale is not None:
        c.sr_prescale = int(sr_prescale)
    for name, v in (("seed", seed), ("stream", stream), ("rht_seed", rht_seed)):
        if v is None:
            continue
        if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or not 0 <= v < 2 ** 64:
            raise ValueError("%s must be an integer in [0, 2^64), got %r" % (name, v))
        setattr(c, name, int(v))
    _lib.check(_L.hs_quant_spec_validate(ctypes.byref(c)))
    return QuantSpec(c, format)


def _spec_from(format, kw):
    if isinstance(format, QuantSpec):
        if any(v is not None for v in kw.values()):
            raise TypeError("options given with a QuantSpec: set them in make_spec instead")
        return format
    return make_spec(format, **kw)


# ------------------------------------------------------------------ inputs

def _as_array(x, name="x"):
    """x as a float32 numpy array sharing its memory (torch CPU tensors through .numpy())."""
    if isinstance(x, np.ndarray):
        a = x
    elif type(x).__module__.startswith("torch"):
        if getattr(x, "is_cuda", False) or str(getattr(x, "device", "cpu")) != "cpu":
            raise TypeError("%s: a torch tensor on %s; halfs runs on the CPU (x.cpu())"
                            % (name, x.device))
        if getattr(x, "layout", None) is not None and str(x.layout) != "torch.strided":
            raise TypeError("%s: a %s torch tensor; halfs takes dense tensors" % (name, x.layout))
        if str(x.dtype) != "torch.float32":
            raise TypeError("%s: dtype %s; halfs takes float32 (x.float())" % (name, x.dtype))
        a = x.detach().numpy()
    else:
        raise TypeError("%s: expected a float32 numpy array or torch tensor, got %s"
                        % (name, type(x).__name__))
    if a.dtype != np.float32:
        raise TypeError("%s: dtype %s; halfs takes float32 (x.astype(np.float32))"
                        % (name, a.dtype))
    if a.ndim == 0 or a.size == 0:
        raise ValueError("%s: an empty or 0-d array (shape %s)" % (name, a.shape))
    if not a.flags.aligned:
        raise ValueError("%s: the array is not aligned to 4 bytes" % name)
    return a


def _as_matrix(x, axis, name="x"):
    """(array, rows, cols, ld, transpose): x viewed as a rows × cols matrix with row stride ld
    (floats), groups along its rows (transpose 0) or its columns (transpose 1), no copy."""
    a = _as_array(x, name)
    nd = a.ndim
    if isinstance(axis, bool) or not isinstance(axis, (int, np.integer)):
        raise TypeError("axis must be an int, got %r" % (axis,))
    ax = int(axis) + nd if axis < 0 else int(axis)
    if not 0 <= ax < nd:
        raise ValueError("axis %d is out of range for a %d-d array" % (axis, nd))
    if nd == 1:
        m = a.reshape(1, -1) if a.strides[0] == 4 else None
        transpose = 0
    elif ax == nd - 1:
        m = a if nd == 2 else (a.reshape(-1, a.shape[-1]) if a.flags.c_contiguous else None)
        transpose = 0
    elif nd == 2 and ax == 0:
        m, transpose = a, 1
    else:
        raise ValueError("axis %d of a %d-d array: halfs groups along the last axis, or along "
                         "axis 0 of a 2-d array; move the axis (np.moveaxis) first" % (axis, nd))
    if m is None or m.strides[1] != 4 or m.strides[0] < 4 * m.shape[1] or m.strides[0] % 4:
        raise ValueError("%s is not contiguous along its last axis (strides %s); pass "
                         "np.ascontiguousarray(x) or x.contiguous()" % (name, a.strides))
    rows, cols = m.shape
    return m, rows, cols, m.strides[0] // 4, transpose


def _ptr(a):
    return a.ctypes.data


# ------------------------------------------------------------------ packed tensors

class _Owner:
    """Owns one hs_packed; numpy views of its codes and scales keep it alive."""

    def __init__(self):
        self.p = _lib.Packed()
        self.live = False

    def __del__(self):
        if self.live:
            _L.hs_packed_free(ctypes.byref(self.p))
            self.live = False

    def copy(self):
        """A new allocation holding the same packed tensor."""
        o = _Owner()
        p = self.p
        _lib.check(_L.hs_packed_alloc(ctypes.byref(o.p), ctypes.byref(p.spec), p.rows, p.cols),
                   "copy")
        o.live = True
        nc = int(p.rows * p.code_stride)
        ctypes.memmove(o.p.codes, p.codes, nc)
        if p.scales and p.spec.scale_fmt != _lib.SCALE_NONE:
            sb = 4 if p.spec.scale_fmt == _lib.SCALE_FP32 else 1
            ctypes.memmove(o.p.scales, p.scales, int(p.rows * p.groups_per_row) * sb)
        o.p.spec = p.spec
        o.p.tensor_scale, o.p.groups_halved, o.p.groups_total = (p.tensor_scale, p.groups_halved,
                                                                 p.groups_total)
        return o

    def __reduce__(self):
        raise TypeError("a QTensor cannot be pickled; save q.codes, q.scales and q.tensor_scale")


def _view(owner, addr, nbytes, dtype, shape, strides=None):
    buf = (ctypes.c_uint8 * nbytes).from_address(addr)
    buf.owner = owner  # the numpy array keeps buf, buf keeps the C allocation
    a = np.frombuffer(buf, dtype=dtype)
    if strides is None:
        return a.reshape(shape)
    return np.lib.stride_tricks.as_strided(a, shape=shape, strides=strides, writeable=False)


def _row_bytes(elem, cols):
    if elem in (_lib.ELEM_E2M1, _lib.ELEM_INT4):
        return (cols + 1) // 2
    return cols * {_lib.ELEM_BF16: 2, _lib.ELEM_FP32: 4}.get(elem, 1)


class QTensor:
    """A quantized tensor: the packed codes and scales of the C library (hs_packed).

    codes   uint8 array, one row per scale-group row of the packed matrix (two FP4/INT4 codes
            per byte, element 2i in the low nibble of byte i; docs/FORMATS.md §9)
    scales  uint8 (E8M0, UE4M3) or float32 (FP32 scales) array, rows × groups_per_row; None
            for bf16 and fp32
    tensor_scale  NVFP4's per-tensor s_enc (x ≈ q·s_b / s_enc); 1 otherwise
    spec    the QuantSpec; shape and axis: the input's shape and the grouping axis.
    The packed matrix holds x (axis -1) or xᵀ (axis 0 of a 2-d x): groups along its rows.
    """

    def __init__(self, owner, spec, shape, transpose):
        self._owner = owner
        self.spec = spec
        self.shape = tuple(shape)
        self.transpose = transpose
        p = owner.p
        rb = _row_bytes(p.spec.elem, p.cols)
        self.codes = _view(owner, p.codes, int(p.code_stride * p.rows), np.uint8,
                           (p.rows, rb), (p.code_stride, 1))
        sf = p.spec.scale_fmt
        if p.scales and sf != _lib.SCALE_NONE:
            dt = np.float32 if sf == _lib.SCALE_FP32 else np.uint8
            n = int(p.rows * p.groups_per_row)
            self.scales = _view(owner, p.scales, n * np.dtype(dt).itemsize, dt,
                                (p.rows, p.groups_per_row))
        else:
            self.scales = None

    @property
    def axis(self):
        return 0 if self.transpose else -1

    @property
    def tensor_scale(self):
        return float(self._owner.p.tensor_scale)

    @property
    def groups_halved(self):
        return int(self._owner.p.groups_halved)

    @property
    def groups_total(self):
        return int(self._owner.p.groups_total)

    @property
    def packed_shape(self):
        return (int(self._owner.p.rows), int(self._owner.p.cols))

    @property
    def T(self):
        """The transpose of a 2-d quantized tensor: the same packed data, seen as xᵀ (so a
        weight w (N×K) quantized along K gives w.T, a K×N operand grouped along axis 0)."""
        if len(self.shape) != 2:
            raise ValueError(".T needs a 2-d quantized tensor, shape %s" % (self.shape,))
        t = QTensor.__new__(QTensor)
        t.__dict__.update(self.__dict__)
        t.shape = (self.shape[1], self.shape[0])
        t.transpose = 1 - self.transpose
        return t

    def dequantize(self):
        """Dequantized float32 values in the input's shape (with an RHT: still rotated, as
        hs_dequantize; qdq() applies the inverse)."""
        r, c = self.packed_shape
        y = np.empty((r, c), dtype=np.float32)
        _lib.check(_L.hs_dequantize(ctypes.byref(self._owner.p), _ptr(y), c), "dequantize")
        if self.transpose:
            return np.ascontiguousarray(y.T).reshape(self.shape)
        return y.reshape(self.shape)

    def __matmul__(self, other):
        return matmul(self, other)

    def __deepcopy__(self, memo):
        return QTensor(self._owner.copy(), self.spec, self.shape, self.transpose)

    def __reduce__(self):
        return self._owner.__reduce__()

    def __repr__(self):
        return "QTensor(shape=%s, axis=%d, %s)" % (self.shape, self.axis, self.spec)


def _same_layout(a, b):
    return all(getattr(a, f) == getattr(b, f) for f in
               ("elem", "scale_fmt", "group", "block", "tile2d", "two_level"))


def quantize(x, format, rule=None, block=None, axis=-1, rounding=None, seed=None, stream=None,
             group=None, tile2d=None, two_level=None, rht=None, rht_seed=None, sr_prescale=None,
             out=None):
    """Quantize x (float32 array or CPU tensor) with a named format and its options (see
    make_spec), scale groups along `axis` (-1, or 0 of a 2-d x). Returns a QTensor.
    out: a QTensor of the same packed shape and layout (element and scale format, grouping) to
    quantize into, instead of allocating a new one (its arrays are overwritten; returned)."""
    spec = _spec_from(format, dict(rule=rule, block=block, rounding=rounding, seed=seed,
                                   stream=stream, group=group, tile2d=tile2d,
                                   two_level=two_level, rht=rht, rht_seed=rht_seed,
                                   sr_prescale=sr_prescale))
    shape = _as_array(x).shape
    m, rows, cols, ld, tr = _as_matrix(x, axis)
    pr, pc = (cols, rows) if tr else (rows, cols)
    if out is not None:
        if not isinstance(out, QTensor):
            raise TypeError("out must be a QTensor, got %s" % type(out).__name__)
        if out.packed_shape != (pr, pc) or not _same_layout(out._owner.p.spec, spec._c):
            raise ValueError("out: packed shape %s with a different layout; this needs %s %s"
                             % (out.packed_shape, (pr, pc), spec))
        owner = out._owner
    else:
        owner = _Owner()
        _lib.check(_L.hs_packed_alloc(ctypes.byref(owner.p), ctypes.byref(spec._c), pr, pc),
                   "quantize")
        owner.live = True
    _lib.check(_L.hs_quantize(ctypes.byref(spec._c), _ptr(m), rows, cols, ld, tr,
                              ctypes.byref(owner.p)), "quantize")
    if out is not None:
        out.spec, out.shape, out.transpose = spec, tuple(shape), tr
        return out
    return QTensor(owner, spec, shape, tr)


def dequantize(q):
    """q.dequantize()."""
    if not isinstance(q, QTensor):
        raise TypeError("dequantize takes a QTensor, got %s" % type(q).__name__)
    return q.dequantize()


def qdq(x, format, rule=None, block=None, axis=-1, rounding=None, seed=None, stream=None,
        group=None, tile2d=None, two_level=None, rht=None, rht_seed=None, sr_prescale=None):
    """Quantize-dequantize: Q(x) as float32 in x's shape (a new array; a torch tensor for a
    torch input). With an RHT the inverse transform is applied (what a GEMM sees)."""
    spec = _spec_from(format, dict(rule=rule, block=block, rounding=rounding, seed=seed,
                                   stream=stream, group=group, tile2d=tile2d,
                                   two_level=two_level, rht=rht, rht_seed=rht_seed,
                                   sr_prescale=sr_prescale))
    a = _as_array(x)
    m, rows, cols, ld, tr = _as_matrix(x, axis)
    y = np.empty((rows, cols), dtype=np.float32)
    _lib.check(_L.hs_qdq(ctypes.byref(spec._c), _ptr(m), rows, cols, ld, tr, _ptr(y), cols),
               "qdq")
    y = y.reshape(a.shape)
    if not isinstance(x, np.ndarray):
        import torch
        return torch.from_numpy(y)
    return y


def _num(v):
    v = float(v)
    return v if np.isfinite(v) else None


def stats(x, format, rule=None, block=None, axis=-1, rounding=None, seed=None, rht=None,
          rht_seed=None):
    """Error statistics of every scale rule that applies to the format (or only `rule`) on x:
    the same dict as `halfs stats --json` ({rule: {"rel_mse", "sqnr_db", "zero_collapse",
    "halved_fraction"}, "kurtosis": k}; a non-finite value is None)."""
    spec = make_spec(format, block=block, rounding=rounding, seed=seed, rht=rht,
                     rht_seed=rht_seed)
    m, rows, cols, ld, tr = _as_matrix(x, axis)
    c = _lib.Spec.from_buffer_copy(spec._c)
    if rule is not None:
        rules = [_parse(_L.hs_rule_parse, "scale rule", rule, RULES)]
    else:
        rules = [r for r in range(_lib.RULE_COUNT) if _L.hs_rule_applies(ctypes.byref(c), r)]
        rules = rules or [c.rule]
    out = {}
    for r in rules:
        c.rule = r
        q = _lib.QStats()
        _lib.check(_L.hs_quant_stats(ctypes.byref(c), _ptr(m), rows, cols, ld, tr,
                                     ctypes.byref(q)), "stats")
        out[RULES[r]] = {"rel_mse": _num(q.rel_mse), "sqnr_db": _num(q.sqnr_db),
                         "zero_collapse": _num(q.zero_collapse),
                         "halved_fraction": _num(q.halved_fraction)}
    flat = m if ld == cols else np.ascontiguousarray(m)
    out["kurtosis"] = _num(_L.hs_kurtosis(_ptr(flat), rows * cols))
    return out


def theory(dist="gauss", format="e2m1", groups=(32, 1024), samples=1 << 20, seed=1):
    """The optimal clip and each rule's error for a known distribution: the same dict as
    `halfs theory --dist D --format F --group G,... --samples S --seed S --json`."""
    d = _lib.Dist()
    if not isinstance(dist, str):
        raise TypeError("dist must be a name (gauss, laplace, t:NU)")
    _lib.check(_L.hs_dist_parse(dist.encode(), ctypes.byref(d)), "theory")
    if format in ("e2m1", "fp4"):
        elem, fname = _lib.ELEM_E2M1, "e2m1"
    elif format == "int4":
        elem, fname = _lib.ELEM_INT4, "int4"
    else:
        raise ValueError("theory: unknown element format '%s' (e2m1 or int4)" % (format,))
    if isinstance(groups, (int, np.integer)):
        groups = (groups,)
    groups = [int(g) for g in groups]
    if not groups or any(not 2 <= g <= 65536 for g in groups):
        raise ValueError("theory: group sizes must be in 2..65536, got %s" % (groups,))
    if isinstance(samples, bool) or not isinstance(samples, (int, np.integer)) or samples < 1:
        raise ValueError("theory: samples must be a positive integer")
    name = ctypes.create_string_buffer(64)
    _L.hs_dist_name(ctypes.byref(d), name, 64)
    a, mse = ctypes.c_double(), ctypes.c_double()
    _lib.check(_L.hs_theory_opt_clip(ctypes.byref(d), elem, ctypes.byref(a), ctypes.byref(mse)),
               "theory")
    sq = lambda r: -10.0 * np.log10(r) if r > 0 else float("inf")
    out = {"format": fname, "dist": name.value.decode(), "opt_clip_over_sigma": _num(a.value),
           "mse_at_opt": _num(mse.value), "sqnr_db_at_opt": _num(sq(mse.value)),
           "samples": float(samples), "seed": str(int(seed)), "monte_carlo": {}}
    for g in groups:
        nb = max(2, (int(samples) + g - 1) // g)
        mc = _lib.Mc()
        _lib.check(_L.hs_theory_mc_rules(ctypes.byref(d), elem, g, nb, int(seed),
                                         ctypes.byref(mc)), "theory Monte Carlo")
        rules = {}
        for i in range(mc.n_rows):
            r = mc.rows[i]
            rules[_L.hs_theory_row_name(r.rule).decode()] = {
                "rel_mse": _num(r.rel_mse), "rel_mse_se": _num(r.rel_mse_se),
                "sqnr_db": _num(sq(r.rel_mse)), "clip_over_amax": _num(r.clip_over_amax),
                "zero_collapse": _num(r.zero_collapse),
                "halved_fraction": _num(r.halved_fraction)}
        out["monte_carlo"].pop(str(g), None)
        out["monte_carlo"][str(g)] = {"groups": float(mc.groups), "rules": rules}
    return json.loads(json.dumps(out))  # plain JSON types, as the CLI's output parses


def matmul(a, b):
    """a @ b on two quantized tensors with the packed GEMM (hs_gemm_packed: FP4 × FP4 on the
    codes where a kernel exists, else dequantize and fp32). a: M×K quantized along its last
    axis (K); b: K×N quantized along axis 0 (K), or b = w.T for a weight w (N×K) quantized along
    its last axis. Both need the same element format, scale format and groups along K.
    Returns an M×N float32 array."""
    if not isinstance(a, QTensor) or not isinstance(b, QTensor):
        raise TypeError("matmul takes two QTensors (halfs.quantize), got %s and %s"
                        % (type(a).__name__, type(b).__name__))
    if len(a.shape) != 2 or len(b.shape) != 2:
        raise ValueError("matmul needs 2-d operands, got shapes %s and %s" % (a.shape, b.shape))
    if a.transpose or not b.transpose:
        raise ValueError("matmul: a (M×K) must be quantized along its last axis and b (K×N) "
                         "along axis 0 (or be w.T of a weight quantized along its last axis), "
                         "so that both groups run along K")
    M, K = a.shape
    K2, N = b.shape
    if K != K2:
        raise ValueError("matmul: shapes %s and %s do not chain" % (a.shape, b.shape))
    c = np.empty((M, N), dtype=np.float32)
    _lib.check(_L.hs_gemm_packed(ctypes.byref(a._owner.p), ctypes.byref(b._owner.p), 0.0,
                                 _ptr(c), N), "matmul")
    return c
