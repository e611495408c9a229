"""The documentation: the README is a landing page whose set-up commands CI reads, and docs/ is a
mkdocs site that builds strictly, whose relative links all resolve, and that holds the design and
facts documents the code cites (docs/design.md, docs/facts.md)."""

from __future__ import annotations

import importlib.util
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
DOCS = ROOT / "docs"

# [text](target); look-alikes inside code fences and code spans are not links.
_LINK = re.compile(r"\[[^\]]*\]\(([^)\s]+)(?:\s+\"[^\"]*\")?\)")
_FENCE = re.compile(r"^```.*?^```", re.S | re.M)


def _markdown_files() -> list[Path]:
    return [README, *sorted(DOCS.rglob("*.md"))]


def _relative_links(path: Path) -> list[str]:
    text = _FENCE.sub("", path.read_text(encoding="utf-8"))
    text = re.sub(r"`[^`\n]*`", "", text)
    links = []
    for target in _LINK.findall(text):
        if re.match(r"^[a-z][a-z0-9+.-]*:", target) or target.startswith("#"):
            continue  # http:, https:, mailto:, in-page anchors
        links.append(target.split("#", 1)[0])
    return links


@pytest.mark.skipif(
    importlib.util.find_spec("mkdocs") is None or importlib.util.find_spec("material") is None,
    reason="mkdocs and mkdocs-material are in the test extra",
)
def test_mkdocs_builds_strictly(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(tmp_path / "site")],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "NO_MKDOCS_2_WARNING": "1"},
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert (tmp_path / "site" / "index.html").is_file()


def test_readme_is_a_landing_page_with_the_ci_commands() -> None:
    text = README.read_text(encoding="utf-8")
    assert len(text) < 12_500, f"README.md has {len(text)} characters; move detail into docs/"
    for marker in ("main-command", "test-command"):
        block = re.search(rf"<!-- {marker} -->\n```\n(.*?)\n```\n<!-- /{marker} -->", text, re.S)
        assert block, f"README.md must keep the {marker} markers around one fenced command"
        lines = [line for line in block.group(1).splitlines() if line.strip()]
        assert len(lines) == 1, f"{marker}: CI reads exactly one command line"
    assert "optieval --version" in text


@pytest.mark.parametrize("path", _markdown_files(), ids=lambda p: str(p.relative_to(ROOT)))
def test_relative_links_resolve(path: Path) -> None:
    missing = [t for t in _relative_links(path) if t and not (path.parent / t).exists()]
    assert missing == [], f"{path.relative_to(ROOT)} links to missing files: {missing}"


def test_documents_the_code_cites_exist() -> None:
    design = (DOCS / "design.md").read_text(encoding="utf-8")
    for section in ("## Data flow", "## Layout", "## Key decisions", "## Names", "## Exit codes"):
        assert section in design, f"docs/design.md lost its section {section!r}"
    for decision in range(1, 7):
        assert re.search(rf"^{decision}\. \*\*", design, re.M), f"decision {decision} missing"
    facts = (DOCS / "facts.md").read_text(encoding="utf-8")
    for section in ("## TensorRT", "## ONNX Runtime", "## torch.onnx", "## CUDA timing"):
        assert section in facts, f"docs/facts.md lost its section {section!r}"


def test_code_cites_only_documents_inside_the_repository() -> None:
    offenders = [
        str(path.relative_to(ROOT))
        for path in sorted((ROOT / "optieval").rglob("*"))
        if path.is_file()
        and path.suffix in {".py", ".toml", ".md", ".txt"}
        and re.search(r"(?<!docs/)\b(DESIGN|FACTS)\.md", path.read_text(encoding="utf-8"))
    ]
    assert offenders == [], f"cite docs/design.md or docs/facts.md instead: {offenders}"
