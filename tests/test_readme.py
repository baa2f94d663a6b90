"""The README stays a short page for users, and what it and the docs say matches the code."""

from __future__ import annotations

import re
from pathlib import Path
from urllib.parse import unquote, urlparse

from app.settings import Settings

REPO = Path(__file__).resolve().parents[1]
README = (REPO / "README.md").read_text()
OPERATIONS = (REPO / "docs" / "operations" / "index.md").read_text()
SETTINGS = {f"SENTIMENT_{name.upper()}" for name in Settings.model_fields}
# a markdown link or image: [text](target) or ![alt](target)
LINK = re.compile(r"!?\[[^\]]*\]\(([^)\s]+)\)")


def section(markdown: str, heading: str) -> str:
    """The text under ``## heading`` up to the next heading of that level."""
    start = markdown.index(f"\n## {heading}\n")
    end = markdown.find("\n## ", start + 1)
    return markdown[start : end if end != -1 else len(markdown)]


def test_the_readme_fits_in_twelve_kilobytes() -> None:
    assert len(README.encode()) <= 12_288


def test_every_setting_is_in_both_settings_tables_and_no_other() -> None:
    for name, markdown in (("README.md", README), ("docs/operations/index.md", OPERATIONS)):
        documented = set(re.findall(r"`(SENTIMENT_[A-Z_]+)`", section(markdown, "Settings")))
        assert SETTINGS - documented == set(), f"settings missing from {name}'s table"
        assert documented - SETTINGS == set(), f"{name}'s table names settings the service does not read"
        mentioned = set(re.findall(r"SENTIMENT_[A-Z_]+[A-Z]", markdown))
        assert mentioned <= SETTINGS, (name, mentioned - SETTINGS)


def test_every_relative_link_in_the_readme_resolves() -> None:
    targets = [target for target in LINK.findall(README) if not urlparse(target).scheme]
    assert targets, "the README links into the docs"
    for target in targets:
        path, _, anchor = target.partition("#")
        assert (REPO / unquote(path)).exists(), f"README links to {target}, which does not exist"
        if anchor and path.endswith(".md"):
            headings = re.findall(r"^#+ (.+)$", (REPO / path).read_text(), flags=re.MULTILINE)
            slugs = {re.sub(r"[^\w\- ]", "", h.lower()).strip().replace(" ", "-") for h in headings}
            assert anchor in slugs, f"README links to {target}: no such heading"


def test_the_readme_names_the_commands_a_user_runs() -> None:
    makefile = (REPO / "Makefile").read_text()
    for target in ("serve", "test", "train", "docs"):
        assert f"make {target}" in README
        assert re.search(rf"^{target}:", makefile, flags=re.MULTILINE), f"no make target {target}"
