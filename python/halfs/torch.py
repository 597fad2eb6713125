"""halfs.torch: PyTorch linear layers whose three GEMMs run in a halfs recipe, on the CPU.

    import torch, halfs.torch as ht
    layer = ht.Linear(1024, 4096, recipe="mxfp4-halfs")       # like torch.nn.Linear
    model = ht.convert(model, "nvfp4", skip=["lm_head"])       # swap a model's nn.Linear

Each forward runs fprop, and each backward dgrad and wgrad, through libhalfs' linear layer
(include/halfs/linear.h): the same code as `halfs train`'s linear layers, with each operand
quantized along its own GEMM's reduction axis and the straight-through estimator
(docs/ARCHITECTURE.md, "The three GEMMs of a linear layer"):
    fprop  y  = Q_fwd.x(x) · Q_fwd.w(w)ᵀ        dgrad  dx = Q_dgrad.dy(dy) · Q_dgrad.w(w)
    wgrad  dw = Q_wgrad.dy(dy)ᵀ · Q_wgrad.x(x)
The bias, if any, is added in fp32 outside the GEMM. Inputs may have any leading shape; the
tokens (all leading axes) are M. Stochastic rounding and RHT seeds come from (seed, step,
layer, linear, role) as in the trainer: `layer` and `linear` identify the layer (convert()
numbers them), and `step` advances by one at each forward in training mode with gradients
enabled (set_step() sets it, e.g. to the optimizer step).
"""
import fnmatch
import threading

import numpy as np
import torch

from . import _lib, QuantSpec

_L = _lib.lib
ROLES = ("fwd.x", "fwd.w", "dgrad.dy", "dgrad.w", "wgrad.dy", "wgrad.x")
# The presets a single layer can use (the trainer's mxfp4-halfs-last-bf16 keeps a model's last
# block in bf16: here that is mxfp4-halfs with hp_layers naming the layer).
PRESETS = ("fp32", "bf16", "mxfp4-ocp", "mxfp4-max", "mxfp4-halfs", "mxfp4-half", "nvfp4",
           "nvfp4-4over6", "fp4row-max", "fp4row-halfs")


class Recipe:
    """A built halfs recipe (a handle on hs_linear_layer): the preset name and the trainer's
    options (roles: the --role override grammar, block, sr, rht, act_only, hp_layers,
    quant_lm_head, fp32_attn_lm_head, seed). Raises ValueError with the trainer's message for
    a bad option."""

    def __init__(self, recipe="mxfp4-halfs", roles=None, block=0, sr=False, rht=0,
                 act_only=False, hp_layers="", quant_lm_head=False, fp32_attn_lm_head=False,
                 seed=0):
        if not isinstance(recipe, str):
            raise TypeError("recipe must be a preset name (str): %s" % ", ".join(PRESETS))
        if isinstance(roles, (list, tuple)):
            roles = ",".join(roles)
        if isinstance(hp_layers, (list, tuple)):
            hp_layers = ",".join(str(int(i)) for i in hp_layers)
        for name, v in (("roles", roles), ("hp_layers", hp_layers)):
            if v is not None and not isinstance(v, str):
                raise TypeError("%s must be a str" % name)
        for name, v in (("block", block), ("rht", rht), ("seed", seed)):
            if isinstance(v, bool) or not isinstance(v, (int, np.integer)):
                raise TypeError("%s must be an int, got %r" % (name, v))
        if not 0 <= seed < 2 ** 64:
            raise ValueError("seed must be in [0, 2^64)")
        self.options = dict(recipe=recipe, roles=roles or "", block=int(block), sr=bool(sr),
                            rht=int(rht), act_only=bool(act_only), hp_layers=hp_layers or "",
                            quant_lm_head=bool(quant_lm_head),
                            fp32_attn_lm_head=bool(fp32_attn_lm_head), seed=int(seed))
        h = _lib.ctypes.c_void_p()
        _lib.check(_L.hs_linear_layer_create(
            recipe.encode(), (roles or "").encode(), int(block), int(bool(sr)), int(rht),
            int(bool(act_only)), (hp_layers or "").encode(), int(bool(quant_lm_head)),
            int(bool(fp32_attn_lm_head)), int(seed), _lib.ctypes.byref(h)), "recipe")
        self._h = h
        self._lock = threading.Lock()

    def __reduce__(self):
        # copy.deepcopy and pickle rebuild the recipe (a new handle), never share the handle
        return (_recipe, (self.options,))

    def __del__(self):
        h = getattr(self, "_h", None)
        if h is not None and h.value:
            _L.hs_linear_layer_free(h)
            self._h = None

    def describe(self):
        buf = _lib.ctypes.create_string_buffer(1024)
        _L.hs_linear_layer_describe(self._h, buf, 1024)
        return buf.value.decode()

    def specs(self, layer=0, linear=0, step=0):
        """The six role specs (fwd.x, fwd.w, dgrad.dy, dgrad.w, wgrad.dy, wgrad.x) the layer
        uses at `step`, as QuantSpecs (for halfs.qdq / halfs.quantize)."""
        arr = (_lib.Spec * 6)()
        _lib.check(_L.hs_linear_layer_specs(self._h, int(layer), int(linear), int(step), arr),
                   "recipe")
        return dict(zip(ROLES, (QuantSpec(_lib.Spec.from_buffer_copy(arr[i]), None)
                                for i in range(6))))

    def forward(self, x, w, layer=0, linear=0, step=0):
        """y = x·wᵀ (numpy float32, x: M×K, w: N×K, both C-contiguous) through fprop."""
        M, K = x.shape
        N = w.shape[0]
        y = np.empty((M, N), dtype=np.float32)
        with self._lock:
            _lib.check(_L.hs_linear_layer_forward(self._h, layer, linear, step, y.ctypes.data,
                                                  x.ctypes.data, w.ctypes.data, M, K, N),
                       "halfs.torch.Linear forward")
        return y

    def backward(self, dy, x, w, layer=0, linear=0, step=0, need_dx=True):
        """(dx or None, dw) through dgrad and wgrad (numpy float32, C-contiguous)."""
        M, K = x.shape
        N = w.shape[0]
        dx = np.empty((M, K), dtype=np.float32) if need_dx else None
        dw = np.zeros((N, K), dtype=np.float32)
        with self._lock:
            _lib.check(_L.hs_linear_layer_backward(
                self._h, layer, linear, step, dx.ctypes.data if need_dx else None,
                dw.ctypes.data, dy.ctypes.data, x.ctypes.data, w.ctypes.data, M, K, N),
                "halfs.torch.Linear backward")
        return dx, dw


