"""A small real HTTP ERP for the REST adapter's tests (Starlette on uvicorn, a free port).

It speaks what `connectors/erp_rest.py` is configured for by default, and keeps one set of
books per tenant (the first path segment), so each test gets a fresh ERP from one server:
  POST /{t}/moves            one move (the default move template's JSON); needs the bearer
                             token and `Idempotency-Key` = the move's reference; 201, 409
                             for a reference it holds, 422 {"message"} for an unknown
                             account or cost center, a closed period or an unbalanced move
  GET  /{t}/moves?prefix=    {"references": [...]}
  GET  /{t}/balances?period= {"balances": [{account, cost_center, debit, credit}]}
  GET  /{t}/master-data      {accounts: [{code, name}], cost_centers: {...}, parties: {...}}
  POST /{t}/periods/{p}/close, POST /{t}/outage/{n}: answer 503 to the next n requests
"""

from __future__ import annotations

import contextlib
import threading
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from typing import Any

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from tests.e2e.helpers import free_port
from tests.support import wait_until

from isthmus.connectors.erp_tryton_setup import CHART, PARTIES

TOKEN = "stub-token-5f2c"


@dataclass
class Books:
    accounts: dict[str, str]
    cost_centers: dict[str, str]
    closed: set[str] = field(default_factory=set)
    moves: dict[str, dict[str, Any]] = field(default_factory=dict)
    outage: int = 0
    posts: int = 0


class StubErp:
    def __init__(self, cost_centers: dict[str, str]) -> None:
        self._centers = cost_centers
        self.books: dict[str, Books] = {}
        self._lock = threading.Lock()
        self.app = Starlette(
            routes=[
                Route("/{t}/moves", self.post, methods=["POST"]),
                Route("/{t}/moves", self.lookup, methods=["GET"]),
                Route("/{t}/balances", self.balances, methods=["GET"]),
                Route("/{t}/master-data", self.master_data, methods=["GET"]),
                Route("/{t}/periods/{p}/close", self.close_period, methods=["POST"]),
                Route("/{t}/outage/{n:int}", self.set_outage, methods=["POST"]),
            ]
        )

    def tenant(self, t: str) -> Books:
        with self._lock:
            if t not in self.books:
                self.books[t] = Books({c: n for c, (n, _k) in CHART.items()}, dict(self._centers))
            return self.books[t]

    def _gate(self, request: Request) -> tuple[Books, Response | None]:
        books = self.tenant(request.path_params["t"])
        if request.headers.get("authorization") != f"Bearer {TOKEN}":
            return books, JSONResponse({"message": "bad token"}, 401)
        if books.outage > 0:
            books.outage -= 1
            return books, JSONResponse({"message": "maintenance"}, 503)
        return books, None

    async def post(self, request: Request) -> Response:
        books, refused = self._gate(request)
        if refused:
            return refused
        move = await request.json()
        ref = move.get("reference", "")
        if request.headers.get("idempotency-key") != ref:
            return JSONResponse({"message": "Idempotency-Key must be the reference"}, 400)
        with self._lock:
            if ref in books.moves:
                return JSONResponse({"message": "already posted", "reference": ref}, 409)
            try:
                debit = sum((Decimal(x["debit"]) for x in move["lines"]), Decimal(0))
                credit = sum((Decimal(x["credit"]) for x in move["lines"]), Decimal(0))
            except (KeyError, TypeError, InvalidOperation):
                return JSONResponse({"message": "lines need debit and credit"}, 400)
            if move["date"][:7] in books.closed:
                return JSONResponse({"message": f"period {move['date'][:7]} is closed"}, 422)
            if debit != credit:
                return JSONResponse({"message": f"move {ref} is not balanced"}, 422)
            for x in move["lines"]:
                if x["account"] not in books.accounts:
                    return JSONResponse({"message": f"account {x['account']} does not exist"}, 422)
                if x["cost_center"] and x["cost_center"] not in books.cost_centers:
                    return JSONResponse(
                        {"message": f"cost center {x['cost_center']} does not exist"}, 422
                    )
            books.moves[ref] = move
            books.posts += 1
        return JSONResponse({"reference": ref, "id": len(books.moves)}, 201)

    async def lookup(self, request: Request) -> Response:
        books, refused = self._gate(request)
        if refused:
            return refused
        prefix = request.query_params.get("prefix", "")
        return JSONResponse({"references": sorted(r for r in books.moves if r.startswith(prefix))})

    async def balances(self, request: Request) -> Response:
        books, refused = self._gate(request)
        if refused:
            return refused
        period = request.query_params.get("period", "")
        out: dict[tuple[str, str], list[Decimal]] = {}
        for move in books.moves.values():
            if period and move["date"][:7] != period:
                continue
            for x in move["lines"]:
                dc = out.setdefault((x["account"], x["cost_center"]), [Decimal(0), Decimal(0)])
                dc[0] += Decimal(x["debit"])
                dc[1] += Decimal(x["credit"])
        return JSONResponse(
            {
                "balances": [
                    {"account": a, "cost_center": c, "debit": str(d), "credit": str(k)}
                    for (a, c), (d, k) in sorted(out.items())
                ]
            }
        )

    async def master_data(self, request: Request) -> Response:
        books, refused = self._gate(request)
        if refused:
            return refused
        return JSONResponse(
            {
                "accounts": [{"code": c, "name": n} for c, n in books.accounts.items()],
                "cost_centers": books.cost_centers,
                "parties": PARTIES,
            }
        )

    async def close_period(self, request: Request) -> Response:
        self.tenant(request.path_params["t"]).closed.add(request.path_params["p"])
        return Response(status_code=204)

    async def set_outage(self, request: Request) -> Response:
        self.tenant(request.path_params["t"]).outage = request.path_params["n"]
        return Response(status_code=204)


class _ThreadServer(uvicorn.Server):
    def capture_signals(self) -> contextlib.AbstractContextManager[None]:  # type: ignore[override]
        return contextlib.nullcontext()


class StubServer:
    """The stub on a free local port, in a thread."""

    def __init__(self, stub: StubErp) -> None:
        self.stub = stub
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self._server = _ThreadServer(
            uvicorn.Config(
                stub.app,
                host="127.0.0.1",
                port=self.port,
                log_level="warning",
                access_log=False,
                lifespan="off",
                ws="none",
                http="h11",
            )
        )
        self._thread = threading.Thread(target=self._server.run, daemon=True)

    def start(self) -> None:
        self._thread.start()
        wait_until(
            lambda: self._server.started or not self._thread.is_alive(),
            what="the REST ERP stub's server to start",
        )
        if not self._server.started:
            raise RuntimeError("the REST ERP stub did not start")

    def stop(self) -> None:
        self._server.should_exit = True
        self._thread.join(10)
