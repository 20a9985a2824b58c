"""Bad arguments to ``fastrnn train | sample | bench``: a non-zero exit and one line naming the option, no traceback.

Two kinds of exit, both ``SystemExit``:
* argparse rejects a value while parsing: status 2, the line printed to stderr;
* a problem found while running (a missing file, a corrupt checkpoint): the
  exit carries the line as its code, which Python prints to stderr with status 1.
Nothing here trains for more than one step, and no bench case runs.
"""

from __future__ import annotations

import subprocess
import sys

import pytest

from fastrnn import nn
from fastrnn.__main__ import main

TINY = ["--hidden", "4", "--seq-len", "4", "--batch", "1", "--steps", "1", "--sample-every", "0"]


def exit_of(argv, capsys) -> tuple[int, str]:
    """(exit status, the stderr line) of ``fastrnn ARGV`` run in-process."""
    with pytest.raises(SystemExit) as raised:
        main(argv)
    code, err = raised.value.code, capsys.readouterr().err
    if isinstance(code, str):  # Python prints a string code to stderr and exits with 1
        return 1, code
    return code, err.strip()


ARGPARSE_CASES = [
    (["train", "--hidden", "0"], "train", "--hidden", "must be a positive integer; got '0'"),
    (["train", "--hidden", "-3"], "train", "--hidden", "must be a positive integer; got '-3'"),
    (["train", "--hidden", "2.5"], "train", "--hidden", "must be a positive integer; got '2.5'"),
    (["train", "--steps", "0"], "train", "--steps", "must be a positive integer; got '0'"),
    (["train", "--steps", "-1"], "train", "--steps", "must be a positive integer; got '-1'"),
    (["train", "--batch", "0"], "train", "--batch", "must be a positive integer; got '0'"),
    (["train", "--batch", "x"], "train", "--batch", "must be a positive integer; got 'x'"),
    (["train", "--seq-len", "0"], "train", "--seq-len", "must be a positive integer; got '0'"),
    (["train", "--seq-len", "-5"], "train", "--seq-len", "must be a positive integer; got '-5'"),
    (["train", "--lr", "0"], "train", "--lr", "must be a positive finite number; got '0'"),
    (["train", "--lr", "nan"], "train", "--lr", "must be a positive finite number; got 'nan'"),
    (["train", "--lr", "inf"], "train", "--lr", "must be a positive finite number; got 'inf'"),
    (["train", "--clip", "-1"], "train", "--clip", "must be a finite number >= 0; got '-1'"),
    (["train", "--seed", "-1"], "train", "--seed", "must be an integer >= 0; got '-1'"),
    (["train", "--checkpoint-every", "0"], "train", "--checkpoint-every", "must be a positive integer; got '0'"),
    (["train", "--sample-every", "-1"], "train", "--sample-every", "must be an integer >= 0; got '-1'"),
    (["train", "--cell", "lru"], "train", "--cell", "invalid choice: 'lru' (choose from 'lstm', 'rnn', 'gru')"),
    (["sample"], "sample", "", "the following arguments are required: --checkpoint"),
    (["sample", "--checkpoint", "c.npz", "--temperature", "0"], "sample", "--temperature",
     "must be a positive finite number; got '0'"),
    (["sample", "--checkpoint", "c.npz", "--temperature", "-0.5"], "sample", "--temperature",
     "must be a positive finite number; got '-0.5'"),
    (["sample", "--checkpoint", "c.npz", "--length", "-1"], "sample", "--length", "must be an integer >= 0; got '-1'"),
    (["sample", "--checkpoint", "c.npz", "--seed", "-2"], "sample", "--seed", "must be an integer >= 0; got '-2'"),
    (["bench", "--batch", "0"], "bench", "--batch", "must be a positive integer; got '0'"),
    (["bench", "--hidden", "4", "-1"], "bench", "--hidden", "must be a positive integer; got '-1'"),
    (["bench", "--seq-len", "0"], "bench", "--seq-len", "must be a positive integer; got '0'"),
    (["bench", "--threads", "0"], "bench", "--threads", "must be a positive integer; got '0'"),
    (["bench", "--rounds", "0"], "bench", "--rounds", "must be a positive integer; got '0'"),
    (["bench", "--input-size", "-1"], "bench", "--input-size", "must be a positive integer; got '-1'"),
]


@pytest.mark.parametrize("argv, command, option, message", ARGPARSE_CASES,
                         ids=[" ".join(case[0]) for case in ARGPARSE_CASES])
def test_bad_values_are_rejected_while_parsing(argv, command, option, message, capsys):
    status, line = exit_of(argv, capsys)
    assert status == 2
    argument = f"argument {option}: " if option else ""
    assert line == f"fastrnn {command}: error: {argument}{message} (see fastrnn {command} --help)"


def test_no_or_unknown_command(capsys):
    assert exit_of([], capsys) == (2, "fastrnn: error: the following arguments are required: COMMAND "
                                      "(see fastrnn --help)")
    status, line = exit_of(["nope"], capsys)
    assert status == 2 and line.startswith("fastrnn: error: argument COMMAND: invalid choice: 'nope'")


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    """Text files and checkpoints, good and bad; one real checkpoint from a one-step run."""
    root = tmp_path_factory.mktemp("cli")
    (root / "empty.txt").write_text("", encoding="utf-8")
    (root / "short.txt").write_text("abcd", encoding="utf-8")  # needs batch * seq_len + 1 = 5
    (root / "latin1.txt").write_bytes("caf\xe9".encode("latin-1"))
    (root / "garbage.npz").write_bytes(b"not a checkpoint\n" * 8)
    nn.save_checkpoint(root / "foreign.npz", {"head": nn.Linear(2, 2)}, step=1)
    good = root / "good.npz"
    assert main(["train", *TINY, "--checkpoint", str(good)]) == 0
    (root / "truncated.npz").write_bytes(good.read_bytes()[:300])
    # A train checkpoint whose arrays no longer fit its config (hidden 4 -> 5).
    saved = nn.load_checkpoint(good)
    config = dict(saved.config, hidden=5)
    lm = nn.CharLM(saved.vocab, 4)
    nn.save_checkpoint(root / "mismatched.npz", lm.layers, step=1, vocab=saved.vocab, config=config)
    return root


