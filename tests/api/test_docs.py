"""docs/api.md keeps up with the API: every endpoint and every problem code has an example."""

from __future__ import annotations

import re
from pathlib import Path

from django.conf import settings

from portal.api.problems import CATALOGUE

DOC = Path(settings.BASE_DIR) / "docs" / "api.md"


def test_every_problem_code_has_a_section_with_an_example():
    text = DOC.read_text()
    for code, kind in CATALOGUE.items():
        heading = f"### {kind.status} `{code}`"
        assert heading in text, heading
        section = text.split(heading, 1)[1].split("\n### ", 1)[0]
        assert f'"code": "{code}"' in section, code
        assert f'"title": "{kind.title}"' in section, code


def test_every_endpoint_has_a_curl_example():
    text = DOC.read_text()
    curl_lines = [line for line in text.splitlines() if "curl " in line]
    for pattern in [
        r"-X POST \$BASE/intents\b",
        r"curl -s \$BASE/intents/[0-9a-f-]{36} ",
        r"\$BASE/intents\?",
        r"/attempts",
        r"-X POST \$BASE/intents/\S+/cancel",
        r"\$BASE/targets",
        r"\$BASE/schema",
    ]:
        assert any(re.search(pattern, line) for line in curl_lines), pattern
