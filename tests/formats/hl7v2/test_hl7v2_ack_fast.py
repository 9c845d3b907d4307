"""The AA the ACK path builds on its short way is, byte for byte, the one `build_ack`'s
general way writes (same second), for every message of the public corpus and for messages
whose header uses other delimiters and escapes."""

from __future__ import annotations

import time
from datetime import UTC, datetime

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from tests.formats.hl7v2.hl7v2_corpus import ENVELOPE, FILES, normalise

from isthmus.formats.hl7v2 import ack, parse_message
from isthmus.formats.hl7v2.errors import HL7ParseError


def corpus_messages() -> list[str]:
    """Each message of each corpus file, batch envelopes left out."""
    out = []
    for path in FILES:
        try:
            text = normalise(path.read_bytes())
        except UnicodeDecodeError:
            continue
        lines = [ln for ln in text.split("\r") if ln and ln[:3] not in ENVELOPE]
        starts = [i for i, ln in enumerate(lines) if ln.startswith("MSH")]
        out += [
            "\r".join(lines[a:b]) + "\r" for a, b in zip(starts, [*starts[1:], None], strict=True)
        ]
    return out


def _both(raw: bytes | str, monkeypatch: pytest.MonkeyPatch) -> tuple[bytes, bytes]:
    second = int(time.time())
    monkeypatch.setattr(ack.time, "time", lambda: float(second))
    msg = parse_message(raw)
    fast = ack.build_ack(msg, "AA")
    general = ack.build_ack(msg, "AA", now=datetime.fromtimestamp(second, UTC))
    return fast, general


def test_every_corpus_message_gets_the_same_aa_both_ways(monkeypatch: pytest.MonkeyPatch) -> None:
    seen = 0
    for raw in corpus_messages():
        try:
            fast, general = _both(raw, monkeypatch)
        except HL7ParseError:
            continue  # no Message: the general way answers it
        assert fast == general
        seen += 1
    assert seen > 50


_FIELD = st.text(alphabet="AB12 ^~\\&#|", max_size=12)


@given(
    app=_FIELD,
    control=_FIELD,
    trigger=_FIELD,
    version=st.sampled_from(["", "2.3"]),
    delimiters=st.sampled_from(["|^~\\&", "|^~\\&#", "#^~\\&"]),
)
@settings(max_examples=200)
def test_escaped_and_odd_headers_get_the_same_aa_both_ways(
    app: str, control: str, trigger: str, version: str, delimiters: str
) -> None:
    assume(control)  # without an MSH-10 the short way declines (a derived id has the time)
    fs, enc_chars = delimiters[0], delimiters[1:]

    def field(v: str) -> str:  # escaped as a sender would write it
        escapes = {
            "^": "\\S\\",
            "~": "\\R\\",
            "\\": "\\E\\",
            "&": "\\T\\",
            "#": "\\P\\" if "#" in enc_chars else "#",
            fs: "\\F\\",
        }
        return "".join(escapes.get(c, c) for c in v)

    raw = (
        fs.join(
            [
                "MSH",
                enc_chars,
                field(app),
                "FAC",
                "HUB",
                "HUB",
                "20261206120000",
                "",
                f"ADT^{field(trigger)}",
                field(control),
                "P",
                version,
            ]
        )
        + "\r"
    )
    with pytest.MonkeyPatch.context() as mp:
        try:
            fast, general = _both(raw, mp)
        except HL7ParseError:
            return
    assert fast == general
