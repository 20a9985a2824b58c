"""Checkpoints: layers, optimizer state, step, vocabulary, configuration -> one ``.npz``.

Everything is stored as plain arrays (strings as NumPy unicode arrays, the
configuration as JSON), so loading never unpickles: ``np.load(...,
allow_pickle=False)``.  Keys::

    param/{layer}/{name}   each layer's parameters (PyTorch names)
    rng/{layer}            the state of a layer's random generator (dropout masks), as JSON
    optim/{key}            Optimizer.state_dict()
    extra/{name}           anything else a run needs to resume (e.g. a carried state)
    step, vocab, config, format

Saving is atomic: the archive is written to a temporary file in the target's
directory, flushed to disk, then renamed over the target with ``os.replace``,
so an interrupted save leaves the previous checkpoint intact.
"""

from __future__ import annotations

import json
import os
import tempfile
import zipfile
from types import MappingProxyType
from typing import Mapping, NamedTuple

import numpy as np

FORMAT = 1


class Checkpoint(NamedTuple):
    params: dict  # {layer: {name: array}}
    optimizer: dict | None  # Optimizer.state_dict() or None
    step: int
    vocab: str | None
    config: dict
    extra: dict  # {name: array}
    rng: Mapping = MappingProxyType({})  # {layer: JSON state} for layers with a random generator


def save_checkpoint(path, layers: Mapping, *, optimizer=None, step: int = 0, vocab: str | None = None,
                    config: dict | None = None, extra: Mapping | None = None) -> None:
    """Write a checkpoint atomically.

    Parameters
    ----------
    path : str or path-like
        Written exactly (no ``.npz`` is appended).
    layers : mapping of str to layer
        E.g. ``model.layers``; names must not contain ``/``.
    optimizer : Optimizer, optional
    step : int
    vocab : str, optional
        The characters of a character model, in index order.
    config : dict, optional
        JSON-serializable settings needed to rebuild the model.
    extra : mapping of str to array, optional

    Raises
    ------
    ValueError
        A layer or extra name contains ``/``.
    TypeError
        ``config`` is not JSON-serializable.
    """
    arrays = {"format": np.array(FORMAT), "step": np.array(int(step), np.int64),
              "config": np.array(json.dumps(config or {}, sort_keys=True))}
    if vocab is not None:
        arrays["vocab"] = np.array(vocab)
    for layer_name, layer in layers.items():
        _check_name("layer", layer_name)
        arrays.update({f"param/{layer_name}/{name}": value for name, value in layer.params.items()})
        state = layer.rng_state()
        if state is not None:
            arrays[f"rng/{layer_name}"] = np.array(state)
    if optimizer is not None:
        arrays.update({f"optim/{key}": value for key, value in optimizer.state_dict().items()})
    for name, value in (extra or {}).items():
        _check_name("extra", name)
        arrays[f"extra/{name}"] = np.asarray(value)
    path = os.fspath(path)
    fd, temporary = tempfile.mkstemp(prefix=f".{os.path.basename(path)}.", suffix=".tmp",
                                     dir=os.path.dirname(os.path.abspath(path)))
    try:
        with os.fdopen(fd, "wb") as file:
            np.savez(file, **arrays)
            file.flush()
            os.fsync(file.fileno())
        os.replace(temporary, path)
    except BaseException:
        try:
            os.unlink(temporary)
        except FileNotFoundError:
            pass
        raise


def load_checkpoint(path) -> Checkpoint:
    """Read a checkpoint written by :func:`save_checkpoint` (never unpickles).

    Raises
    ------
    OSError
        The file cannot be opened (``FileNotFoundError``, ``IsADirectoryError``, ...).
    ValueError
        The file is not a fastrnn checkpoint (not an ``.npz`` archive, truncated or
        corrupt, a pickle, missing entries), or of a newer format.
    """
    data = _read_arrays(path)
    for key in ("format", "step", "config"):
        if key not in data:
            raise ValueError(f"{path} is not a fastrnn checkpoint (no {key!r} entry)")
    try:
        version, step, config = int(data["format"]), int(data["step"]), json.loads(str(data["config"]))
    except (TypeError, ValueError) as error:  # json.JSONDecodeError is a ValueError
        raise ValueError(f"{path} is not a fastrnn checkpoint (unreadable format/step/config: {error})") from None
    if version > FORMAT:
        raise ValueError(f"{path} has checkpoint format {version}; this fastrnn reads up to {FORMAT}")
    params: dict = {}
    for key, value in data.items():
        if key.startswith("param/"):
            _, layer_name, name = key.split("/", 2)
            params.setdefault(layer_name, {})[name] = value
    optim = {key[len("optim/"):]: value for key, value in data.items() if key.startswith("optim/")}
    extra = {key[len("extra/"):]: value for key, value in data.items() if key.startswith("extra/")}
    rng = {key[len("rng/"):]: str(value) for key, value in data.items() if key.startswith("rng/")}
    return Checkpoint(
        params=params,
        optimizer=optim or None,
        step=step,
        vocab=str(data["vocab"]) if "vocab" in data else None,
        config=config,
        extra=extra,
        rng=rng,
    )


def _read_arrays(path) -> dict:
    """Every array of the ``.npz`` at ``path``, refusing pickles; a corrupt file is a ValueError.

    The file is opened here rather than by ``np.load`` so that it is closed
    even when NumPy fails half-way (it leaks the handle of a truncated zip).
    """
    with open(path, "rb") as file:
        try:
            archive = np.load(file, allow_pickle=False)
            if not isinstance(archive, np.lib.npyio.NpzFile):  # a lone .npy array
                raise ValueError("it holds a single array, not an .npz archive")
            with archive:
                return {key: archive[key] for key in archive.files}
        except (ValueError, EOFError, OSError, zipfile.BadZipFile) as error:
            # NumPy's messages here ("No data left in file", "contains pickled data ... load
            # it unsafely") do not say that this is a damaged checkpoint, and the second
            # invites unpickling an untrusted file.
            reason = "NumPy reads it as a pickle, which is never loaded" if "pickle" in str(error) else error
            raise ValueError(f"{path} is not a fastrnn checkpoint (not a readable .npz archive: {reason})") from None


def restore(checkpoint: Checkpoint, layers: Mapping, optimizer=None) -> None:
    """Copy a checkpoint's parameters (and optimizer state, and the random state of layers that
    have one, e.g. for dropout) into existing layers.

    Raises
    ------
    KeyError
        The checkpoint's layers or parameter names differ from ``layers``.
    ValueError
        A saved random state does not fit its layer.
    """
    if set(checkpoint.params) != set(layers):
        raise KeyError(f"checkpoint has layers {sorted(checkpoint.params)}; expected {sorted(layers)}")
    for layer_name, layer in layers.items():
        layer.load_params(checkpoint.params[layer_name])
        if layer_name in checkpoint.rng:
            layer.set_rng_state(checkpoint.rng[layer_name])
    if optimizer is not None:
        if checkpoint.optimizer is None:
            raise KeyError("checkpoint holds no optimizer state")
        optimizer.load_state_dict(checkpoint.optimizer)


def _check_name(kind: str, name: str) -> None:
    if "/" in name:
        raise ValueError(f"{kind} name {name!r} must not contain '/' (it separates checkpoint keys)")
