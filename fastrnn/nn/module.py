"""What every layer of :mod:`fastrnn.nn` shares: parameter and gradient dicts,
and the one pending cache between a forward and its backward.

The pending cache
-----------------
The layer API follows PyTorch's calling shapes, ``y = layer.forward(x)`` then
``dx = layer.backward(dy)``, so backward must find what its forward computed
without the caller passing it.  A layer therefore keeps exactly one pending
cache, and the rules are:

* ``forward`` replaces the pending cache with its own;
* ``backward`` consumes it: a second ``backward`` of the same forward, or a
  ``backward`` with no forward before it, raises ``RuntimeError``;
* ``forward(..., return_cache=True)`` leaves the pending cache alone and hands
  the cache to the caller instead, who may pass it to ``backward(..., cache=)``
  any number of times (caches are read-only to backward).  Use it for forwards
  that must not disturb training (sampling, evaluation) or to keep several
  forwards in flight.

Caches hold private copies of the inputs and weights, so an optimizer step
between forward and backward does not change what backward computes: the
gradient is always that of the forward that produced the cache.  A cache
records the layer that made it; another layer's cache is rejected.

Threads
-------
Because of the pending cache, one layer object is not for concurrent use from
several threads (a forward in one thread would replace the cache another
thread's backward needs); give each thread its own layer.  The kernels
themselves are thread-safe.
"""

from __future__ import annotations

from typing import Iterable, Mapping

import json
import math
import numbers

import numpy as np

from .. import _validate as v


class Module:
    """Base of the layers: ``params`` and ``grads`` are dicts of NumPy arrays with the same keys.

    ``grads`` are accumulators: every ``backward`` adds to them, ``zero_grad``
    sets them to zero in place (the arrays keep their identity, so references an
    optimizer holds stay valid).
    """

    def __init__(self, dtype) -> None:
        # np.dtype(None) is float64, not the layers' float32 default: refuse it rather than guess.
        try:
            resolved = None if dtype is None else np.dtype(dtype)
        except TypeError:
            resolved = None
        if resolved is None or resolved not in v.SUPPORTED_DTYPES:  # (np.dtype("f8") == None is True)
            raise TypeError(f"dtype must be float32 or float64; got {resolved if resolved else repr(dtype)}")
        dtype = resolved
        self.dtype = dtype
        self.params: dict[str, np.ndarray] = {}
        self.grads: dict[str, np.ndarray] = {}
        self._pending = None
        self._token = object()  # stamped on every cache this layer makes (see _check_owner)
        self.training = True  # as PyTorch's modules; only dropout reads it

    def train(self, mode: bool = True):
        """Set training mode (``mode=True``, the default for a new layer) or evaluation mode; returns self.

        As in PyTorch, the mode only matters to dropout (the recurrent layers'
        ``dropout`` between stacked layers), which is applied in training mode only."""
        self.training = check_bool("mode", mode)
        return self

    def eval(self):
        """Evaluation mode (no dropout), ``train(False)``; returns self."""
        return self.train(False)

    def _add_param(self, name: str, value: np.ndarray) -> None:
        self.params[name] = np.ascontiguousarray(value, dtype=self.dtype)
        self.grads[name] = np.zeros_like(self.params[name])

    def zero_grad(self) -> None:
        """Set every gradient accumulator to zero (in place)."""
        for grad in self.grads.values():
            grad.fill(0)

    def load_params(self, params: Mapping[str, np.ndarray]) -> None:
        """Copy ``params`` (same names and shapes, e.g. a torch state dict as arrays) into ``self.params``.

        Raises
        ------
        KeyError
            A name is missing or unexpected.
        ValueError
            A shape differs.
        """
        if set(params) != set(self.params):
            raise KeyError(f"params must have exactly the names {sorted(self.params)}; got {sorted(params)}")
        for name, value in params.items():
            value = np.asarray(value)
            v.check_shape(f"params[{name!r}]", value, self.params[name].shape, "the layer's parameter shape")
            self.params[name][...] = value

    # -- random state (layers that draw random numbers, e.g. dropout masks) --------
    def _generator(self) -> np.random.Generator | None:
        """The generator the layer draws from while running, if any (none here)."""
        return None

    def rng_state(self) -> str | None:
        """The state of the layer's random generator as a JSON string, or None if it has none
        (saved by :func:`fastrnn.nn.save_checkpoint`, so that a resumed run draws what the
        uninterrupted one would)."""
        rng = self._generator()
        return None if rng is None else json.dumps(rng.bit_generator.state)

    def set_rng_state(self, state: str) -> None:
        """Restore a state from :meth:`rng_state`.

        Raises
        ------
        ValueError
            The layer has no generator, or ``state`` is not one of its states.
        """
        rng = self._generator()
        if rng is None:
            raise ValueError(f"{type(self).__name__} has no random generator to restore (a layer without dropout?)")
        try:
            rng.bit_generator.state = json.loads(state)
        except (TypeError, ValueError, KeyError) as error:
            raise ValueError(f"not a random state of this layer's {type(rng.bit_generator).__name__} "
                             f"generator: {error}") from None

    # -- the pending cache (see the module docstring) -------------------------
    def _keep(self, cache, return_cache: bool):
        """Store ``cache`` as the pending one, or hand it back when ``return_cache``."""
        if return_cache:
            return (cache,)
        self._pending = cache
        return ()

    def _pending_or(self, cache):
        """The cache for a backward: ``cache`` if given, else the pending one.

        The pending cache is only released by :meth:`_consume`, called once the
        backward's arguments are validated, so a rejected call does not lose it.
        """
        if cache is not None:
            return cache
        if self._pending is None:
            raise RuntimeError(
                f"{type(self).__name__}.backward() needs a preceding forward(): none is pending "
                "(no forward yet, or its cache was already consumed by a backward; each forward "
                "supports one backward unless you pass cache= from forward(..., return_cache=True))"
            )
        return self._pending

    def _check_owner(self, cache) -> None:
        """A cache of another layer (even an identical one) would add its gradient to this layer's grads."""
        if cache.owner is not self._token:
            raise ValueError(f"cache was made by another layer's forward; pass the cache this "
                             f"{type(self).__name__}'s forward(..., return_cache=True) returned")

    def _consume(self, cache) -> None:
        """Release the pending cache if ``cache`` is it."""
        if cache is self._pending:
            self._pending = None

    @property
    def cache_nbytes(self) -> int:
        """Bytes held by the pending cache (0 when none is pending)."""
        return cache_nbytes(self._pending)

    def __repr__(self) -> str:
        shapes = ", ".join(f"{name}={value.shape}" for name, value in self.params.items())
        return f"{type(self).__name__}({shapes}, dtype={self.dtype})"


