"""`float` never touches money: no float type, call or literal in the money-bearing code."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ["ledger", "gateways", "lending", "reconciliation", "paycore"]
#: packages that hold only money and dates: not even a float literal belongs there
NO_FLOAT_LITERALS = {"ledger", "lending", "reconciliation"}


def _offences(path: Path, literals_banned: bool) -> list[str]:
    tree = ast.parse(path.read_text(), filename=str(path))
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Name) and node.id == "float":
            found.append(f"{path.relative_to(ROOT)}:{node.lineno}: uses `float`")
        elif literals_banned and isinstance(node, ast.Constant) and isinstance(node.value, float):
            found.append(f"{path.relative_to(ROOT)}:{node.lineno}: float literal {node.value!r}")
    return found


@pytest.mark.parametrize("package", PACKAGES)
def test_no_float_in(package):
    offences = [
        o for path in sorted((ROOT / package).rglob("*.py"))
        for o in _offences(path, package in NO_FLOAT_LITERALS)
    ]
    assert not offences, "\n".join(offences)


def test_the_guard_catches_a_float(tmp_path):
    sample = tmp_path / "m.py"
    sample.write_text("def fee(x: float) -> int:\n    return int(x * 0.03)\n")
    global ROOT
    saved, ROOT = ROOT, tmp_path
    try:
        assert len(_offences(sample, literals_banned=True)) == 2
    finally:
        ROOT = saved
