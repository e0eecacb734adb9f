"""No function over 60 lines in application code without a reason in its docstring (issue 15).

A function is measured from its `def` line to its last line, docstring included. A long one
may stay long when its docstring has a paragraph starting "Long because:" giving the reason
(a hot path that reads best as one straight transaction, say); every other one is split.
"""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
APPLICATION_PACKAGES = ("intents", "gateways", "deadletters", "portal")
MAX_LINES = 60
REASON_MARKER = "Long because:"


def long_functions_without_reason(root: Path) -> list[str]:
    """Each function over MAX_LINES lines lacking the reason marker, as `path:line name (N lines)`."""
    found = []
    for package in APPLICATION_PACKAGES:
        for path in sorted((root / package).rglob("*.py")):
            if "migrations" in path.relative_to(root).parts:
                continue
            tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
            for node in ast.walk(tree):
                if not isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                    continue
                assert node.end_lineno is not None
                length = node.end_lineno - node.lineno + 1
                if length > MAX_LINES and REASON_MARKER not in (ast.get_docstring(node) or ""):
                    found.append(
                        f"{path.relative_to(root)}:{node.lineno} {node.name} ({length} lines)"
                    )
    return found


def test_no_long_function_without_a_reason_in_its_docstring() -> None:
    offenders = long_functions_without_reason(ROOT)
    assert not offenders, (
        f"functions over {MAX_LINES} lines: split them, or say why in a docstring paragraph "
        f"starting {REASON_MARKER!r}:\n" + "\n".join(offenders)
    )


def test_the_check_sees_a_long_function_and_accepts_a_reason(tmp_path: Path) -> None:
    package = tmp_path / "intents"
    package.mkdir()
    body = "".join(f"    x{i} = {i}\n" for i in range(MAX_LINES))
    (package / "long.py").write_text(
        f"def too_long():\n{body}\n"
        f'def explained():\n    """Straight.\n\n    Long because: one transaction.\n    """\n{body}',
        encoding="utf-8",
    )
    (package / "migrations").mkdir()
    (package / "migrations" / "0001_initial.py").write_text(
        f"def generated():\n{body}", encoding="utf-8"
    )
    assert long_functions_without_reason(tmp_path) == [
        f"intents/long.py:1 too_long ({MAX_LINES + 1} lines)"
    ]
