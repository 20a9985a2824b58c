"""Central-difference gradient checking in float64."""

from __future__ import annotations

from typing import Callable, Mapping

import numpy as np


class GradcheckReport(dict):
    """Maximum relative error per argument name; ``report.worst`` is the largest.

    The relative error of one argument is normwise,
    ``max|analytic - numeric| / max(max|analytic|, max|numeric|)``, over the
    checked elements.  Normwise rather than elementwise because an elementwise
    ratio is dominated by the round-off of components that are nearly zero.
    """

    @property
    def worst(self) -> float:
        return max(self.values(), default=0.0)

    def __str__(self) -> str:
        width = max((len(name) for name in self), default=4)
        lines = [f"{'arg':<{width}}  max rel error"]
        lines += [f"{name:<{width}}  {error:.3e}" for name, error in self.items()]
        return "\n".join(lines)


def gradcheck(
    loss: Callable[..., float],
    args: Mapping[str, np.ndarray],
    grads: Mapping[str, np.ndarray],
    *,
    eps: float = 1e-6,
    max_checks: int | None = None,
    seed: int = 0,
) -> GradcheckReport:
    """Compare analytic gradients with central finite differences, in float64.

    Parameters
    ----------
    loss : callable
        ``loss(**args) -> float``.  It is always called with fresh float64
        copies of *every* argument -- initial states included -- with exactly
        one element perturbed, so nothing ``loss`` does to its arguments
        (an in-place update of ``h0``, say) can leak into the next evaluation.
    args : mapping of str to array
        The point at which to differentiate.  Never modified.
    grads : mapping of str to array
        Analytic gradients of ``loss`` for some or all of ``args``, with the
        same shapes.  Each named argument is checked.
    eps : float, default 1e-6
        Step of the central difference ``(L(a+eps) - L(a-eps)) / (2 eps)``.
    max_checks : int, optional
        Check at most this many randomly chosen elements per argument
        (default: all of them).
    seed : int, default 0
        Seeds the choice of elements when ``max_checks`` is set.

    Returns
    -------
    GradcheckReport
        ``{name: max relative error}``, in the order of ``grads``.

    Raises
    ------
    ValueError
        A name in ``grads`` is not in ``args``, or its shape differs.
    """
    base = {name: np.array(value, dtype=np.float64, copy=True) for name, value in args.items()}
    rng = np.random.default_rng(seed)
    report = GradcheckReport()
    for name, analytic in grads.items():
        if name not in base:
            raise ValueError(f"grads names {name!r}, which is not among args {sorted(base)}")
        analytic = np.asarray(analytic, dtype=np.float64)
        if analytic.shape != base[name].shape:
            raise ValueError(f"grads[{name!r}] has shape {analytic.shape}; expected {base[name].shape}, the shape of args[{name!r}]")
        size = analytic.size
        indices = np.arange(size)
        if max_checks is not None and size > max_checks:
            indices = rng.choice(size, max_checks, replace=False)
        numeric = np.empty(len(indices))
        for n, flat in enumerate(indices):
            values = []
            for step in (eps, -eps):
                trial = {key: value.copy() for key, value in base.items()}
                trial[name].reshape(-1)[flat] += step
                values.append(float(loss(**trial)))
            numeric[n] = (values[0] - values[1]) / (2 * eps)
        checked = analytic.reshape(-1)[indices]
        scale = max(np.abs(checked).max(initial=0.0), np.abs(numeric).max(initial=0.0))
        report[name] = 0.0 if scale == 0 else float(np.abs(checked - numeric).max() / scale)
    return report
