"""The on-disk kernel cache: reused by a second process, invalidated by any kernel-source edit."""

from __future__ import annotations

import os
import pathlib
import shutil
import subprocess
import sys

import fastrnn

PROBE = (
    "import numpy as np, fastrnn as fr\n"
    "from fastrnn.kernels import rnn\n"
    "fr.rnn_forward(np.ones((2, 1, 3)), np.ones((2, 3)), np.ones((2, 2)), np.ones(2))\n"
    "stats = rnn.rnn_forward_kernel.stats\n"
    "print(sum(stats.cache_hits.values()), sum(stats.cache_misses.values()), fr.__file__)\n"
)


def probe(package_parent: pathlib.Path) -> tuple[int, int]:
    env = {k: v for k, v in os.environ.items() if k != "NUMBA_CACHE_DIR"}
    env["PYTHONPATH"] = str(package_parent)
    out = subprocess.run([sys.executable, "-c", PROBE], check=True, capture_output=True, text=True,
                         env=env, cwd=package_parent).stdout.split()
    assert pathlib.Path(out[2]).is_relative_to(package_parent), out  # the copy, not the installed package
    return int(out[0]), int(out[1])


def test_second_process_loads_kernels_from_disk_cache_and_edits_invalidate_it(tmp_path):
    package = pathlib.Path(fastrnn.__file__).parent
    shutil.copytree(package, tmp_path / "fastrnn", ignore=shutil.ignore_patterns("__pycache__"))
    assert probe(tmp_path) == (0, 1)  # first process compiles
    assert probe(tmp_path) == (1, 0)  # second process loads from disk
    # Editing a helper module the kernel calls (not the kernel's own file) must recompile:
    with open(tmp_path / "fastrnn" / "kernels" / "activations.py", "a") as f:
        f.write("\n# an edit\n")
    assert probe(tmp_path) == (0, 1)
    assert probe(tmp_path) == (1, 0)
