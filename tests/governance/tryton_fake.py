"""A recording Tryton JSON-RPC endpoint (httpx.MockTransport), not a test module.

Answers what `connectors.erp_tryton.TrytonErp.post_batch` asks (login, preferences, the
company, the chart, cost centers, journal, periods, moves) and keeps every request body,
so a test can scan exactly what the Tryton adapter would send over the wire.
"""

from __future__ import annotations

import json
from typing import Any

import httpx

from isthmus.connectors.erp_rpc import TrytonRpc
from isthmus.connectors.erp_tryton import TrytonErp

_FAR = (
    {"__class__": "date", "year": 2000, "month": 1, "day": 1},
    {"__class__": "date", "year": 2100, "month": 12, "day": 31},
)


class RecordingTryton:
    def __init__(self, accounts: list[str], cost_centers: list[str]) -> None:
        self.accounts, self.cost_centers = accounts, cost_centers
        self.bodies: list[bytes] = []
        self.created = 0

    def _result(self, method: str, params: list[Any]) -> Any:
        if method == "common.db.login":
            return [1, "session"]
        answers: dict[str, Any] = {
            "model.res.user.get_preferences": {"company": 1},
            "model.company.company.read": [{"id": 1, "currency.": {"code": "USD"}}],
            "model.account.account.search_read": [
                {"id": i, "code": c} for i, c in enumerate(self.accounts, 1)
            ],
            "model.analytic_account.account.search_read": [
                {"id": i, "code": c} for i, c in enumerate(self.cost_centers, 1)
            ],
            "model.account.journal.search_read": [{"id": 1}],
            "model.account.period.search_read": [
                {"id": 1, "start_date": _FAR[0], "end_date": _FAR[1], "state": "open"}
            ],
            "model.account.move.search_read": [],
            "model.account.move.post": None,
        }
        if method == "model.account.move.create":
            self.created += len(params[0])
            return list(range(1, len(params[0]) + 1))
        return answers[method]

    def handle(self, request: httpx.Request) -> httpx.Response:
        body = request.content
        self.bodies.append(body)
        call = json.loads(body)
        return httpx.Response(
            200, json={"id": call["id"], "result": self._result(call["method"], call["params"])}
        )

    def erp(self) -> TrytonErp:
        rpc = TrytonRpc(
            "http://tryton.test",
            "db",
            "admin",
            "secret-pw",
            transport=httpx.MockTransport(self.handle),
        )
        return TrytonErp(rpc, journal="HUB")

    def sent(self) -> str:
        return "\n".join(b.decode("utf-8", "replace") for b in self.bodies)