def _recipe(options):
    return Recipe(**options)


def _f32(t, what):
    if t.device.type != "cpu":
        raise TypeError("halfs.torch.Linear: %s is on %s; halfs runs on the CPU" % (what, t.device))
    if t.dtype != torch.float32:
        raise TypeError("halfs.torch.Linear: %s has dtype %s; halfs takes float32"
                        % (what, t.dtype))
    return t.detach().contiguous().numpy()


class LinearFunction(torch.autograd.Function):
    """y = x·wᵀ (+ b) with fprop/dgrad/wgrad in a halfs recipe; args (x, w, b, recipe, layer,
    linear, step)."""

    @staticmethod
    def forward(ctx, x, weight, bias, recipe, layer, linear, step):
        K = x.shape[-1]
        N, K2 = weight.shape
        if K != K2:
            raise ValueError("halfs.torch.Linear: input has %d features, the layer takes %d"
                             % (K, K2))
        xs = _f32(x, "the input").reshape(-1, K)
        ws = _f32(weight, "the weight")
        y = torch.from_numpy(recipe.forward(xs, ws, layer, linear, step))
        if bias is not None:
            y += bias.detach()
        ctx.recipe, ctx.ids = recipe, (layer, linear, step)
        ctx.save_for_backward(x, weight)  # autograd checks they are not changed in place
        ctx.has_bias = bias is not None
        return y.reshape(*x.shape[:-1], N)

    @staticmethod
    def backward(ctx, gy):
        x, weight = ctx.saved_tensors
        N = gy.shape[-1]
        dy = _f32(gy, "the output gradient").reshape(-1, N)
        xs = _f32(x, "the input").reshape(-1, x.shape[-1])
        layer, linear, step = ctx.ids
        dx, dw = ctx.recipe.backward(dy, xs, _f32(weight, "the weight"), layer, linear, step,
                                     need_dx=ctx.needs_input_grad[0])
        gx = torch.from_numpy(dx).reshape(x.shape) if dx is not None else None
        gw = torch.from_numpy(dw) if ctx.needs_input_grad[1] else None
        gb = torch.from_numpy(dy.sum(axis=0, dtype=np.float64).astype(np.float32)) \
            if ctx.has_bias and ctx.needs_input_grad[2] else None
        return gx, gw, gb, None, None, None, None


