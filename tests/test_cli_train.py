"""``fastrnn train`` / ``fastrnn sample``: metrics, checkpoints, exact resume, errors, ``python -m``."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest

from fastrnn import nn
from fastrnn.__main__ import main
from fastrnn.data import default_text

SMALL = ["--hidden", "16", "--seq-len", "16", "--batch", "2", "--sample-every", "0"]


def train(tmp_path, *extra):
    return main(["train", *SMALL, *extra])


@pytest.mark.parametrize("cell", ["lstm", "rnn", "gru"])
def test_train_writes_metrics_checkpoint_and_progress(tmp_path, capsys, cell):
    metrics, checkpoint = tmp_path / "m.json", tmp_path / "c.npz"
    assert train(tmp_path, "--steps", "40", "--metrics", str(metrics), "--checkpoint", str(checkpoint),
                 "--cell", cell) == 0
    result = json.loads(metrics.read_text())
    assert result["steps"] == 40 and result["chars_per_sec"] > 0
    assert result["final_loss"] < np.log(len(nn.vocab_of(default_text())))  # better than uniform guessing
    assert len(result["sample"]) == 200 and set(result["sample"]) <= set(default_text())
    err = capsys.readouterr().err
    assert "40/40" in err and "chars/s" in err and "loss" in err
    saved = nn.load_checkpoint(checkpoint)
    assert saved.step == 40 and saved.vocab == nn.vocab_of(default_text()) and saved.config["hidden"] == 16
    assert saved.config["cell"] == cell
    capsys.readouterr()
    assert main(["sample", "--checkpoint", str(checkpoint), "--length", "20", "--prime", "To"]) == 0
    assert len(capsys.readouterr().out.rstrip("\n")) == 22


@pytest.mark.parametrize("cell", ["lstm", "rnn", "gru"])
def test_resume_is_identical_to_an_uninterrupted_run(tmp_path, cell):
    straight, resumed = tmp_path / "straight.npz", tmp_path / "resumed.npz"
    assert train(tmp_path, "--steps", "30", "--checkpoint", str(straight), "--cell", cell) == 0
    assert train(tmp_path, "--steps", "15", "--checkpoint", str(resumed), "--cell", cell) == 0
    assert main(["train", "--steps", "30", "--checkpoint", str(resumed), "--resume", "--sample-every", "0"]) == 0
    a, b = nn.load_checkpoint(straight), nn.load_checkpoint(resumed)
    assert a.step == b.step == 30
    for layer in a.params:
        for name in a.params[layer]:
            np.testing.assert_array_equal(b.params[layer][name], a.params[layer][name])
    for key in a.optimizer:
        np.testing.assert_array_equal(b.optimizer[key], a.optimizer[key])


def test_resume_rejects_conflicting_options_and_other_text(tmp_path):
    checkpoint = tmp_path / "c.npz"
    assert train(tmp_path, "--steps", "2", "--checkpoint", str(checkpoint)) == 0
    with pytest.raises(SystemExit, match="--hidden 32 disagrees with the checkpoint's 16"):
        main(["train", "--steps", "4", "--checkpoint", str(checkpoint), "--resume", "--hidden", "32"])
    other = tmp_path / "other.txt"
    other.write_text("a different text " * 20, encoding="utf-8")
    with pytest.raises(SystemExit, match="text differs"):
        main(["train", "--steps", "4", "--checkpoint", str(checkpoint), "--resume", "--text", str(other)])
    with pytest.raises(SystemExit, match="--resume needs --checkpoint"):
        main(["train", "--resume"])


@pytest.mark.parametrize("steps", ["2", "1"])
def test_resume_at_or_below_the_saved_step_is_an_error(tmp_path, steps):
    """--steps is the total to reach: a resume that cannot train must say so, not exit as if it had."""
    checkpoint = tmp_path / "c.npz"
    assert train(tmp_path, "--steps", "2", "--checkpoint", str(checkpoint)) == 0
    before = checkpoint.read_bytes()
    with pytest.raises(SystemExit, match=f"--steps {steps}: the checkpoint is already at step 2.*more than 2"):
        main(["train", "--steps", steps, "--checkpoint", str(checkpoint), "--resume"])
    assert checkpoint.read_bytes() == before


def test_text_too_short_is_a_clear_error(tmp_path):
    short = tmp_path / "short.txt"
    short.write_text("abcabc", encoding="utf-8")
    with pytest.raises(SystemExit, match="too short for batch 2 x seq-len 16"):
        train(tmp_path, "--text", str(short), "--steps", "1")


def test_sample_prints_primed_deterministic_text(tmp_path, capsys):
    checkpoint = tmp_path / "c.npz"
    assert train(tmp_path, "--steps", "5", "--checkpoint", str(checkpoint)) == 0
    capsys.readouterr()
    command = ["sample", "--checkpoint", str(checkpoint), "--length", "30", "--temperature", "0.7", "--seed", "3"]
    outputs = []
    for _ in range(2):
        assert main([*command, "--prime", "To be"]) == 0
        outputs.append(capsys.readouterr().out)
    assert outputs[0] == outputs[1]
    assert outputs[0].startswith("To be") and len(outputs[0].rstrip("\n")) == 35
    with pytest.raises(SystemExit, match="not in the model's vocabulary"):
        main([*command, "--prime", "#"])


def test_python_dash_m_runs_train(tmp_path):
    metrics = tmp_path / "m.json"
    done = subprocess.run([sys.executable, "-m", "fastrnn", "train", *SMALL, "--steps", "3", "--metrics", str(metrics)],
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert json.loads(metrics.read_text())["steps"] == 3
    assert "3/3" in done.stderr