def run_cases(files):
    def f(name):
        return str(files / name)

    resume = ["train", *TINY, "--resume", "--checkpoint"]
    return [
        ("train-text-missing", ["train", *TINY, "--text", f("missing.txt")],
         f"fastrnn train: error: --text {f('missing.txt')}: No such file or directory"),
        ("train-text-directory", ["train", *TINY, "--text", str(files)],
         f"fastrnn train: error: --text {files}: Is a directory"),
        ("train-text-empty", ["train", *TINY, "--text", f("empty.txt")],
         f"fastrnn train: error: --text {f('empty.txt')} is empty"),
        ("train-text-too-short", ["train", *TINY, "--text", f("short.txt")],
         f"fastrnn train: error: --text {f('short.txt')}: the text has 4 characters: too short for batch 1 x "
         "seq-len 4 (needs at least batch * seq_len + 1 = 5); lower --batch or --seq-len"),
        ("train-text-not-utf8", ["train", *TINY, "--text", f("latin1.txt")],
         f"fastrnn train: error: --text {f('latin1.txt')} is not UTF-8 text (unexpected end of data at byte 3)"),
        ("train-default-text-too-short", ["train", *TINY[:-6], "--seq-len", "100000"],
         "fastrnn train: error: the default text: the text has 866 characters: too short for batch 4 x seq-len "
         "100000 (needs at least batch * seq_len + 1 = 400001); lower --batch or --seq-len"),
        ("train-resume-without-checkpoint", ["train", *TINY, "--resume"],
         "fastrnn train: error: --resume needs --checkpoint"),
        ("train-checkpoint-directory-missing", ["train", *TINY, "--checkpoint", f("no/such/dir/c.npz")],
         f"fastrnn train: error: --checkpoint {f('no/such/dir/c.npz')}: its directory does not exist"),
        ("train-metrics-directory-missing", ["train", *TINY, "--metrics", f("no/m.json")],
         f"fastrnn train: error: --metrics {f('no/m.json')}: its directory does not exist"),
        ("train-resume-missing", [*resume, f("missing.npz")],
         f"fastrnn train: error: --checkpoint {f('missing.npz')}: No such file or directory"),
        ("train-resume-garbage", [*resume, f("garbage.npz")],
         f"fastrnn train: error: --checkpoint {f('garbage.npz')} is not a fastrnn checkpoint (not a readable .npz "
         "archive: NumPy reads it as a pickle, which is never loaded)"),
        ("train-resume-truncated", [*resume, f("truncated.npz")],
         f"fastrnn train: error: --checkpoint {f('truncated.npz')} is not a fastrnn checkpoint (not a readable "
         ".npz archive: File is not a zip file)"),
        ("train-resume-foreign", [*resume, f("foreign.npz")],
         f"fastrnn train: error: --checkpoint {f('foreign.npz')} is not a character-model checkpoint from "
         "fastrnn train"),
        ("train-resume-conflicting-option", [*resume, f("good.npz"), "--hidden", "8"],
         "fastrnn train: error: --hidden 8 disagrees with the checkpoint's 4; drop it to resume, or start a new "
         "run without --resume"),
        ("sample-missing", ["sample", "--checkpoint", f("missing.npz")],
         f"fastrnn sample: error: --checkpoint {f('missing.npz')}: No such file or directory"),
        ("sample-garbage", ["sample", "--checkpoint", f("garbage.npz")],
         f"fastrnn sample: error: --checkpoint {f('garbage.npz')} is not a fastrnn checkpoint (not a readable "
         ".npz archive: NumPy reads it as a pickle, which is never loaded)"),
        ("sample-foreign", ["sample", "--checkpoint", f("foreign.npz")],
         f"fastrnn sample: error: --checkpoint {f('foreign.npz')} is not a character-model checkpoint from "
         "fastrnn train"),
        ("sample-prime-outside-vocabulary", ["sample", "--checkpoint", f("good.npz"), "--prime", "~~@"],
         "fastrnn sample: error: --prime has characters '@~' that are not in the model's vocabulary"),
    ]


def test_problems_found_while_running_exit_1_with_one_line(files, capsys):
    for name, argv, expected in run_cases(files):
        assert exit_of(argv, capsys) == (1, expected), name


def test_checkpoint_that_does_not_fit_its_config(files, capsys):
    path = files / "mismatched.npz"
    status, line = exit_of(["sample", "--checkpoint", str(path)], capsys)
    assert status == 1
    assert line.startswith(f"fastrnn sample: error: --checkpoint {path} does not match the model its config "
                           "describes: params['weight_ih_l0'] has shape (16, ")


def test_a_real_process_prints_one_line_and_no_traceback(files):
    """What a user sees: the exit status and stderr of ``python -m fastrnn``."""
    for argv, status in ((["train", "--hidden", "0"], 2), (["sample", "--checkpoint", str(files / "garbage.npz")], 1)):
        done = subprocess.run([sys.executable, "-m", "fastrnn", *argv], capture_output=True, text=True, timeout=120)
        assert done.returncode == status
        lines = done.stderr.strip().splitlines()
        assert len(lines) == 1 and "Traceback" not in done.stderr and "error:" in lines[0]
