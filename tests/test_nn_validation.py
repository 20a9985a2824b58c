"""Every rejected input to fastrnn.nn (layers, losses, optimizers, clipping, checkpoints) with its exact error.

Layer cases are generated per layer kind (LSTM, RNN, GRU) and layout
(time-major, batch_first) from the argument each call takes, like
tests/test_validation.py does for the kernels; ``pytest --collect-only -q
tests/test_nn_validation.py`` lists them.  The second half checks what must
hold for accepted input: the caller's arrays are never written or aliased, and
NaN/Inf flow through the layers as through the kernels.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Callable

import numpy as np
import pytest

from fastrnn import nn
from fastrnn.registry import CELLS

T, B, D, H = 3, 2, 5, 4  # all different, so a swapped axis cannot pass unnoticed
F32, F64 = np.dtype(np.float32), np.dtype(np.float64)
LAYERS = {"lstm": nn.LSTM, "rnn": nn.RNN, "gru": nn.GRU}
BAD_DTYPES = [np.int64, np.bool_, np.float16, np.complex128, np.object_]


@dataclass(frozen=True)
class Call:
    """One layer and the valid arguments of a forward and a backward."""

    layer: nn.Module
    x: np.ndarray
    states: tuple  # each (L*Z, B, H)
    dy: np.ndarray
    dstates: tuple

    def forward(self, x=None, states=None, **kwargs):
        states = self.states if states is None else states
        state = states if isinstance(self.layer, nn.LSTM) else states[0]
        return self.layer.forward(self.x if x is None else x, state, **kwargs)

    def backward(self, dy=None, dstates=None, **kwargs):
        dstates = self.dstates if dstates is None else dstates
        dstate = dstates if isinstance(self.layer, nn.LSTM) else dstates[0]
        return self.layer.backward(self.dy if dy is None else dy, dstate, **kwargs)


def make_call(kind: str, batch_first: bool = False, dtype=F32, seed: int = 0, **options) -> Call:
    layer = LAYERS[kind](D, H, batch_first=batch_first, dtype=dtype, seed=seed, **options)
    rng = np.random.default_rng(seed)
    LZ, Z = layer.num_layers * layer.num_directions, layer.num_directions
    n_states = len(layer.state_names)

    def draw(*shape):
        return rng.standard_normal(shape).astype(dtype)

    sequence = (lambda last: draw(B, T, last)) if batch_first else (lambda last: draw(T, B, last))
    return Call(layer, sequence(D), tuple(draw(LZ, B, H) for _ in range(n_states)), sequence(Z * H),
                tuple(draw(LZ, B, H) for _ in range(n_states)))


@dataclass(frozen=True)
class Case:
    id: str
    run: Callable  # (Call) -> None; must raise
    error: type
    pattern: str


def state_labels(kind: str) -> tuple[list, list]:
    names = CELLS[kind].state_names  # ("h0", "c0") or ("h0",)
    return list(names), [f"d{name[0]}_n" for name in names]


def forward_cases(kind: str, batch_first: bool):
    x_layout = "(B, T, D)" if batch_first else "(T, B, D)"
    yield Case("x-2d", lambda c: c.forward(x=c.x[0]), ValueError,
               rf"^x must be 3-D with shape {re.escape(x_layout)}; got 2-D shape")
    yield Case("x-wrong-D", lambda c: c.forward(x=c.x[..., :-1]), ValueError,
               rf"^x has shape .*; expected {re.escape(x_layout)} with D={D}$")
    yield Case("x-None", lambda c: c.forward(x=np.asarray(None)), TypeError, "^x must have dtype float32 or float64")
    for dtype in BAD_DTYPES:
        shown = re.escape(str(np.ones(1).astype(dtype).dtype))
        yield Case(f"x-{np.dtype(dtype).name}", lambda c, dtype=dtype: c.forward(x=c.x.astype(dtype)), TypeError,
                   rf"^x must have dtype float32 or float64; got {shown}")
    yield Case("x-float64-into-float32-layer", lambda c: c.forward(x=c.x.astype(F64)), TypeError,
               r"^x has dtype float64 but the layer's dtype is float32; convert with x.astype\(np.float32\)$")
    for k, label in enumerate(state_labels(kind)[0]):
        def with_state(c, make, k=k):
            states = list(c.states)
            states[k] = make(states[k])
            return c.forward(states=tuple(states))
        yield Case(f"{label}-wrong-B", lambda c, s=with_state: s(c, lambda a: a[:, :1]), ValueError,
                   rf"^{label} has shape \(1, 1, {H}\); expected \(num_layers\*num_directions, B, H\) with B={B}")
        yield Case(f"{label}-wrong-L", lambda c, s=with_state: s(c, lambda a: np.concatenate([a, a])), ValueError,
                   rf"^{label} has shape \(2, {B}, {H}\); expected \(num_layers\*num_directions, B, H\)")
        yield Case(f"{label}-wrong-H", lambda c, s=with_state: s(c, lambda a: a[..., 1:]), ValueError,
                   rf"^{label} has shape \(1, {B}, {H - 1}\); expected \(L\*Z, B, H\) with H={H}$")
        yield Case(f"{label}-2d", lambda c, s=with_state: s(c, lambda a: a[0]), ValueError,
                   rf"^{label} must be 3-D with shape \(L\*Z, B, H\); got 2-D")
        yield Case(f"{label}-float64", lambda c, s=with_state: s(c, lambda a: a.astype(F64)), TypeError,
                   rf"^{label} has dtype float64 but the layer's dtype is float32")
        yield Case(f"{label}-int", lambda c, s=with_state: s(c, lambda a: a.astype(np.int32)), TypeError,
                   rf"^{label} must have dtype float32 or float64; got int32")
    if kind == "lstm":
        # A bare array where the pair (h0, c0) belongs.
        yield Case("state-bare-array", lambda c: c.layer.forward(c.x, c.states[0]), TypeError,
                   r"^state must be a tuple \(h, c\) of \(L\*Z, B, H\) arrays or None; got ndarray$")
        yield Case("state-triple", lambda c: c.layer.forward(c.x, (*c.states, None)), TypeError,
                   r"^state must be a tuple \(h, c\)")
    else:
        # A tuple where the single array h0 belongs: np.asarray gives it a fourth axis.
        yield Case("h0-as-tuple", lambda c: c.layer.forward(c.x, c.states), ValueError,
                   r"^h0 must be 3-D with shape \(L\*Z, B, H\); got 4-D")
    lengths_cases = {
        "float": (np.full(B, 2.0), TypeError, r"^lengths must hold integers .*; got dtype float64$"),
        "bool": (np.ones(B, bool), TypeError, r"^lengths must hold integers .*; got dtype bool$"),
        "wrong-shape": (np.full(B + 1, 2), ValueError, rf"^lengths has shape \({B + 1},\); expected \(B,\) = \({B},\)"),
        "scalar": (2, ValueError, rf"^lengths has shape \(\); expected \(B,\) = \({B},\)"),
        "above-T": (np.full(B, T + 1), ValueError, rf"^lengths must lie in \[0, T\] = \[0, {T}\]; got values from"),
        "negative": (np.full(B, -1), ValueError, rf"^lengths must lie in \[0, T\] = \[0, {T}\]"),
    }
    for label, (value, error, pattern) in lengths_cases.items():
        yield Case(f"lengths-{label}", lambda c, value=value: c.forward(lengths=value), error, pattern)



def backward_cases(kind: str, batch_first: bool):
    y_layout = "(B, T, H)" if batch_first else "(T, B, H)"
    t_axis = 1 if batch_first else 0
    yield Case("dy-2d", lambda c: c.backward(dy=c.dy[0]), ValueError, rf"^dy must be 3-D with shape {re.escape(y_layout)}")
    yield Case("dy-wrong-H", lambda c: c.backward(dy=c.dy[..., 1:]), ValueError,
               rf"^dy has shape .*; expected {re.escape(y_layout)} with H={H}$")
    # A wrong T is reported in the caller's layout, whichever it is.
    longer = (B, T + 1, H) if batch_first else (T + 1, B, H)
    expected = (B, T, H) if batch_first else (T, B, H)
    yield Case("dy-wrong-T", lambda c: c.backward(dy=np.concatenate([c.dy, c.dy[:1] if t_axis == 0 else c.dy[:, :1]],
                                                                    axis=t_axis)),
               ValueError, rf"^dy has shape {re.escape(str(longer))}; expected {re.escape(y_layout)} = "
                           rf"{re.escape(str(expected))}, the shape of y$")
    yield Case("dy-float64", lambda c: c.backward(dy=c.dy.astype(F64)), TypeError,
               "^dy has dtype float64 but the layer's dtype is float32")
    yield Case("dy-float16", lambda c: c.backward(dy=c.dy.astype(np.float16)), TypeError,
               "^dy must have dtype float32 or float64; got float16")
    for k, label in enumerate(state_labels(kind)[1]):
        def with_dstate(c, make, k=k):
            dstates = list(c.dstates)
            dstates[k] = make(dstates[k])
            return c.backward(dstates=tuple(dstates))
        yield Case(f"{label}-wrong-B", lambda c, s=with_dstate: s(c, lambda a: a[:, :1]), ValueError,
                   rf"^{label} has shape \(1, 1, {H}\); expected")
        yield Case(f"{label}-float64", lambda c, s=with_dstate: s(c, lambda a: a.astype(F64)), TypeError,
                   rf"^{label} has dtype float64 but the layer's dtype is float32")
    if kind == "lstm":
        yield Case("dstate-bare-array", lambda c: c.layer.backward(c.dy, c.dstates[0]), TypeError,
                   r"^dstate must be a tuple \(h, c\)")
    yield Case("cache-plain-tuple", lambda c: c.backward(cache=("not", "a cache")), TypeError,
               rf"^cache must be the LayerCache of 1 {LAYERS[kind]._cache_type.__name__}")
    other_kind = "rnn" if kind != "rnn" else "lstm"
    yield Case("cache-of-another-cell", lambda c: c.backward(cache=make_call(other_kind).forward(return_cache=True)[2]),
               TypeError, rf"^cache must be the LayerCache of 1 {LAYERS[kind]._cache_type.__name__}.*got LayerCache$")
    yield Case("cache-of-a-2-layer-stack",
               lambda c: c.backward(cache=make_call(kind, num_layers=2).forward(return_cache=True)[2]),
               TypeError, rf"^cache must be the LayerCache of 1 ")
    # An identical twin layer: the types fit, but the gradient would be the twin's.
    yield Case("cache-of-an-identical-layer",
               lambda c: c.backward(cache=make_call(kind, batch_first).forward(return_cache=True)[2]), ValueError,
               rf"^cache was made by another layer's forward; pass the cache this {kind.upper()}'s forward")


def layer_params():
    for kind in sorted(LAYERS):
        for batch_first in (False, True):
            layout = "batch_first" if batch_first else "time_major"
            for case in forward_cases(kind, batch_first):
                yield pytest.param(kind, batch_first, "forward", case, id=f"{kind}-{layout}-forward-{case.id}")
            for case in backward_cases(kind, batch_first):
                yield pytest.param(kind, batch_first, "backward", case, id=f"{kind}-{layout}-backward-{case.id}")


@pytest.mark.parametrize("kind, batch_first, phase, case", list(layer_params()))
def test_layer_rejects(kind, batch_first, phase, case):
    call = make_call(kind, batch_first)
    if phase == "backward":
        call.forward()
    with pytest.raises(case.error, match=case.pattern):
        case.run(call)
    if phase == "backward":
        call.backward()  # a rejected backward leaves the pending cache for a correct one


@pytest.mark.parametrize("kind", sorted(LAYERS))
def test_backward_without_forward_and_twice(kind):
    call = make_call(kind)
    message = rf"^{kind.upper()}.backward\(\) needs a preceding forward\(\): none is pending"
    with pytest.raises(RuntimeError, match=message):
        call.backward()
    call.forward()
    call.backward()
    with pytest.raises(RuntimeError, match=message):
        call.backward()


def constructor_cases():
    for name in ("input_size", "hidden_size", "num_layers"):
        for value in (0, -1):
            yield name, value, ValueError, rf"^{name} must be a positive integer; got {value}$"
        for value, shown in ((2.0, "float 2.0"), (True, "bool True"), ("3", "str '3'"), (None, "NoneType None")):
            yield name, value, TypeError, rf"^{name} must be a positive integer; got {re.escape(shown)}$"
    for name in ("bidirectional", "batch_first"):
        yield name, "no", TypeError, rf"^{name} must be True or False; got str 'no'$"
        yield name, 1, TypeError, rf"^{name} must be True or False; got int 1$"
    for value, shown in ((np.float16, "float16"), (np.int32, "int32"), (np.complex64, "complex64"),
                         (None, "None"), ("nope", "'nope'")):
        yield "dtype", value, TypeError, rf"^dtype must be float32 or float64; got {shown}$"
    yield "seed", -1, ValueError, r"^seed must be None or a non-negative integer; got -1"
    yield "seed", "x", TypeError, r"^seed must be None or a non-negative integer; got 'x'"


@pytest.mark.parametrize("kind", sorted(LAYERS))
@pytest.mark.parametrize("name, value, error, pattern",
                         [pytest.param(*case, id=f"{case[0]}={case[1]!r}") for case in constructor_cases()])
def test_constructor_rejects(kind, name, value, error, pattern):
    arguments = dict(input_size=D, hidden_size=H, num_layers=1, bidirectional=False, batch_first=False)
    arguments[name] = value
    with pytest.raises(error, match=pattern):
        LAYERS[kind](**arguments)


# -- Linear -------------------------------------------------------------------
def linear_cases():
    yield "in_features-0", lambda: nn.Linear(0, 2), ValueError, r"^in_features must be a positive integer; got 0$"
    yield "out_features-float", lambda: nn.Linear(3, 2.5), TypeError, r"^out_features must be a positive integer"
    yield "dtype-float16", lambda: nn.Linear(3, 2, dtype=np.float16), TypeError, r"^dtype must be float32 or float64"
    layer = nn.Linear(D, 2)
    x = np.ones((T, B, D), F32)
    yield "x-scalar", lambda: layer.forward(np.float32(1)), ValueError, r"^x must have at least one dimension"
    yield "x-wrong-D", lambda: layer.forward(x[..., 1:]), ValueError, rf"^x has shape .*; expected \(..., D_in\) with D_in={D}$"
    yield "x-int", lambda: layer.forward(x.astype(int)), TypeError, r"^x must have dtype float32 or float64; got int64"
    yield "x-float64", lambda: layer.forward(x.astype(F64)), TypeError, r"^x has dtype float64 but the layer's dtype is float32"
    pending = nn.Linear(D, 2)
    pending.forward(x)
    dy = np.ones((T, B, 2), F32)
    yield "dy-reshaped", lambda: pending.backward(dy.reshape(T * B, 2)), ValueError, \
        rf"^dy has shape \({T * B}, 2\); expected the shape of y = \({T}, {B}, 2\)$"
    yield "dy-wrong-D_out", lambda: pending.backward(dy[..., :1]), ValueError, r"^dy has shape .*; expected \(..., D_out\) with D_out=2$"
    yield "dy-float64", lambda: pending.backward(dy.astype(F64)), TypeError, r"^dy has dtype float64"
    yield "cache-of-a-recurrent-layer", lambda: pending.backward(dy, cache=make_call("rnn").forward(return_cache=True)[2]), \
        TypeError, r"^cache must be the LinearCache from Linear.forward\(..., return_cache=True\); got LayerCache$"
    yield "cache-plain-tuple", lambda: pending.backward(dy, cache=(x, x)), TypeError, r"^cache must be the LinearCache"
    twin = nn.Linear(D, 2)
    yield "cache-of-another-linear", lambda: pending.backward(dy, cache=twin.forward(x, return_cache=True)[1]), \
        ValueError, r"^cache was made by another layer's forward; pass the cache this Linear's forward"
    yield "backward-without-forward", lambda: nn.Linear(D, 2).backward(dy), RuntimeError, \
        r"^Linear.backward\(\) needs a preceding forward\(\)"


@pytest.mark.parametrize("run, error, pattern", [pytest.param(*case[1:], id=case[0]) for case in linear_cases()])
def test_linear_rejects(run, error, pattern):
    with pytest.raises(error, match=pattern):
        run()


# -- losses, optimizers, clipping ---------------------------------------------------
def loss_cases():
    logits = np.zeros((T, B, 3), F32)
    targets = np.zeros((T, B), np.int64)
    ce, mse = nn.cross_entropy, nn.mse
    yield "ce-target-3-of-3", lambda: ce(logits, targets + 3), ValueError, r"^targets must lie in \[0, 3\); got values in \[3, 3\]$"
    yield "ce-target-negative", lambda: ce(logits, targets - 1), ValueError, r"^targets must lie in \[0, 3\)"
    yield "ce-target-float", lambda: ce(logits, targets.astype(F32)), TypeError, r"^targets must be an integer array .*float32$"
    yield "ce-target-bool", lambda: ce(logits, targets.astype(bool)), TypeError, r"^targets must be an integer array .*bool$"
    yield "ce-target-wrong-shape", lambda: ce(logits, targets[:-1]), ValueError, \
        rf"^targets has shape \({T - 1}, {B}\); expected logits.shape\[:-1\] = \({T}, {B}\)"
    yield "ce-logits-1d", lambda: ce(logits[0, 0], targets[0, 0]), ValueError, r"^logits must be at least 2-D"
    yield "ce-logits-int", lambda: ce(logits.astype(int), targets), TypeError, r"^logits must have dtype float32 or float64"
    yield "ce-logits-float16", lambda: ce(logits.astype(np.float16), targets), TypeError, r"^logits must have dtype"
    yield "ce-no-classes", lambda: ce(logits[..., :0], targets), ValueError, r"^cross_entropy needs at least one position and one class"
    yield "ce-no-positions", lambda: ce(logits[:0], targets[:0]), ValueError, r"^cross_entropy needs at least one position"
    yield "mse-int", lambda: mse(targets, targets), TypeError, r"^prediction must have dtype float32 or float64; got int64"
    yield "mse-wrong-shape", lambda: mse(logits, logits[:-1]), ValueError, r"^target has shape .*; expected the shape of prediction"
    yield "mse-empty", lambda: mse(logits[:0], logits[:0]), ValueError, r"^mse needs at least one element"


def optimizer_cases():
    layer = nn.Linear(2, 2)
    for name, optimizer in nn.OPTIMIZERS.items():
        for lr in (0, -0.1, float("nan"), float("inf")):
            yield f"{name}-lr-{lr}", lambda o=optimizer, lr=lr: o(layer, lr=lr), ValueError, \
                rf"^lr must be positive and finite; got {lr}$"
        yield f"{name}-lr-str", lambda o=optimizer: o(layer, lr="0.1"), TypeError, r"^lr must be a number; got str '0.1'$"
        yield f"{name}-params-dict", lambda o=optimizer: o(layer.params, lr=0.1), TypeError, \
            r"^expected fastrnn.nn layers \(Module\), e.g. \[lstm, head\], not their params; got ndarray$"
        yield f"{name}-no-layers", lambda o=optimizer: o([], lr=0.1), ValueError, rf"^{optimizer.__name__} got no layers to optimize$"
        yield f"{name}-same-layer-twice", lambda o=optimizer: o([layer, layer], lr=0.1), ValueError, \
            rf"^{optimizer.__name__} got the same layer more than once$"
    yield "sgd-momentum-1", lambda: nn.SGD(layer, lr=0.1, momentum=1), ValueError, r"^momentum must be in \[0, 1\); got 1$"
    yield "adam-betas-scalar", lambda: nn.Adam(layer, betas=0.9), TypeError, r"^betas must be a pair \(beta1, beta2\)"
    yield "adam-beta2-1", lambda: nn.Adam(layer, betas=(0.9, 1.0)), ValueError, r"^betas\[1\] must be in \[0, 1\)"
    yield "adam-eps-negative", lambda: nn.Adam(layer, eps=-1e-8), ValueError, r"^eps must be positive and finite"
    yield "adagrad-eps-zero", lambda: nn.Adagrad(layer, eps=0), ValueError, r"^eps must be positive and finite"


def clip_cases():
    layer = nn.Linear(2, 2)
    for value in (0, -1.0, float("nan")):
        yield f"norm-{value}", lambda value=value: nn.clip_grad_norm(layer, value), ValueError, \
            rf"^max_norm must be positive; got {value}$"
        yield f"value-{value}", lambda value=value: nn.clip_grad_value(layer, value), ValueError, \
            rf"^clip_value must be positive; got {value}$"
    yield "norm-str", lambda: nn.clip_grad_norm(layer, "1"), TypeError, r"^max_norm must be a number; got str '1'$"
    yield "norm-None", lambda: nn.clip_grad_norm(layer, None), TypeError, r"^max_norm must be a number; got NoneType"


@pytest.mark.parametrize("run, error, pattern", [pytest.param(*case[1:], id=case[0])
                                                 for cases in (loss_cases, optimizer_cases, clip_cases)
                                                 for case in cases()])
def test_training_helpers_reject(run, error, pattern):
    with pytest.raises(error, match=pattern):
        run()


def test_cross_entropy_nonfinite_logits_give_nan_rows_without_warnings():
    logits = np.zeros((4, 3), F64)
    logits[1, 1], logits[2, 1], logits[3, 2] = np.nan, np.inf, -np.inf
    targets = np.array([0, 0, 0, 2])
    with np.errstate(all="raise"):  # any floating-point warning would raise here
        loss, grad = nn.cross_entropy(logits, targets)
    assert np.isnan(loss)
    assert np.isfinite(grad[0]).all() and np.isnan(grad[1]).all() and np.isnan(grad[2]).all()
    assert np.isfinite(grad[3]).all() and grad[3, 2] == -0.25  # p = 0 for the -Inf target: grad (0 - 1) / N
    finite_loss, _ = nn.cross_entropy(logits[[0, 3]], np.array([0, 0]))  # -Inf only off the target: finite
    assert np.isfinite(finite_loss) and nn.cross_entropy(logits[[3]], np.array([2])).loss == np.inf


# -- checkpoints ------------------------------------------------------------------------
def corrupt_files(tmp_path, good: bytes) -> dict:
    """name -> (bytes written, expected message after the path)."""
    import pickle

    return {
        "empty": (b"", r"not a readable \.npz archive: No data left in file"),
        "truncated": (good[: len(good) // 2], r"not a readable \.npz archive: File is not a zip file"),
        "text": (b"not a checkpoint at all\n" * 5, r"not a readable \.npz archive: NumPy reads it as a pickle, which is never loaded"),
        "pickle": (pickle.dumps({"format": 1, "step": 0}), r"not a readable \.npz archive: NumPy reads it as a pickle"),
        "zeroed-middle": (good[:200] + bytes(60) + good[260:], r"not a readable \.npz archive"),
    }


def test_checkpoint_corrupt_files_are_value_errors_and_never_unpickled(tmp_path, monkeypatch):
    import pickle

    good_path = tmp_path / "good.npz"
    nn.save_checkpoint(good_path, {"head": nn.Linear(2, 2)}, step=3, config={"a": 1})
    good = good_path.read_bytes()

    def no_unpickling(*args, **kwargs):
        raise AssertionError("load_checkpoint unpickled a file")

    monkeypatch.setattr(pickle, "load", no_unpickling)
    monkeypatch.setattr(pickle, "loads", no_unpickling)
    for name, (content, message) in corrupt_files(tmp_path, good).items():
        path = tmp_path / f"{name}.npz"
        path.write_bytes(content)
        with pytest.raises(ValueError, match=rf"^{re.escape(str(path))} is not a fastrnn checkpoint \({message}"):
            nn.load_checkpoint(path)
    assert nn.load_checkpoint(good_path).step == 3


def test_checkpoint_missing_entries_and_other_files(tmp_path):
    cases = {
        "lone.npy": (lambda p: np.save(p, np.zeros(3)), r"not a readable \.npz archive: it holds a single array"),
        "other.npz": (lambda p: np.savez(p, a=np.zeros(3)), r"no 'format' entry"),
        "noconfig.npz": (lambda p: np.savez(p, format=np.array(1), step=np.array(0)), r"no 'config' entry"),
        "badjson.npz": (lambda p: np.savez(p, format=np.array(1), step=np.array(0), config=np.array("{nope")),
                        r"unreadable format/step/config: Expecting property name"),
        "objects.npz": (lambda p: np.savez(p, format=np.array(1), step=np.array(0),
                                           config=np.array([{}], dtype=object)),
                        r"not a readable \.npz archive: NumPy reads it as a pickle"),
    }
    for name, (write, message) in cases.items():
        path = tmp_path / name
        with open(path, "wb") as file:
            write(file)
        with pytest.raises(ValueError, match=rf"^{re.escape(str(path))} is not a fastrnn checkpoint \({message}"):
            nn.load_checkpoint(path)
    with pytest.raises(FileNotFoundError):
        nn.load_checkpoint(tmp_path / "missing.npz")
    with pytest.raises(IsADirectoryError):
        nn.load_checkpoint(tmp_path)


# -- accepted input: never written, never aliased, NaN flows through --------------------
LAYOUTS = [pytest.param(dict(), id="plain"), pytest.param(dict(batch_first=True), id="batch_first"),
           pytest.param(dict(num_layers=2, bidirectional=True), id="2layers-bidirectional"),
           pytest.param(dict(batch_first=True, bidirectional=True, lengths=True), id="batch_first-bidirectional-lengths")]


def read_only_copies(arrays):
    copies = []
    for array in arrays:
        copy = array.copy()
        copy.flags.writeable = False  # any write into it raises
        copies.append(copy)
    return copies


@pytest.mark.parametrize("options", LAYOUTS)
@pytest.mark.parametrize("kind", sorted(LAYERS))
def test_caller_arrays_are_never_written_or_aliased(kind, options):
    options = dict(options)
    lengths = np.array([T, T - 1]) if options.pop("lengths", False) else None
    call = make_call(kind, dtype=F64, **options)
    inputs = read_only_copies([call.x, *call.states, call.dy, *call.dstates])
    originals = [array.copy() for array in inputs]
    x, *rest = inputs
    n = len(call.states)
    states, dy, dstates = tuple(rest[:n]), rest[n], tuple(rest[n + 1:])
    y, finals, *_ = _as_pair(call.forward(x=x, states=states, lengths=lengths))
    outputs = [y, *finals]
    dx, dstates0 = _as_pair(call.backward(dy=dy, dstates=dstates))
    outputs += [dx, *dstates0]
    for before, after in zip(originals, inputs):
        np.testing.assert_array_equal(after, before)
    for output in outputs:
        assert output.flags.writeable
        for array in inputs + list(call.layer.params.values()) + list(call.layer.grads.values()):
            assert not np.shares_memory(output, array)
    for i, first in enumerate(outputs):
        for second in outputs[i + 1:]:
            assert not np.shares_memory(first, second)


@pytest.mark.parametrize("kind", sorted(LAYERS))
def test_editing_returned_arrays_does_not_change_backward(kind):
    """y and the final states are the caller's: writing into them (e.g. an in-place activation) is safe."""
    call = make_call(kind, dtype=F64, bidirectional=True)
    y, finals, cache = _as_pair(call.forward(return_cache=True))
    expected = _as_pair(call.backward(cache=cache))[0]
    y[...] = np.nan
    for final in finals:
        final[...] = np.nan
    np.testing.assert_array_equal(_as_pair(call.backward(cache=cache))[0], expected)


