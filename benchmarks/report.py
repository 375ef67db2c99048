"""Writing benchmark results (JSON with config, git revision and machine) and README tables."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from agents.split_benchmark import records
from agents.split_benchmark.records import git_revision, machine, markdown_table, provenance

__all__ = [
    "DOCUMENTS",
    "README",
    "RESULTS_DIR",
    "git_revision",
    "load_result",
    "machine",
    "markdown_table",
    "provenance",
    "replace_readme_section",
    "write_record",
    "write_result",
]

RESULTS_DIR = Path(__file__).resolve().parent / "results"
README = Path(__file__).resolve().parent.parent / "README.md"
#: The documents whose measured tables ``make bench`` rewrites: the manual, and every figure.
DOCUMENTS = (README, README.parent / "docs" / "RESULTS.md")


def load_result(name: str) -> dict[str, Any]:
    """The record written by :func:`write_result`."""
    result: dict[str, Any] = json.loads((RESULTS_DIR / f"{name}.json").read_text())
    return result


def replace_readme_section(name: str, markdown: str, readme: Path | None = None) -> None:
    """Replace the text between ``<!-- bench:name -->`` and ``<!-- /bench:name -->`` in
    ``readme``, or else in whichever of the README and ``docs/RESULTS.md`` holds the section."""
    pattern = re.compile(rf"(<!-- bench:{re.escape(name)} -->\n).*?(<!-- /bench:{re.escape(name)} -->)", re.S)
    for document in (readme,) if readme else DOCUMENTS:
        text = document.read_text()
        if pattern.search(text):
            filled = pattern.sub(lambda m: m.group(1) + markdown.rstrip() + "\n" + m.group(2), text)
            document.write_text(filled)
            return
    raise ValueError(f"no '<!-- bench:{name} -->' section to fill in the README or docs/RESULTS.md")


def write_result(name: str, config: Any, figures: dict[str, Any], directory: Path = RESULTS_DIR) -> Path:
    """:func:`agents.split_benchmark.records.write_result`, into ``benchmarks/results`` by default."""
    return records.write_result(name, config, figures, directory)


def write_record(name: str, record: dict[str, Any], directory: Path = RESULTS_DIR) -> Path:
    """:func:`agents.split_benchmark.records.write_record`, into ``benchmarks/results`` by default."""
    return records.write_record(name, record, directory)
