"""Project rules that are cheap to check mechanically (see ../shared/STYLE.md)."""

from __future__ import annotations

import pathlib
import re

import fastrnn

PACKAGE = pathlib.Path(fastrnn.__file__).parent
SOURCES = sorted(p for p in PACKAGE.rglob("*.py") if "__pycache__" not in p.parts)


def test_numba_is_configured_in_one_module():
    """Every kernel compiles through fastrnn._jit.jit: no bare njit/fastmath elsewhere."""
    offenders = []
    for path in SOURCES:
        if path.name == "_jit.py":
            continue
        for number, line in enumerate(path.read_text().splitlines(), 1):
            if re.search(r"\bnjit\b|fastmath\s*=|numba\.jit\b|@jit\(", line):
                offenders.append(f"{path.relative_to(PACKAGE)}:{number}: {line.strip()}")
    assert not offenders, "Numba options belong in fastrnn/_jit.py:\n" + "\n".join(offenders)


def test_kernels_never_raise_or_validate():
    """Validation happens in the Python wrappers; kernels run on checked input only."""
    offenders = []
    for path in sorted((PACKAGE / "kernels").glob("*.py")):
        for number, line in enumerate(path.read_text().splitlines(), 1):
            if re.match(r"\s*(raise|assert)\b", line):
                offenders.append(f"{path.name}:{number}: {line.strip()}")
    assert not offenders, "\n".join(offenders)


def test_import_does_not_pull_in_peers():
    import subprocess
    import sys

    code = "import sys, fastrnn, fastrnn.nn, fastrnn.interop, fastrnn.__main__; " \
           "print(sorted(m for m in ('torch', 'jax') if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True).stdout
    assert out.strip() == "[]"
