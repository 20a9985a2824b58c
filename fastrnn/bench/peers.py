"""PyTorch and JAX versions of the benchmark cases (optional extra ``fastrnn[peers]``).

Nothing here is imported unless a peer is benchmarked.  Each peer gets the same
inputs, dtype and thread count as fastrnn:

* torch: ``nn.LSTM`` / ``nn.RNN(nonlinearity="tanh")`` / ``nn.GRU``,
  time-major, weights copied in.  Forward-only runs under ``torch.no_grad()`` (torch's fastest
  inference path, oneDNN for float32); fwd+bwd computes gradients for ``x`` and
  every parameter.
* jax: the cell written with ``lax.scan`` under ``jit``, the input projection
  hoisted into one matmul as fastrnn does; fwd+bwd is ``jax.grad`` of
  ``sum(y * dy)`` with respect to ``x`` and the parameters.
"""

from __future__ import annotations

import os
from typing import Callable

import numpy as np

from ..registry import Cell
from .grid import Shape


def configure_threads(threads: int) -> None:
    """Give every library ``threads`` threads: BLAS (numpy's and SciPy's), Numba, torch, XLA.

    XLA reads its flags when jax is first imported, so this must run before that.
    """
    try:
        import threadpoolctl

        threadpoolctl.threadpool_limits(threads)
    except ImportError:  # BLAS then follows OPENBLAS_NUM_THREADS / OMP_NUM_THREADS
        pass
    import numba

    numba.set_num_threads(min(threads, numba.config.NUMBA_NUM_THREADS))
    os.environ.setdefault(
        "XLA_FLAGS",
        f"--xla_cpu_multi_thread_eigen={'true' if threads > 1 else 'false'} intra_op_parallelism_threads={threads}",
    )
    try:
        import torch
    except ImportError:
        return
    torch.set_num_threads(threads)


def available(impl: str) -> bool:
    try:
        __import__({"torch": "torch", "jax": "jax"}[impl])
    except ImportError:
        return False
    return True


def make_peer_runner(impl: str, cell: Cell, shape: Shape, dtype, mode: str, threads: int, inputs: dict) -> Callable[[], None]:
    if impl == "torch":
        return _torch_runner(cell, shape, dtype, mode, inputs)
    if impl == "jax":
        return _jax_runner(cell, shape, dtype, mode, inputs)
    raise ValueError(f"unknown peer {impl!r}; expected 'torch' or 'jax'")


def _torch_runner(cell, shape, dtype, mode, inputs):
    import torch

    T, B, D, H = shape
    tdtype = {np.dtype(np.float32): torch.float32, np.dtype(np.float64): torch.float64}[np.dtype(dtype)]
    if cell.name == "lstm":
        module = torch.nn.LSTM(D, H)
    elif cell.name == "gru":
        module = torch.nn.GRU(D, H)
    else:
        module = torch.nn.RNN(D, H, nonlinearity="tanh")
    module = module.to(tdtype)
    with torch.no_grad():
        module.weight_ih_l0.copy_(torch.from_numpy(inputs["w_ih"]))
        module.weight_hh_l0.copy_(torch.from_numpy(inputs["w_hh"]))
        if cell.bias_names == ("b_ih", "b_hh"):
            module.bias_ih_l0.copy_(torch.from_numpy(inputs["b_ih"]))
            module.bias_hh_l0.copy_(torch.from_numpy(inputs["b_hh"]))
        else:
            module.bias_ih_l0.copy_(torch.from_numpy(inputs["b"]))
            module.bias_hh_l0.zero_()
    x = torch.from_numpy(inputs["x"])
    dy = torch.from_numpy(inputs["dy"])
    lengths = inputs.get("lengths")
    if lengths is not None:
        # torch's variable-length path: pack, run, unpack to (T, B, H) zero-padded.
        from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

        lengths = torch.from_numpy(lengths)

        def forward(x):
            packed = pack_padded_sequence(x, lengths, enforce_sorted=False)
            return pad_packed_sequence(module(packed)[0], total_length=x.shape[0])[0]
    else:
        def forward(x):
            return module(x)[0]
    if mode in ("fwd", "y"):
        def run():
            with torch.no_grad():
                y = forward(x)
            return y.numpy() if mode == "y" else None
        return run
    x = x.clone().requires_grad_(True)

    def run():
        module.zero_grad(set_to_none=True)
        x.grad = None
        forward(x).backward(dy)

    return run


