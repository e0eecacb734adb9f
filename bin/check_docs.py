#!/usr/bin/env python
"""Every relative link and anchor in README.md and docs/*.md must resolve.

Checks ``[text](target)`` and ``![alt](target)`` links and reference definitions
(``[name]: target``) that are not absolute URLs: the file must exist in the checkout,
and a ``#fragment`` must name a heading of that file as GitHub renders it (lowercase,
punctuation dropped, spaces to hyphens, ``-1``, ``-2`` … for repeats). Code spans and
fenced code blocks are skipped. Prints one line per broken link; exit 1 if any.

Usage: bin/check_docs.py [FILE ...]   (default: README.md docs/*.md)
"""

from __future__ import annotations

import re
import sys
from functools import cache
from pathlib import Path
from urllib.parse import unquote

ROOT = Path(__file__).resolve().parent.parent
INLINE_LINK = re.compile(r"!?\[(?:[^\]\\]|\\.)*\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)")
REFERENCE_DEFINITION = re.compile(r"^\s{0,3}\[[^\]]+\]:\s*<?(\S+?)>?(?:\s+\"[^\"]*\")?\s*$")
HEADING = re.compile(r"^\s{0,3}(#{1,6})\s+(.*?)\s*#*\s*$")
FENCE = re.compile(r"^\s{0,3}(```|~~~)")
CODE_SPAN = re.compile(r"(`+)(?:(?!\1).)+\1")
EXTERNAL = re.compile(r"^(?:[a-z][a-z0-9+.-]*:|//)", re.IGNORECASE)


def prose_lines(text: str) -> list[tuple[int, str]]:
    """(line number, line) outside fenced code blocks, with code spans blanked."""
    lines: list[tuple[int, str]] = []
    fence: str | None = None
    for number, line in enumerate(text.splitlines(), start=1):
        match = FENCE.match(line)
        if match:
            marker = match.group(1)
            if fence is None:
                fence = marker
            elif marker == fence:
                fence = None
            continue
        if fence is None:
            lines.append((number, CODE_SPAN.sub("", line)))
    return lines


def github_slug(heading: str) -> str:
    """The anchor GitHub gives a heading's text."""
    text = re.sub(r"!?\[([^\]]*)\]\([^)]*\)", r"\1", heading)  # a link: its text
    text = re.sub(r"[*`]", "", text).strip().lower()  # emphasis and code marks
    text = re.sub(r"[^\w\- ]", "", text)  # \w keeps letters and digits of any script
    return text.replace(" ", "-")


@cache
def anchors_of(path: Path) -> frozenset[str]:
    seen: dict[str, int] = {}
    anchors: set[str] = set()
    for _, line in prose_lines(path.read_text(encoding="utf-8")):
        match = HEADING.match(line)
        if not match:
            continue
        slug = github_slug(match.group(2))
        count = seen.get(slug, 0)
        seen[slug] = count + 1
        anchors.add(slug if count == 0 else f"{slug}-{count}")
    return frozenset(anchors)


def link_targets(path: Path) -> list[tuple[int, str]]:
    targets: list[tuple[int, str]] = []
    for number, line in prose_lines(path.read_text(encoding="utf-8")):
        targets += [(number, m.group(1)) for m in INLINE_LINK.finditer(line)]
        definition = REFERENCE_DEFINITION.match(line)
        if definition:
            targets.append((number, definition.group(1)))
    return targets


def broken_links(path: Path, *, root: Path = ROOT) -> list[str]:
    problems: list[str] = []
    shown = path.relative_to(root) if path.is_relative_to(root) else path
    for number, target in link_targets(path):
        if EXTERNAL.match(target):
            continue
        file_part, _, fragment = target.partition("#")
        linked = (path.parent / unquote(file_part)).resolve() if file_part else path
        if not linked.exists():
            problems.append(f"{shown}:{number}: {target}: no such file")
            continue
        if not linked.is_relative_to(root):
            problems.append(f"{shown}:{number}: {target}: points outside the repository")
            continue
        if fragment and linked.suffix == ".md" and unquote(fragment) not in anchors_of(linked):
            problems.append(f"{shown}:{number}: {target}: no heading #{fragment} in {linked.name}")
    return problems


def main(argv: list[str]) -> int:
    files = [Path(a).resolve() for a in argv] or [
        ROOT / "README.md",
        *sorted(ROOT.glob("docs/*.md")),
    ]
    problems = [p for path in files for p in broken_links(path)]
    for problem in problems:
        print(problem)
    checked = sum(len(link_targets(path)) for path in files)
    if problems:
        print(f"docs: {len(problems)} broken link(s) in {len(files)} files", file=sys.stderr)
        return 1
    print(f"docs: {checked} links in {len(files)} files resolve")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
