"""The README's "Analytics glossary" defines every KPI of the reports, opening with the table's tooltip."""

from __future__ import annotations

import re
from pathlib import Path

from analytics.reports import KPI_LABELS, KPI_NAMES
from analytics.views import KPI_DEFINITIONS

README = Path(__file__).resolve().parents[2] / "README.md"
ENTRY = re.compile(r"^- \*\*`(?P<kpi>\w+)`\*\* \((?P<label>.+?)\): (?P<text>.*)$")


def glossary() -> dict[str, tuple[str, str]]:
    """{kpi: (label, definition)} from the README section, continuation lines joined."""
    section = README.read_text().split("\n## Analytics glossary\n", 1)[1].split("\n## ", 1)[0]
    entries: dict[str, tuple[str, str]] = {}
    current = None
    for line in section.splitlines():
        match = ENTRY.match(line)
        if match:
            current = match["kpi"]
            entries[current] = (match["label"], match["text"])
        elif current and line.startswith("  "):
            label, text = entries[current]
            entries[current] = (label, f"{text} {line.strip()}")
        else:
            current = None
    return entries


def test_every_kpi_has_exactly_one_glossary_entry_and_no_entry_is_stale():
    assert sorted(glossary()) == sorted(KPI_NAMES)


def test_each_entry_names_the_kpi_as_the_table_does_and_opens_with_its_tooltip():
    for kpi, (label, text) in glossary().items():
        assert label == KPI_LABELS[kpi]
        assert text.startswith(" ".join(KPI_DEFINITIONS[kpi].split())), kpi
