"""Optimizers over the layers' ``params``/``grads`` dicts: SGD (momentum), Adagrad, Adam.

``step()`` updates ``layer.params`` in place (that is its job) and reads
``layer.grads``; it never modifies the gradients.  The per-parameter state
(momentum buffers, running averages) and the step count are plain arrays, so
``state_dict()`` can be saved in a checkpoint and ``load_state_dict()`` resumes
bit-for-bit.  The formulas are PyTorch's defaults (no weight decay, no
Nesterov, no amsgrad).
"""

from __future__ import annotations

import numpy as np

from ..kernels.optim import adagrad_update, adam_update, sgd_update
from .module import as_modules, check_fraction, check_positive


class Optimizer:
    """Base: ``slots`` names the state arrays kept per parameter, each shaped like it."""

    slots: tuple = ()

    def __init__(self, modules, lr: float) -> None:
        self.lr = check_positive("lr", lr)
        self.modules = as_modules(modules)
        if not self.modules:
            raise ValueError(f"{type(self).__name__} got no layers to optimize")
        if len({id(module) for module in self.modules}) != len(self.modules):
            # PyTorch refuses this too: the layer would be stepped twice per step().
            raise ValueError(f"{type(self).__name__} got the same layer more than once")
        self.steps = 0
        self.state = {
            (slot, index, name): np.zeros_like(param)
            for slot in self.slots
            for index, module in enumerate(self.modules)
            for name, param in module.params.items()
        }

    def zero_grad(self) -> None:
        """Zero every layer's gradient accumulators."""
        for module in self.modules:
            module.zero_grad()

    def step(self) -> None:
        """Update every parameter from its gradient (in place)."""
        self.steps += 1
        for index, module in enumerate(self.modules):
            for name, param in module.params.items():
                slots = [self.state[(slot, index, name)] for slot in self.slots]
                self._update(param, module.grads[name], *slots)

    def _update(self, param, grad, *slots) -> None:
        raise NotImplementedError

    def state_dict(self) -> dict[str, np.ndarray]:
        """Flat ``{key: array}``: ``"steps"`` and ``"{slot}/{layer index}/{param name}"``; copies."""
        result = {"steps": np.array(self.steps, np.int64)}
        result.update({f"{slot}/{index}/{name}": value.copy() for (slot, index, name), value in self.state.items()})
        return result

    def load_state_dict(self, state: dict) -> None:
        """Restore what :meth:`state_dict` returned (for the same layers).

        Raises
        ------
        KeyError
            The keys differ from this optimizer's.
        ValueError
            A shape differs.
        """
        expected = set(self.state_dict())
        if set(state) != expected:
            raise KeyError(f"optimizer state has keys {sorted(state)}; expected {sorted(expected)}")
        self.steps = int(state["steps"])
        for (slot, index, name), value in self.state.items():
            saved = np.asarray(state[f"{slot}/{index}/{name}"])
            if saved.shape != value.shape:
                raise ValueError(f"optimizer state {slot}/{index}/{name} has shape {saved.shape}; "
                                 f"expected {value.shape}")
            value[...] = saved


class SGD(Optimizer):
    """``v = momentum * v + g;  p -= lr * v`` (plain ``p -= lr * g`` when momentum is 0)."""

    slots = ("velocity",)

    def __init__(self, modules, lr: float, momentum: float = 0.0) -> None:
        self.momentum = check_fraction("momentum", momentum)
        super().__init__(modules, lr)

    def _update(self, param, grad, velocity) -> None:
        flat = _flat(param, grad, velocity)
        if flat:
            sgd_update(*flat, self.lr, self.momentum)
            return
        velocity *= self.momentum
        velocity += grad
        param -= self.lr * velocity


class Adagrad(Optimizer):
    """``s += g**2;  p -= lr * g / (sqrt(s) + eps)``."""

    slots = ("sum_sq",)

    def __init__(self, modules, lr: float = 0.01, eps: float = 1e-10) -> None:
        self.eps = check_positive("eps", eps)
        super().__init__(modules, lr)

    def _update(self, param, grad, sum_sq) -> None:
        flat = _flat(param, grad, sum_sq)
        if flat:
            adagrad_update(*flat, self.lr, self.eps)
            return
        sum_sq += grad * grad
        param -= self.lr * grad / (np.sqrt(sum_sq) + self.eps)


class Adam(Optimizer):
    """``m = b1 m + (1-b1) g;  v = b2 v + (1-b2) g**2;
    p -= lr * (m / (1-b1**t)) / (sqrt(v / (1-b2**t)) + eps)``."""

    slots = ("exp_avg", "exp_avg_sq")

    def __init__(self, modules, lr: float = 1e-3, betas: tuple = (0.9, 0.999), eps: float = 1e-8) -> None:
        if not isinstance(betas, (tuple, list)) or len(betas) != 2:
            raise TypeError(f"betas must be a pair (beta1, beta2); got {type(betas).__name__} {betas!r}")
        self.beta1, self.beta2 = check_fraction("betas[0]", betas[0]), check_fraction("betas[1]", betas[1])
        self.eps = check_positive("eps", eps)
        super().__init__(modules, lr)

    def _update(self, param, grad, exp_avg, exp_avg_sq) -> None:
        correction1 = 1 - self.beta1**self.steps
        correction2 = 1 - self.beta2**self.steps
        flat = _flat(param, grad, exp_avg, exp_avg_sq)
        if flat:
            adam_update(*flat, self.beta1, 1 - self.beta1, self.beta2, 1 - self.beta2, self.lr / correction1,
                        correction2, self.eps)
            return
        exp_avg *= self.beta1
        exp_avg += (1 - self.beta1) * grad
        exp_avg_sq *= self.beta2
        exp_avg_sq += (1 - self.beta2) * grad * grad
        param -= (self.lr / correction1) * exp_avg / (np.sqrt(exp_avg_sq / correction2) + self.eps)


_KERNEL_DTYPES = (np.dtype(np.float32), np.dtype(np.float64))


def _flat(param, *others) -> tuple:
    """1-D views of ``param`` and its gradient and state arrays, for the one-pass kernels
    (``kernels/optim.py``), or () if any is not C-contiguous float32/float64 of param's dtype
    and shape (a parameter a user replaced by a view, say): those take the NumPy form."""
    dtype, shape = param.dtype, param.shape
    if dtype not in _KERNEL_DTYPES or not param.flags.c_contiguous:
        return ()
    for array in others:
        if array.dtype != dtype or array.shape != shape or not array.flags.c_contiguous:
            return ()
    return (param.ravel(), *(array.ravel() for array in others))


OPTIMIZERS = {"sgd": SGD, "adagrad": Adagrad, "adam": Adam}
