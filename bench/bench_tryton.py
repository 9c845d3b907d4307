"""The hub's drain rate into Tryton against Tryton's own batched create+post, same run.

One trytond (SQLite) serves two fresh copies of the hub's template database. The same
journal entries (charges over a week, 4 revenue accounts x cost centers x 2 companies, one
credit in six) go:
  hub    store -> seal_batches (summary or detailed) -> outbox -> Dispatcher ->
         ErpBatchSink -> TrytonErp: idempotency search, create (lines and analytic lines
         nested), post; timed from the first delivery to an empty outbox;
  peer   the same moves, as a Tryton client would send them in bulk: one
         `account.move.create` with nested lines and nested analytic lines, then one
         `account.move.post` per chunk (no idempotency check, no outbox).
Both numbers are move lines per second. The summarization ratio is charges in (journal
entries), journal lines in, ERP move lines out.

With --postgresql the two databases are PostgreSQL copies (CREATE DATABASE ... TEMPLATE)
of a template built once on the local server (postgres@127.0.0.1:5432, trust auth) and
kept for later runs; the copies are dropped at the end.

Usage: .venv/test/bin/python bench/bench_tryton.py [--charges N] [--batch N]
           [--policy summary|detailed] [--template DIR] [--postgresql [URI]]
"""

from __future__ import annotations

import argparse
import glob
import os
import tempfile
import time
from datetime import date
from decimal import Decimal
from pathlib import Path
from typing import Any

from isthmus.connectors.erp_ports import ErpBatchSink, move_specs
from isthmus.connectors.erp_tryton import TrytonErp
from isthmus.connectors.erp_tryton_server import TrytonServer, TrytonSite, default_bin_dir
from isthmus.connectors.erp_tryton_setup import (
    _pg,
    build_database,
    copy_database,
    database_exists,
    drop_database,
)
from isthmus.demo.chart import demo_mappings
from isthmus.flows.export import Dispatcher, seal_batches
from isthmus.flows.retry import RetryPolicy
from isthmus.ledger.batch import JournalBatch
from isthmus.ledger.journal import Dimensions, JournalEntry, cr, dr
from isthmus.store.sqlite import SqliteStore

REVENUE = {"4100": "CC-4100", "4200": "CC-4200", "4300": "CC-4300", "4600": "CC-4600"}
TEMPLATE = "isthmus_template"


def entries(n: int) -> list[JournalEntry]:
    out = []
    accounts = sorted(REVENUE)
    for i in range(n):
        acct = accounts[i % 4]
        day = date(2026, 11, 2 + i % 7)
        dims = Dimensions(
            company=("C100", "C200")[i % 2],
            cost_center=REVENUE[acct],
            service_line="Imaging",
            account_token=f"tok{i % 97}",
        )
        amount = Decimal(f"{17 + (i * 7) % 900}.{i % 100:02d}")
        lines = (dr("1200", amount, "USD", dims), cr(acct, amount, "USD", dims))
        if i % 6 == 5:
            lines = (cr("1200", amount, "USD", dims), dr(acct, amount, "USD", dims))
        out.append(
            JournalEntry(
                entry_key=f"b{i}",
                posted_on=day,
                period="2026-11",
                channel="mllp",
                memo="charge",
                lines=lines,
                correlation_id=f"mllp/{i}",
                causation_id=f"ev{i}",
            )
        )
    return out


def template_dir(given: Path | None) -> Path:
    if given:
        return given
    cached = [
        Path(p).parent
        for p in glob.glob(f"{tempfile.gettempdir()}/isthmus-tryton-*/template.ready")
    ]
    if cached:
        return cached[0]
    site = TrytonSite(Path(tempfile.mkdtemp(prefix="isthmus-bench-tryton-")), default_bin_dir())
    centers = {cc: cc for cc in set(demo_mappings().department_cost_center.values())}
    build_database(site, TEMPLATE, cost_centers=centers, progress=print)
    return site.data_dir


PG_TEMPLATE = "isthmus_bench_tpl"


def pg_site(uri: str, work: Path) -> TrytonSite:
    """A PostgreSQL site whose template exists (built once, ~95 s)."""
    site = TrytonSite(work, default_bin_dir(), uri=uri)
    if not database_exists(site, PG_TEMPLATE):
        centers = {cc: cc for cc in set(demo_mappings().department_cost_center.values())}
        build_database(site, f"{PG_TEMPLATE}_wip", cost_centers=centers, progress=print)
        _pg(site, f'ALTER DATABASE "{PG_TEMPLATE}_wip" RENAME TO "{PG_TEMPLATE}"')
    return site


