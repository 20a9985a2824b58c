"""Numba kernels in loop form.  Stateless; no argument checking (see ``fastrnn.cells``)."""
