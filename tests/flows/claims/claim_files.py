"""Clean 837 files for the claim tests: corpus claims with their sample NPIs made valid."""

from __future__ import annotations

from tests.formats.x12.x12_corpus import corpus_files


def corpus_text(name: str) -> str:
    text = next(p for p in corpus_files("837_*/*") if p.name == name).read_text()
    return text.replace("~\n", "~")  # one line: tests replace across segments


def professional() -> str:
    """demo.example1.837 (837P, claim 26463774, 4 lines, 100.00): passes every edit."""
    return corpus_text("demo.example1.837")


def institutional() -> str:
    """two-claims-single-provider.837i (837I, 756048Q and 756049Q) with valid NPIs."""
    return (
        corpus_text("two-claims-single-provider.837i")
        .replace("1234567890", "1234567893")
        .replace("9999999999", "1234567893")
    )
