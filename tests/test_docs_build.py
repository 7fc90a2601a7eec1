"""The documentation site builds (``mkdocs build --strict``, the tutorials' code executed) and
every page of its navigation is there with its headings (issue 10, "the docs build, with their
tutorials executed, in a slow test").

Strict mode turns every warning into a failure: a tutorial block that raises, a broken link, an
API reference to a name that no longer exists. Needs the ``docs`` extra (``make docs`` or
``make test-slow`` installs it).
"""

from __future__ import annotations

import html
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"

pytestmark = pytest.mark.slow


def _nav_pages() -> list[str]:
    """The Markdown files the navigation lists (``- Title: path.md`` lines of mkdocs.yml)."""
    text = (ROOT / "mkdocs.yml").read_text(encoding="utf-8")
    nav = text[text.index("\nnav:"):]
    return re.findall(r":\s*([\w/]+\.md)\s*$", nav, re.M)


def _headings(markdown: str) -> list[str]:
    """The ATX headings outside fenced code blocks, as plain text."""
    without_code = re.sub(r"^```.*?^```", "", markdown, flags=re.M | re.S)
    found = []
    for _level, title in re.findall(r"^(#{1,4})\s+(.+?)\s*#*\s*$", without_code, re.M):
        plain = re.sub(r"`([^`]*)`", r"\1", title)                 # inline code
        plain = re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", plain)     # links
        plain = re.sub(r"\*{1,2}([^*]+)\*{1,2}", r"\1", plain)     # emphasis (not snake_case)
        found.append(plain)
    return found


def _page_text(page_html: str) -> str:
    """The page's text without tags and without any whitespace (inline markup such as
    ``<code>`` or a highlighted signature splits words with tags and spaces)."""
    return re.sub(r"\s+", "", html.unescape(re.sub(r"<[^>]+>", "", page_html)))


def test_nav_lists_every_docs_page() -> None:
    listed = set(_nav_pages())
    present = {str(p.relative_to(DOCS)) for p in DOCS.rglob("*.md")}
    assert present - listed == set(), "pages missing from mkdocs.yml's nav"
    assert listed - present == set(), "nav entries without a page"


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("site")
    env = {**os.environ, "MPLBACKEND": "Agg", "NO_MKDOCS_2_WARNING": "1"}
    run = subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict",
                          "--site-dir", str(out)],
                         cwd=ROOT, env=env, capture_output=True, text=True, timeout=1800)
    assert run.returncode == 0, f"mkdocs build --strict failed:\n{run.stderr[-6000:]}"
    return out


@pytest.mark.parametrize("page", _nav_pages())
def test_page_built_with_its_headings(site: Path, page: str) -> None:
    target = site / ("index.html" if page == "index.md" else
                     str(Path(page).with_suffix("")) + "/index.html")
    assert target.exists(), f"{page} was not built"
    text = _page_text(target.read_text(encoding="utf-8"))
    for heading in _headings((DOCS / page).read_text(encoding="utf-8")):
        assert _page_text(heading) in text, f"{page}: heading {heading!r} not on the page"


def test_tutorials_show_their_output(site: Path) -> None:
    # markdown-exec puts a block's printed output after its source: the summaries' lines are
    # there, so the code ran at build time rather than being shown as text
    hsb = _page_text((site / "tutorials/model_building/index.html").read_text("utf-8"))
    assert _page_text("Number of obs: 7185, groups:  school, 160") in hsb
    growth = _page_text((site / "tutorials/growth_curves/index.html").read_text("utf-8"))
    assert _page_text("Number of obs: 180, groups:  Subject, 18") in growth


def test_api_reference_documents_the_entry_points(site: Path) -> None:
    fitting = _page_text((site / "api/fitting/index.html").read_text("utf-8"))
    for name in ["lmer", "glmer", "lme", "gls", "nlme"]:
        assert f"{name}(formula" in fitting or f"{name}(model" in fitting, (
            f"api/fitting: no signature of {name}")
    assert _page_text("Fit a linear mixed model, as lme4's") in fitting   # its docstring


def test_site_loads_nothing_from_the_network(site: Path) -> None:
    # the site must work offline: no script, stylesheet, font or image from another host
    for page in site.rglob("*.html"):
        text = page.read_text(encoding="utf-8")
        remote = re.findall(r'<(?:script|link|img)[^>]+(?:src|href)="(https?://[^"]+)"', text)
        assert remote == [], f"{page.relative_to(site)} loads {remote[:3]}"
    for sheet in site.rglob("*.css"):
        assert not re.search(r"@import\s+url\(['\"]?https?://", sheet.read_text("utf-8")), sheet
