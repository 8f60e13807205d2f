"""The documentation site's wiring, without building it (``mkdocs build --strict`` runs as an example of
docs/setup.md, in tests/test_docs_examples.py).

- every page in docs/ is in mkdocs.yml's nav, and every page the nav names exists;
- the API reference has a page per public module, generated from its docstrings (``::: afm.NAME``);
- links that MkDocs does not check resolve: README.md's relative links (README is not part of the site), and the
  docs' links to repository files outside docs/, written from the repository root (``/benchmarks/...``), which
  mkdocs.yml leaves unvalidated (``absolute_links: info``).
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"
MKDOCS = ROOT / "mkdocs.yml"
PUBLIC_MODULES = (
    "model", "config", "train", "data", "datasets", "checkpoint", "explain", "summary", "attention", "faithfulness",
    "metrics", "plots", "cli",
)  # fmt: skip
LINK = re.compile(r"(?<!!)\[[^\]]*\]\(([^)\s]+)\)|!\[[^\]]*\]\(([^)\s]+)\)")


def nav_pages() -> list[str]:
    """The .md paths named in mkdocs.yml's nav (read as text: no YAML parser needed)."""
    text = MKDOCS.read_text()
    nav = text.split("\nnav:\n", 1)[1]
    nav = re.split(r"\n\S", nav, maxsplit=1)[0]  # up to the next top-level key
    return re.findall(r"([\w./-]+\.md)\s*$", nav, re.M)


def links(text: str) -> list[str]:
    prose = re.sub(r"^```.*?^```", "", text, flags=re.S | re.M)
    return [a or b for a, b in LINK.findall(prose)]


def test_every_page_is_in_the_nav_and_every_nav_entry_exists() -> None:
    pages = {p.relative_to(DOCS).as_posix() for p in DOCS.rglob("*.md")}
    named = nav_pages()
    assert len(named) == len(set(named)), "a page appears twice in the nav"
    assert set(named) == pages, f"not in the nav: {sorted(pages - set(named))}; missing: {sorted(set(named) - pages)}"


@pytest.mark.parametrize("module", PUBLIC_MODULES)
def test_the_api_reference_has_a_page_per_public_module(module: str) -> None:
    page = DOCS / "api" / f"{module}.md"
    assert page.is_file() and f"::: afm.{module}\n" in page.read_text()
    assert f"api/{module}.md" in nav_pages()
    assert (ROOT / "afm" / f"{module}.py").is_file()


def broken(text: str, base: Path) -> list[str]:
    """The links of ``text`` (a page in folder ``base``) that point at no file or folder: relative ones from
    ``base``, ones starting with "/" from the repository root. Web addresses and in-page anchors are skipped."""
    bad = []
    for target in links(text):
        if re.match(r"^[a-z]+:", target) or target.startswith("#"):
            continue
        file = target.split("#", 1)[0]
        if not (ROOT / file.lstrip("/") if file.startswith("/") else base / file).exists():
            bad.append(target)
    return bad


def test_readme_links_resolve() -> None:
    bad = broken((ROOT / "README.md").read_text(), ROOT)
    assert not bad, f"README.md links to nothing: {bad}"


def test_links_from_docs_to_repository_files_resolve() -> None:
    bad = [
        f"{page.relative_to(ROOT)}: {target}"
        for page in DOCS.rglob("*.md")
        for target in broken(page.read_text(), page.parent)
        if target.startswith("/")  # the relative ones are MkDocs' to check
    ]
    assert not bad, "links to repository files that do not exist:\n" + "\n".join(bad)


def test_the_link_check_can_fail() -> None:
    text = "[a](/no/such/file.md) [b](docs/setup.md#the-two-commands) [c](https://example.org) ![d](nothing.png)"
    assert broken(text, ROOT) == ["/no/such/file.md", "nothing.png"]
    assert broken("[x](/benchmarks/results/load/results.md) [y](setup.md)", DOCS) == []