def hub_drain(
    erp: TrytonErp, store: SqliteStore, policy: str, batch_size: int
) -> tuple[float, list[JournalBatch]]:
    batches = seal_batches(
        store, policy_of=lambda _c: policy, max_entries=batch_size, now=time.time()
    )
    d = Dispatcher(store, ErpBatchSink(erp), RetryPolicy())
    t0 = time.perf_counter()
    while d.run_once(time.time()):
        pass
    elapsed = time.perf_counter() - t0
    left = [o for o in store.outbox_items() if o.status != "sent"]
    assert not left, f"{len(left)} outbox rows not sent"
    return elapsed, batches


def peer_post(erp: TrytonErp, batches: list[JournalBatch]) -> float:
    """Tryton's own bulk path: nested create (lines + analytic lines), then post."""
    erp._load()
    chunks: list[list[dict[str, Any]]] = []
    for b in batches:
        moves = []
        for spec in move_specs(b):
            values = erp._move_values(spec)  # lines with nested analytic lines
            values["description"] = "peer:" + values["description"]
            moves.append(values)
        chunks.append(moves)
    t0 = time.perf_counter()
    for moves in chunks:
        ids = erp.rpc.model("account.move", "create", moves)
        erp.rpc.model("account.move", "post", ids)
    return time.perf_counter() - t0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--charges", type=int, default=5000)
    ap.add_argument("--batch", type=int, default=1000, help="journal entries per batch")
    ap.add_argument("--policy", choices=["summary", "detailed"], default="detailed")
    ap.add_argument("--template", type=Path)
    ap.add_argument(
        "--postgresql",
        nargs="?",
        const="postgresql://postgres@127.0.0.1:5432/",
        help="Tryton on PostgreSQL (URI of the server, default local)",
    )
    args = ap.parse_args()
    work = Path(tempfile.mkdtemp(prefix="isthmus-bench-"))
    names = ["hub", "peer"]
    if args.postgresql:
        site = pg_site(args.postgresql, work)
        names = [f"isthmus_bench_{os.getpid()}_{n}" for n in names]
        for name in names:
            copy_database(site, PG_TEMPLATE, name)
    else:
        tdir = template_dir(args.template)
        site = TrytonSite(work, default_bin_dir())
        for name in names:
            copy_database(site, TEMPLATE, name, source=tdir)
    server = TrytonServer(site, names)
    server.start()
    print(f"Tryton backend: {'PostgreSQL' if args.postgresql else 'SQLite'}")
    try:
        store = SqliteStore(work / "store.db", synchronous="NORMAL")
        es = entries(args.charges)
        with store.transaction() as tx:
            for e in es:
                tx.insert_entry(e)
        hub = TrytonErp(server.rpc(names[0], timeout_s=600), journal="HUB")
        peer = TrytonErp(server.rpc(names[1], timeout_s=600), journal="HUB")
        hub._load()
        hub_s, batches = hub_drain(hub, store, args.policy, args.batch)
        peer_s = peer_post(peer, batches)
        lines_out = sum(len(b.lines) for b in batches)
        moves = sum(len(move_specs(b)) for b in batches)
        assert hub.balances("2026-11") == {k: v for k, v in peer.balances("2026-11").items()}, (
            "hub and peer differ"
        )
        journal_lines = sum(len(e.lines) for e in es)
        print(
            f"policy {args.policy}: {args.charges} charges in, {journal_lines} journal "
            f"lines, {lines_out} ERP move lines out in {moves} moves / {len(batches)} "
            f"batches (summarization {journal_lines / lines_out:.1f}:1)"
        )
        print(
            f"hub  drain into Tryton  {hub_s:7.2f} s  {lines_out / hub_s:8.0f} lines/s  "
            f"{args.charges / hub_s:8.0f} charges/s  ({hub.rpc.calls} RPC calls total)"
        )
        print(f"peer create+post        {peer_s:7.2f} s  {lines_out / peer_s:8.0f} lines/s")
        print(f"hub / peer: {peer_s / hub_s:.0%}")
        store.close()
    finally:
        server.stop()
        if args.postgresql:
            for name in names:
                drop_database(site, name)


if __name__ == "__main__":
    main()
