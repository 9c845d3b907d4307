"""The NATS bus's dead letters: the JetStream stream `<stream>_DLQ`, one message each.

`NatsBus.dead` publishes the message with its reason to this stream (subject
`<prefix>.dlq`), then terminates it in the log; `replay_dead` republishes the dead letters
to the log and then deletes them here (after the republish: nothing is lost between the
two). The headers carry what the `DeadLetter` port value reports: Isthmus-Msg-Id, -Topic,
-Key, -Reason (URL-quoted), -Attempts and -Failed-At; `Nats-Msg-Id` is
`<msg_id>#dead-<seq>`, so a second publish of one dead delivery is a duplicate.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import quote, unquote

import nats.js.errors
from nats.js.client import JetStreamContext

from isthmus.bus.ports import DeadLetter


def quoted(text: str) -> str:
    """A header value: the text URL-quoted (headers carry no newlines nor non-ASCII)."""
    return quote(text, safe="")


class DeadLetterStream:
    """The dead-letter stream `name` on `subject`, through a JetStream context."""

    def __init__(self, js: JetStreamContext, name: str, subject: str) -> None:
        self._js, self.name, self.subject = js, name, subject

    async def put(
        self,
        data: bytes,
        *,
        seq: int,
        msg_id: str,
        key: str,
        topic: str,
        reason: str,
        attempts: int,
        now: float,
    ) -> None:
        """Publish one dead delivery (stream sequence `seq` in the log) with its reason."""
        headers = {
            "Nats-Msg-Id": f"{quoted(msg_id)}#dead-{seq}",
            "Isthmus-Msg-Id": quoted(msg_id),
            "Isthmus-Key": quoted(key),
            "Isthmus-Topic": quoted(topic),
            "Isthmus-Reason": quoted(reason[:2000]),
            "Isthmus-Attempts": str(attempts),
            "Isthmus-Failed-At": repr(now),
        }
        await self._js.publish(self.subject, data, headers=headers)

    async def read(self, limit: int) -> list[DeadLetter]:
        """The first `limit` dead letters, in stream order."""
        out: list[Any] = []
        seq = 1
        while len(out) < limit:
            try:
                raw = await self._js.get_msg(self.name, seq, subject=self.subject, next=True)
            except nats.js.errors.NotFoundError:
                break
            out.append(raw)
            seq = (raw.seq or seq) + 1
        return _dead_letters(out)

    async def delete(self, seq: int) -> None:
        """Remove one dead letter (replayed)."""
        await self._js.delete_msg(self.name, seq)


def _dead_letters(raws: list[Any]) -> list[DeadLetter]:
    out = []
    for raw in raws:
        h = raw.headers or {}
        out.append(
            DeadLetter(
                raw.seq,
                unquote(h["Isthmus-Msg-Id"]),
                unquote(h["Isthmus-Topic"]),
                unquote(h["Isthmus-Key"]),
                int(h["Isthmus-Attempts"]),
                unquote(h["Isthmus-Reason"]),
                float(h["Isthmus-Failed-At"]),
                raw.data or b"",
            )
        )
    return out