def _jax_runner(cell, shape, dtype, mode, inputs):
    import jax
    import jax.numpy as jnp
    from jax import lax

    if np.dtype(dtype) == np.float64:
        jax.config.update("jax_enable_x64", True)
    T, B, D, H = shape
    params = tuple(jnp.asarray(inputs[k]) for k in ("w_ih", "w_hh", *cell.bias_names))
    x = jnp.asarray(inputs["x"])
    dy = jnp.asarray(inputs["dy"])
    zeros = jnp.zeros((B, H), dtype)
    # Variable lengths: a (T, B, 1) mask; padded steps keep the state and output zero.
    mask = None
    if inputs.get("lengths") is not None:
        mask = jnp.asarray((np.arange(T)[:, None] < inputs["lengths"][None, :])[..., None])

    def lstm(params, x):
        w_ih, w_hh, b = params
        projected = jnp.einsum("tbd,gd->tbg", x, w_ih) + b  # (T, B, 4H)

        def step(carry, inputs_t):
            h, c = carry
            p_t, m_t = inputs_t
            a = p_t + h @ w_hh.T
            i, f, g, o = jnp.split(a, 4, axis=-1)
            c_new = jax.nn.sigmoid(f) * c + jax.nn.sigmoid(i) * jnp.tanh(g)
            h_new = jax.nn.sigmoid(o) * jnp.tanh(c_new)
            if m_t is None:
                return (h_new, c_new), h_new
            return (jnp.where(m_t, h_new, h), jnp.where(m_t, c_new, c)), jnp.where(m_t, h_new, 0)

        _, y = lax.scan(step, (zeros, zeros), (projected, mask))
        return y

    def rnn(params, x):
        w_ih, w_hh, b = params
        projected = jnp.einsum("tbd,gd->tbg", x, w_ih) + b  # (T, B, H)

        def step(h, inputs_t):
            p_t, m_t = inputs_t
            h_new = jnp.tanh(p_t + h @ w_hh.T)
            if m_t is None:
                return h_new, h_new
            return jnp.where(m_t, h_new, h), jnp.where(m_t, h_new, 0)

        _, y = lax.scan(step, zeros, (projected, mask))
        return y

    def gru(params, x):
        w_ih, w_hh, b_ih, b_hh = params
        projected = jnp.einsum("tbd,gd->tbg", x, w_ih) + b_ih  # (T, B, 3H)

        def step(h, inputs_t):
            p_t, m_t = inputs_t
            a_r, a_z, a_n = jnp.split(p_t, 3, axis=-1)
            g_r, g_z, g_n = jnp.split(h @ w_hh.T + b_hh, 3, axis=-1)
            r = jax.nn.sigmoid(a_r + g_r)
            z = jax.nn.sigmoid(a_z + g_z)
            n = jnp.tanh(a_n + r * g_n)
            h_new = (1 - z) * n + z * h
            if m_t is None:
                return h_new, h_new
            return jnp.where(m_t, h_new, h), jnp.where(m_t, h_new, 0)

        _, y = lax.scan(step, zeros, (projected, mask))
        return y

    model = {"lstm": lstm, "rnn": rnn, "gru": gru}[cell.name]
    if mode in ("fwd", "y"):
        compiled = jax.jit(model)
        if mode == "y":
            return lambda: np.asarray(compiled(params, x))
        return lambda: compiled(params, x).block_until_ready()
    grad = jax.jit(jax.grad(lambda p, x, dy: jnp.sum(model(p, x) * dy), argnums=(0, 1)))
    return lambda: jax.block_until_ready(grad(params, x, dy))
