"""Checkpoints: exact round trip without pickle, atomic writes, and resuming continues the same run."""

from __future__ import annotations

import os

import numpy as np
import pytest

from fastrnn import nn
from fastrnn.nn import checkpoint as checkpoint_module


def new_run(seed=0):
    model = nn.SequenceModel("lstm", 1, 8, 1, dtype=np.float64, seed=seed)
    return model, nn.Adam(model.layers, lr=0.01)


def data(T=40):
    t = np.arange(T + 1, dtype=np.float64)
    wave = np.sin(0.3 * t)[:, None, None]  # (T+1, 1, 1)
    return wave[:-1], wave[1:]


def train(model, optimizer, steps, state=None):
    x, targets = data()
    for _ in range(steps):
        state = nn.truncated_bptt(model, x, targets, 10, loss=nn.mse, state=state,
                                  optimizer=optimizer, clip_norm=1.0).state
    return state


def test_resume_continues_the_same_run(tmp_path):
    straight, straight_opt = new_run()
    straight_state = train(straight, straight_opt, 6)

    first, first_opt = new_run()
    state = train(first, first_opt, 3)
    path = tmp_path / "run.npz"
    nn.save_checkpoint(path, first.layers, optimizer=first_opt, step=3, vocab="ab\u2014c",
                       config={"hidden": 8}, extra={"h": state[0], "c": state[1]})

    resumed, resumed_opt = new_run(seed=99)  # different initial weights: all must come from the file
    loaded = nn.load_checkpoint(path)
    nn.restore(loaded, resumed.layers, resumed_opt)
    assert (loaded.step, loaded.vocab, loaded.config) == (3, "ab\u2014c", {"hidden": 8})
    resumed_state = train(resumed, resumed_opt, 3, state=(loaded.extra["h"], loaded.extra["c"]))

    for layer_name, layer in straight.layers.items():
        for name, value in layer.params.items():
            np.testing.assert_array_equal(resumed.layers[layer_name].params[name], value)
    np.testing.assert_array_equal(resumed_state[0], straight_state[0])
    assert resumed_opt.steps == straight_opt.steps


def test_checkpoint_loads_without_pickle_and_has_plain_keys(tmp_path):
    model, opt = new_run()
    path = tmp_path / "c.npz"
    nn.save_checkpoint(path, model.layers, optimizer=opt, step=7)
    with np.load(path, allow_pickle=False) as archive:
        keys = set(archive.files)
    assert {"step", "config", "format", "param/rnn/weight_ih_l0", "param/head/bias", "optim/steps",
            "optim/exp_avg/0/weight_hh_l0"} <= keys
    assert nn.load_checkpoint(path).vocab is None


def test_interrupted_save_keeps_the_previous_checkpoint(tmp_path, monkeypatch):
    model, opt = new_run()
    path = tmp_path / "c.npz"
    nn.save_checkpoint(path, model.layers, optimizer=opt, step=1)
    good = path.read_bytes()

    def crash(file, **arrays):
        file.write(b"partial archive")
        raise KeyboardInterrupt

    monkeypatch.setattr(checkpoint_module.np, "savez", crash)
    with pytest.raises(KeyboardInterrupt):
        nn.save_checkpoint(path, model.layers, optimizer=opt, step=2)
    assert path.read_bytes() == good
    assert os.listdir(tmp_path) == ["c.npz"]  # the temporary file was removed


def test_restore_rejects_a_checkpoint_of_another_model(tmp_path):
    model, _ = new_run()
    path = tmp_path / "c.npz"
    nn.save_checkpoint(path, model.layers)
    other = nn.SequenceModel("rnn", 1, 8, 1, dtype=np.float64)  # same names, G=1 instead of 4
    with pytest.raises(ValueError, match=r"params\['weight_ih_l0'\] has shape \(32, 1\)"):
        nn.restore(nn.load_checkpoint(path), other.layers)
    with pytest.raises(KeyError, match="checkpoint has layers"):
        nn.restore(nn.load_checkpoint(path), {"rnn": model.rnn})
    with pytest.raises(KeyError, match="exactly the names"):
        model.head.load_params({"weight": model.head.params["weight"]})
    wider = nn.SequenceModel("lstm", 1, 9, 1, dtype=np.float64)
    with pytest.raises(ValueError, match="has shape"):
        nn.restore(nn.load_checkpoint(path), wider.layers)
    with pytest.raises(KeyError, match="no optimizer state"):
        nn.restore(nn.load_checkpoint(path), model.layers, nn.SGD(model.layers, lr=0.1))


def test_not_a_checkpoint(tmp_path):
    path = tmp_path / "x.npz"
    np.savez(path, a=np.zeros(1))
    with pytest.raises(ValueError, match="not a fastrnn checkpoint"):
        nn.load_checkpoint(path)
