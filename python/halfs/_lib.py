"""halfs._lib: loads libhalfs.so with ctypes and declares the C structs and functions the package
calls (include/halfs/*.h). The library is found, in order, at $HALFS_LIB, beside this file (the
copy `pip install ./python` puts there), or at build/libhalfs.so of the source tree this file
sits in. Every call releases the GIL (ctypes does) and runs the C library's own kernels.
"""
import ctypes
import os

HS_OK = 0
_STATUS_NAMES = ["ok", "invalid argument", "unsupported", "out of memory", "I/O error",
                 "corrupt input", "numeric error", "internal error"]

# enum values of halfs/quant.h
ELEM_E2M1, ELEM_E4M3, ELEM_E5M2, ELEM_INT4, ELEM_INT8, ELEM_BF16, ELEM_FP32 = range(7)
SCALE_NONE, SCALE_E8M0, SCALE_UE4M3, SCALE_FP32 = range(4)
GROUP_TENSOR, GROUP_ROW, GROUP_BLOCK = range(3)
RULE_COUNT = 10
ROUND_COUNT = 4
FMT_COUNT = 8
ELEM_NAMES = ["e2m1", "e4m3", "e5m2", "int4", "int8", "bf16", "fp32"]
SCALE_NAMES = ["none", "e8m0", "ue4m3", "fp32"]
GROUP_NAMES = ["tensor", "row", "block"]


class Spec(ctypes.Structure):
    """hs_quant_spec (halfs/quant.h)."""
    _fields_ = [("elem", ctypes.c_int), ("scale_fmt", ctypes.c_int), ("group", ctypes.c_int),
                ("block", ctypes.c_int32), ("tile2d", ctypes.c_int32),
                ("two_level", ctypes.c_int32), ("rule", ctypes.c_int),
                ("rounding", ctypes.c_int), ("sr_prescale", ctypes.c_int32),
                ("rht", ctypes.c_int32), ("rht_seed", ctypes.c_uint64),
                ("seed", ctypes.c_uint64), ("stream", ctypes.c_uint64)]


class Packed(ctypes.Structure):
    """hs_packed (halfs/quant.h)."""
    _fields_ = [("spec", Spec), ("rows", ctypes.c_int64), ("cols", ctypes.c_int64),
                ("groups_per_row", ctypes.c_int64), ("code_stride", ctypes.c_int64),
                ("codes", ctypes.c_void_p), ("scales", ctypes.c_void_p),
                ("tensor_scale", ctypes.c_float), ("groups_halved", ctypes.c_int64),
                ("groups_total", ctypes.c_int64)]


class QStats(ctypes.Structure):
    """hs_qstats (halfs/stats.h)."""
    _fields_ = [("rel_mse", ctypes.c_double), ("sqnr_db", ctypes.c_double),
                ("zero_collapse", ctypes.c_double), ("halved_fraction", ctypes.c_double),
                ("kurtosis", ctypes.c_double), ("n", ctypes.c_int64),
                ("n_nonfinite", ctypes.c_int64), ("groups", ctypes.c_int64)]


class Dist(ctypes.Structure):
    """hs_dist (halfs/theory.h)."""
    _fields_ = [("kind", ctypes.c_int), ("nu", ctypes.c_double)]


class McRow(ctypes.Structure):
    _fields_ = [("rule", ctypes.c_int), ("rel_mse", ctypes.c_double),
                ("rel_mse_se", ctypes.c_double), ("clip_over_amax", ctypes.c_double),
                ("zero_collapse", ctypes.c_double), ("halved_fraction", ctypes.c_double)]


class Mc(ctypes.Structure):
    """hs_theory_mc (halfs/theory.h)."""
    _fields_ = [("group", ctypes.c_int64), ("groups", ctypes.c_int64), ("n_rows", ctypes.c_int),
                ("rows", McRow * (RULE_COUNT + 1))]


def _candidates():
    env = os.environ.get("HALFS_LIB")
    if env:
        return [env]
    here = os.path.dirname(os.path.abspath(__file__))
    return [os.path.join(here, "libhalfs.so"),
            os.path.join(here, "..", "..", "build", "libhalfs.so")]


def _load():
    tried = []
    for path in _candidates():
        if os.path.exists(path):
            return ctypes.CDLL(os.path.abspath(path)), os.path.abspath(path)
        tried.append(path)
    raise ImportError("halfs: libhalfs.so not found (tried %s); build it with `make` in the "
                      "halfs source tree and set HALFS_LIB=/path/to/build/libhalfs.so, or "
                      "install the package with `pip install ./python`" % ", ".join(tried))


lib, path = _load()

