"""Shared helpers for the HL7 v2 tests: the corpus files and python-hl7 as a reference."""

from __future__ import annotations

import re
from pathlib import Path

import hl7

CORPUS = Path("/work/shared/corpora/hl7v2")
FILES = sorted(CORPUS.glob("*/*.hl7"))
ENVELOPE = ("FHS", "BHS", "BTS", "FTS")


def file_id(path: Path) -> str:
    return f"{path.parent.name}/{path.name}"


def normalise(data: bytes) -> str:
    """Independent of the code under test: UTF-8, no BOM, CR segment terminators."""
    text = data.decode("utf-8")
    text = text.removeprefix("\ufeff")
    return re.sub(r"\r\n|\n", "\r", text)


def reference_messages(text: str) -> list[hl7.Message]:
    """python-hl7's reading of a file: one message, or the messages of a batch/file."""
    names = {line[:3] for line in text.split("\r")}
    if names.isdisjoint(ENVELOPE) and text.count("\rMSH") == 0:
        return [hl7.parse(text)]
    parsed = hl7.parse_file(text)
    return [m for batch in parsed for m in batch]


def reference_tree(field: object) -> list[list[list[str]]]:
    """A python-hl7 Field as repetitions > components > subcomponents of raw strings."""
    assert isinstance(field, list)
    if len(field) == 1 and isinstance(field[0], str):
        return [] if field[0] == "" else [[[field[0]]]]
    reps: list[list[list[str]]] = []
    for rep in field:
        if isinstance(rep, str):
            reps.append([[rep]])
        elif len(rep) == 1 and isinstance(rep[0], str):
            reps.append([[rep[0]]])
        else:
            reps.append([[c] if isinstance(c, str) else [str(s) for s in c] for c in rep])
    return reps
