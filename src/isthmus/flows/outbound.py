"""The outbound hook (issue 18): what the worker and the refunds service call once a flow
has applied something, to queue the deliveries the routes ask for.

It runs inside the caller's transaction (the worker's savepoint of the event), so a
delivery is queued if and only if the effect that caused it commits: a transactional
outbox, per destination (`Tx.add_delivery`). It exists only when at least one route does
(app.py wires it), and it looks at an event only when a route could want it, so a hub
without routes pays nothing and one with routes pays for what they name.

Rendering (flows/routes.py) happens here, at queueing time: the delivery's body is fixed
once, so a retry or a resend sends the same bytes with the same idempotency key.
"""

from __future__ import annotations

import hashlib
import hmac
import time
from collections.abc import Callable, Iterable, Sequence
from typing import Any

import msgspec

from isthmus.flows.routes import Item, Rendered, Routing
from isthmus.flows.status_events import Derivation, derive
from isthmus.model.envelope import Envelope
from isthmus.model.status import StatusEvent
from isthmus.store.ports import StoredMessage, Tx

MessageOf = Callable[[str, str], StoredMessage | None]  # (channel, control id)


class Outbound:
    """Queues the deliveries the routes ask for, once a flow has applied something."""

    def __init__(
        self,
        routing: Routing,
        derivation: Derivation,
        *,
        message_of: MessageOf | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.routing, self.derivation = routing, derivation
        self._message_of, self._clock = message_of, clock
        self._status = routing.status_types
        self._canonical = routing.canonical_types
        self._sources = bool(routing.source_types) and message_of is not None
        self.queued = 0

    def key_of(self, key: str) -> str:
        """A delivery's ordering key: the bus key (a patient's authority|MRN, an account
        token) made opaque with the site's secret, so the order per key travels to the
        adapters (a NATS header, a template's `key`) and the MRN does not."""
        digest = hmac.new(self.derivation.secret.encode(), key.encode(), hashlib.sha256)
        return "K-" + digest.hexdigest()[:20]

    def on_applied(self, tx: Tx, env: Envelope, outcome: str) -> None:
        """The worker's hook, after the flow applied `env` with `outcome`."""
        if outcome == "duplicate":
            return
        if self._status:
            events = [
                e for e in derive(tx, env, outcome, self.derivation) if e.type in self._status
            ]
            if events:
                self.publish(tx, events)
        if env.type in self._canonical:
            self._queue(tx, self.routing.render(_canonical(env, self.key_of(env.key))))
        if self._sources:
            self._forward(tx, env)

    def publish(self, tx: Tx, events: Iterable[StatusEvent]) -> int:
        """Queue the deliveries of these status events; how many were new."""
        n = 0
        for e in events:
            if e.type in self._status:
                n += self._queue(
                    tx,
                    self.routing.render(
                        Item(
                            e.type,
                            self.key_of(e.key),
                            e.event_id,
                            e.occurred_at,
                            e.fields,
                            e.channel,
                        )
                    ),
                )
        return n

    def _forward(self, tx: Tx, env: Envelope) -> None:
        assert self._message_of is not None
        message = self._message_of(env.source.channel, env.source.control_id)
        if message is None or not message.raw:
            return
        item = Item(
            message.message_type,
            self.key_of(env.key),
            env.event_id,
            env.recorded_at,
            {"channel": message.channel, "message_type": message.message_type},
            message.channel,
            message.raw.decode("utf-8", "replace"),
            idempotency_key=f"source:{message.channel}:{message.control_id}",
        )
        self._queue(tx, self.routing.render_source(item))

    def _queue(self, tx: Tx, rendered: Sequence[Rendered]) -> int:
        n = 0
        now = self._clock()
        for r in rendered:
            n += tx.add_delivery(
                destination=r.destination,
                key=r.key,
                idempotency_key=r.idempotency_key,
                event_id=r.event_id,
                event_type=r.event_type,
                route=r.route,
                content_type=r.content_type,
                body=r.body,
                now=now,
            )
        self.queued += n
        return n


def _canonical(env: Envelope, key: str) -> Item:
    """A canonical event as a route item: its payload flattened to dotted string fields."""
    fields: dict[str, str] = {}

    def walk(prefix: str, value: Any) -> None:
        if isinstance(value, dict):
            for k, v in value.items():
                walk(f"{prefix}{k}.", v)
        elif isinstance(value, list):
            for i, v in enumerate(value):
                walk(f"{prefix}{i}.", v)
        elif value is not None:
            fields[prefix[:-1]] = str(value)

    walk("", msgspec.to_builtins(env.payload))
    fields.pop("type", None)
    return Item(env.type, key, env.event_id, env.occurred_at, fields, env.source.channel)