def test_linear_and_losses_never_write_or_alias():
    layer = nn.Linear(D, 3, dtype=F64)
    x, dy = read_only_copies([np.ones((T, B, D)), np.ones((T, B, 3))])
    y = layer.forward(x)
    dx = layer.backward(dy)
    logits, = read_only_copies([y])
    targets, = read_only_copies([np.zeros((T, B), np.int64)])
    _, dlogits = nn.cross_entropy(logits, targets)
    _, dpred = nn.mse(logits, logits)
    for output in (y, dx, dlogits, dpred):
        assert output.flags.writeable
        for array in (x, dy, logits, *layer.params.values(), *layer.grads.values()):
            assert not np.shares_memory(output, array)


def _as_pair(result):
    """(out, states tuple) for every layer kind: RNN/GRU return one state array."""
    first, second, *rest = result
    return (first, second if isinstance(second, tuple) else (second,), *rest)


@pytest.mark.parametrize("value", [np.nan, np.inf, -np.inf], ids=["nan", "inf", "-inf"])
@pytest.mark.parametrize("kind", sorted(LAYERS))
def test_nonfinite_input_propagates_like_the_kernel(kind, value):
    """One layer equals one kernel call with summed biases, non-finite values included."""
    call = make_call(kind, dtype=F64)
    x = call.x.copy()
    x[1, 0, 2] = value
    dy = call.dy.copy()
    dy[2, 1, 0] = value
    with np.errstate(all="raise"):  # no floating-point warning may escape from the layer's own NumPy code
        y, finals = _as_pair(call.forward(x=x))
        dx, dstates0 = _as_pair(call.backward(dy=dy))
    cell, params = CELLS[kind], call.layer.params
    biases = ((params["bias_ih_l0"], params["bias_hh_l0"]) if len(cell.bias_names) == 2
              else (params["bias_ih_l0"] + params["bias_hh_l0"],))
    out = cell.forward(x, params["weight_ih_l0"], params["weight_hh_l0"], *biases, *(s[0] for s in call.states))
    grads = cell.backward(dy, out.cache, *(d[0] for d in call.dstates))
    np.testing.assert_array_equal(y, out.y)
    for final, expected in zip(finals, cell.final_state(out)):
        np.testing.assert_array_equal(final[0], expected)
    np.testing.assert_array_equal(dx, grads[0])
    for got, expected in zip(dstates0, grads[3 + len(cell.bias_names):]):
        np.testing.assert_array_equal(got[0], expected)
    assert np.isfinite(y[:, 1]).all()  # the other sequence of the batch is untouched by x's bad value


@pytest.mark.parametrize("kind", sorted(LAYERS))
def test_nan_stays_in_its_sequence_through_stacked_bidirectional_layers(kind):
    call = make_call(kind, dtype=F64, num_layers=2, bidirectional=True)
    x = call.x.copy()
    x[1, 0, 2] = np.nan  # sequence 0, step 1
    y, finals = _as_pair(call.forward(x=x, lengths=np.array([T, T - 1])))
    dx, dstates0 = _as_pair(call.backward())
    # Layer 1 reads both directions of layer 0, and the reverse direction reaches every
    # step of the sequence: all of sequence 0 is NaN, none of sequence 1.
    assert np.isnan(y[:, 0]).all() and np.isfinite(y[:, 1]).all()
    assert np.isfinite(dx[:, 1]).all() and np.isfinite(dstates0[0][:, 1]).all()
    assert all(np.isnan(final[:, 0]).all() and np.isfinite(final[:, 1]).all() for final in finals)