P = ctypes.POINTER
c_int, c_i32, c_i64, c_u64 = ctypes.c_int, ctypes.c_int32, ctypes.c_int64, ctypes.c_uint64
c_float_p, c_void_p, c_char_p = P(ctypes.c_float), ctypes.c_void_p, ctypes.c_char_p

_protos = {
    "hs_status_str": (c_char_p, [c_int]),
    "hs_last_error": (c_char_p, []),
    "hs_clear_error": (None, []),
    "hs_format_name": (c_char_p, [c_int]),
    "hs_rule_name": (c_char_p, [c_int]),
    "hs_rounding_name": (c_char_p, [c_int]),
    "hs_elem_name": (c_char_p, [c_int]),
    "hs_format_parse": (c_int, [c_char_p, P(c_int)]),
    "hs_rule_parse": (c_int, [c_char_p, P(c_int)]),
    "hs_rounding_parse": (c_int, [c_char_p, P(c_int)]),
    "hs_quant_spec_init": (c_int, [P(Spec), c_int]),
    "hs_quant_spec_validate": (c_int, [P(Spec)]),
    "hs_rule_applies": (c_int, [P(Spec), c_int]),
    "hs_packed_alloc": (c_int, [P(Packed), P(Spec), c_i64, c_i64]),
    "hs_packed_free": (None, [P(Packed)]),
    "hs_quantize": (c_int, [P(Spec), c_void_p, c_i64, c_i64, c_i64, c_int, P(Packed)]),
    "hs_quantize_ref": (c_int, [P(Spec), c_void_p, c_i64, c_i64, c_i64, c_int, P(Packed)]),
    "hs_dequantize": (c_int, [P(Packed), c_void_p, c_i64]),
    "hs_qdq": (c_int, [P(Spec), c_void_p, c_i64, c_i64, c_i64, c_int, c_void_p, c_i64]),
    "hs_quant_stats": (c_int, [P(Spec), c_void_p, c_i64, c_i64, c_i64, c_int, P(QStats)]),
    "hs_kurtosis": (ctypes.c_double, [c_void_p, c_i64]),
    "hs_gemm_packed": (c_int, [P(Packed), P(Packed), ctypes.c_float, c_void_p, c_i64]),
    "hs_isa_name": (c_char_p, []),
    "hs_dist_parse": (c_int, [c_char_p, P(Dist)]),
    "hs_dist_name": (None, [P(Dist), c_char_p, ctypes.c_size_t]),
    "hs_theory_opt_clip": (c_int, [P(Dist), c_int, P(ctypes.c_double), P(ctypes.c_double)]),
    "hs_theory_mc_rules": (c_int, [P(Dist), c_int, c_i64, c_i64, c_u64, P(Mc)]),
    "hs_theory_row_name": (c_char_p, [c_int]),
    "hs_linear_layer_create": (c_int, [c_char_p, c_char_p, c_i32, c_i32, c_i32, c_i32, c_char_p,
                                       c_i32, c_i32, c_u64, P(c_void_p)]),
    "hs_linear_layer_free": (None, [c_void_p]),
    "hs_linear_layer_specs": (c_int, [c_void_p, c_i32, c_i32, c_u64, P(Spec)]),
    "hs_linear_layer_forward": (c_int, [c_void_p, c_i32, c_i32, c_u64, c_void_p, c_void_p,
                                        c_void_p, c_i64, c_i64, c_i64]),
    "hs_linear_layer_backward": (c_int, [c_void_p, c_i32, c_i32, c_u64, c_void_p, c_void_p,
                                         c_void_p, c_void_p, c_void_p, c_i64, c_i64, c_i64]),
    "hs_linear_layer_describe": (None, [c_void_p, c_char_p, ctypes.c_size_t]),
}
for _name, (_res, _args) in _protos.items():
    _f = getattr(lib, _name)
    _f.restype = _res
    _f.argtypes = _args


class HalfsError(RuntimeError):
    """An internal failure of the C library (a status other than a bad argument)."""


def check(st, what=None):
    """Raise the Python exception of a failing hs_status, carrying the library's message."""
    if st == HS_OK:
        return
    msg = lib.hs_last_error().decode("utf-8", "replace") or _STATUS_NAMES[st]
    if what:
        msg = "%s: %s" % (what, msg)
    lib.hs_clear_error()
    if st in (1, 2, 5):  # invalid argument, unsupported, corrupt
        raise ValueError(msg)
    if st == 3:
        raise MemoryError(msg)
    if st == 4:
        raise OSError(msg)
    if st == 6:
        raise FloatingPointError(msg)
    raise HalfsError(msg)


def set_num_threads(n):
    """OpenMP threads of the library's kernels (omp_set_num_threads)."""
    f = lib.omp_set_num_threads
    f.argtypes = [ctypes.c_int]
    f.restype = None
    f(int(n))