class Linear(torch.nn.Linear):
    """torch.nn.Linear whose forward and backward GEMMs run in a halfs recipe (CPU, float32).

    recipe: a preset (fp32, bf16, mxfp4-ocp, mxfp4-max, mxfp4-halfs, mxfp4-half, nvfp4,
    nvfp4-4over6, fp4row-max, fp4row-halfs) or a Recipe; roles, block, sr, rht, act_only,
    hp_layers, quant_lm_head, fp32_attn_lm_head, seed: the trainer's options (`halfs train
    --help`). layer, linear: the layer's identity for the per-step seeds (layer -1 is the
    lm_head: bf16 in every preset but fp32, fp32 there or with fp32_attn_lm_head, the block
    roles with quant_lm_head)."""

    def __init__(self, in_features, out_features, bias=True, recipe="mxfp4-halfs", roles=None,
                 block=0, sr=False, rht=0, act_only=False, hp_layers="", quant_lm_head=False,
                 fp32_attn_lm_head=False, seed=0, layer=0, linear=0, device=None, dtype=None):
        super().__init__(in_features, out_features, bias=bias, device=device, dtype=dtype)
        self.recipe = recipe if isinstance(recipe, Recipe) else Recipe(
            recipe, roles=roles, block=block, sr=sr, rht=rht, act_only=act_only,
            hp_layers=hp_layers, quant_lm_head=quant_lm_head,
            fp32_attn_lm_head=fp32_attn_lm_head, seed=seed)
        self.layer, self.linear, self.step = int(layer), int(linear), 0
        self.recipe.specs(self.layer, self.linear, 0)  # refuses bad ids at construction

    def forward(self, x):
        step = self.step
        if self.training and torch.is_grad_enabled():
            self.step += 1
        return LinearFunction.apply(x, self.weight, self.bias, self.recipe, self.layer,
                                    self.linear, step)

    def specs(self, step=None):
        """The six role specs at `step` (default: the step the next forward uses)."""
        return self.recipe.specs(self.layer, self.linear, self.step if step is None else step)

    def extra_repr(self):
        return "%s, recipe=%s, layer=%d, linear=%d" % (
            super().extra_repr(), self.recipe.options["recipe"], self.layer, self.linear)


def set_step(model, step):
    """Set the seed step of every halfs Linear in model (e.g. to the optimizer's step)."""
    for m in model.modules():
        if isinstance(m, Linear):
            m.step = int(step)


def convert(model, recipe="mxfp4-halfs", skip=(), **options):
    """Replace every torch.nn.Linear of model (in place; returned) by a halfs Linear sharing
    its weight and bias Parameters, except those whose qualified name matches a `skip` entry
    (an exact name or an fnmatch pattern: "lm_head", "*.gate"). options: the Linear/Recipe
    options (roles, block, sr, rht, act_only, hp_layers, quant_lm_head, fp32_attn_lm_head,
    seed). The converted
    layers get layer ids 0, 1, 2, ... in module order, each its own handle (operand buffers)."""
    if isinstance(skip, str):
        skip = [skip]
    if isinstance(recipe, Recipe):
        if options:
            raise TypeError("convert: options given with a Recipe; build the Recipe with them")
        options = dict(recipe.options)
    else:
        options = dict(options, recipe=recipe)
    Recipe(**options)  # a bad option fails before the model is touched
    names = [(n, m) for n, m in model.named_modules()
             if type(m) is torch.nn.Linear and not any(n == s or fnmatch.fnmatchcase(n, s)
                                                       for s in skip)]
    if type(model) is torch.nn.Linear:
        raise TypeError("convert takes a model containing nn.Linear modules; build a "
                        "halfs.torch.Linear directly for a single layer")
    for i, (name, m) in enumerate(names):
        new = Linear.__new__(Linear)
        torch.nn.Module.__init__(new)
        new.in_features, new.out_features = m.in_features, m.out_features
        new.weight = m.weight
        new.bias = m.bias
        new.recipe, new.layer, new.linear, new.step = Recipe(**options), i, 0, 0
        new.train(m.training)
        parent = model
        *path, leaf = name.split(".")
        for p in path:
            parent = getattr(parent, p)
        setattr(parent, leaf, new)
    return model