def cache_nbytes(cache) -> int:
    """Total bytes of the arrays in a (nested) cache tuple."""
    if cache is None:
        return 0
    if isinstance(cache, np.ndarray):
        return cache.nbytes
    if isinstance(cache, tuple):
        return sum(cache_nbytes(item) for item in cache)
    return 0


def as_modules(modules) -> list[Module]:
    """A Module, a mapping of Modules or an iterable of Modules, as a list."""
    if isinstance(modules, Module):
        return [modules]
    if isinstance(modules, Mapping):
        modules = modules.values()
    result = list(modules) if isinstance(modules, Iterable) else [modules]
    for module in result:
        if not isinstance(module, Module):
            raise TypeError(f"expected fastrnn.nn layers (Module), e.g. [lstm, head], not their params; "
                            f"got {type(module).__name__}")
    return result


def check_input(name: str, value, dtype: np.dtype, ndim: int, layout: str, last: int, last_name: str) -> np.ndarray:
    """``value`` as an array of the layer's dtype with ``ndim`` dims and last dimension ``last``."""
    array = v.as_float_array(name, value, ndim, layout)
    if v.native(array.dtype) != dtype:
        raise TypeError(f"{name} has dtype {array.dtype} but the layer's dtype is {dtype}; "
                        f"convert with {name}.astype(np.{dtype})")
    if array.shape[-1] != last:
        raise ValueError(f"{name} has shape {array.shape}; expected {layout} with {last_name}={last}")
    return array


def check_size(name: str, value) -> int:
    """A layer size: a positive int (bool is not a size, although it is an int)."""
    if not isinstance(value, (int, np.integer)) or isinstance(value, (bool, np.bool_)):
        raise TypeError(f"{name} must be a positive integer; got {type(value).__name__} {value!r}")
    if value < 1:
        raise ValueError(f"{name} must be a positive integer; got {value!r}")
    return int(value)


def check_bool(name: str, value) -> bool:
    """A flag must be a real bool: ``bidirectional="no"`` would otherwise silently mean True."""
    if not isinstance(value, (bool, np.bool_)):
        raise TypeError(f"{name} must be True or False; got {type(value).__name__} {value!r}")
    return bool(value)


def check_positive(name: str, value, *, allow_inf: bool = False) -> float:
    """A positive real number (finite unless ``allow_inf``), e.g. a learning rate or a norm bound."""
    if not isinstance(value, numbers.Real) or isinstance(value, (bool, np.bool_)):
        raise TypeError(f"{name} must be a number; got {type(value).__name__} {value!r}")
    if not (value > 0 and (allow_inf or math.isfinite(value))):
        raise ValueError(f"{name} must be positive{'' if allow_inf else ' and finite'}; got {value!r}")
    return float(value)


def check_fraction(name: str, value) -> float:
    """A real number in [0, 1): a dropout probability, a momentum or a decay factor."""
    if not isinstance(value, numbers.Real) or isinstance(value, (bool, np.bool_)):
        raise TypeError(f"{name} must be a number in [0, 1); got {type(value).__name__} {value!r}")
    if not 0 <= value < 1:
        raise ValueError(f"{name} must be in [0, 1); got {value!r}")
    return float(value)


def make_rng(seed) -> np.random.Generator:
    """``np.random.default_rng(seed)`` with a message that names ``seed``."""
    try:
        return np.random.default_rng(seed)
    except (TypeError, ValueError) as error:
        raise type(error)(f"seed must be None or a non-negative integer; got {seed!r} ({error})") from None
