"""The README's examples run exactly as written, and its set-up commands are what CI runs."""

from __future__ import annotations

import pathlib
import re

import pytest

README = (pathlib.Path(__file__).resolve().parent.parent / "README.md").read_text()
EXAMPLES = re.findall(r"<!-- example -->\n```python\n(.*?)```", README, flags=re.S)


def test_readme_has_examples():
    assert len(EXAMPLES) >= 2


@pytest.mark.parametrize("index", range(len(EXAMPLES)))
def test_readme_example_runs(index, capsys):
    if "import torch" in EXAMPLES[index]:
        # CI installs torch (the 'peers' extra); a checkout without it still runs the rest.
        pytest.importorskip("torch", reason="this README example needs PyTorch (the 'peers' extra)")
    exec(compile(EXAMPLES[index], f"README example {index}", "exec"), {"__name__": "__readme__"})


def test_readme_names_the_set_up_commands():
    for marker in ("ci:install", "ci:test"):
        assert f"<!-- {marker} -->\n```bash\n" in README
    assert "fastrnn bench" in README
