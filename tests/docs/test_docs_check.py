"""bin/check_docs.py: the docs check `make test` runs finds every broken relative link."""

from __future__ import annotations

import importlib.util
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
spec = importlib.util.spec_from_file_location("check_docs", ROOT / "bin" / "check_docs.py")
assert spec and spec.loader
check_docs = importlib.util.module_from_spec(spec)
spec.loader.exec_module(check_docs)


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


def test_missing_files_and_anchors_are_reported_with_their_line(tmp_path):
    write(
        tmp_path / "docs" / "ops.md",
        "# Operations\n\n## Replay a dead letter\n\n## Notes\n\n## Notes\n",
    )
    readme = write(
        tmp_path / "README.md",
        "# Title\n"
        "[ok](docs/ops.md#replay-a-dead-letter) [dup](docs/ops.md#notes-1) [top](#title)\n"
        "[gone](docs/missing.md)\n"
        "[bad anchor](docs/ops.md#replay)\n"
        "![img](docs/shot.png) [web](https://example.com/x#y)\n"
        "```sh\n[in code](nowhere.md)\n```\n"
        "`[span](nowhere.md)`\n"
        "[ref]: docs/ops.md#nothing-here\n",
    )
    problems = check_docs.broken_links(readme, root=tmp_path)
    assert problems == [
        "README.md:3: docs/missing.md: no such file",
        "README.md:4: docs/ops.md#replay: no heading #replay in ops.md",
        "README.md:5: docs/shot.png: no such file",
        "README.md:10: docs/ops.md#nothing-here: no heading #nothing-here in ops.md",
    ]


def test_github_slugs():
    assert check_docs.github_slug("Runbook: *stuck* intents (`in_flight`)") == (
        "runbook-stuck-intents-in_flight"
    )
    assert check_docs.github_slug("[Replay](x.md) & approve") == "replay--approve"


def test_the_repository_docs_resolve():
    files = [ROOT / "README.md", *sorted(ROOT.glob("docs/*.md"))]
    assert [p for f in files for p in check_docs.broken_links(f)] == []
