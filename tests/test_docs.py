"""The README's configuration table lists exactly the settings the code reads."""

from __future__ import annotations

import re
from pathlib import Path

from agentroster.settings import Settings


def test_readme_configuration_table_matches_settings(repo_root: Path) -> None:
    """Every AGENTROSTER_* setting is documented with its default, and nothing else is."""
    readme = (repo_root / "README.md").read_text()
    rows = dict(re.findall(r"^\| `AGENTROSTER_([A-Z_]+)` \| `([^`]*)` \|", readme, re.MULTILINE))
    expected = {name.upper(): str(field.default) for name, field in Settings.model_fields.items()}
    assert rows == expected
