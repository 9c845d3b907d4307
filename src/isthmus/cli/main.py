"""`isthmus` command line: serve, demo, ledger, messages, dlq, replay, workitems.

Every command takes --data-dir, --config and --json after its name (or ISTHMUS_DATA_DIR /
ISTHMUS_CONFIG) and exits non-zero on failure: 2 for a usage or configuration error, 3 when
what was asked for does not exist, 4 when a check fails (the ledger does not balance, the
audit chain is broken, an event contract broke, the store's schema is not at this
release's revision: `isthmus migrate`), 1 otherwise.
Errors are one line on stderr, never a traceback: any error of the tree (isthmus/errors.py)
exits with its family's `exit_code`, in one handler.
"""

from __future__ import annotations

import argparse
import asyncio
import functools
import json
import logging
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from isthmus import __version__, serve_checks
from isthmus.api.http import serve_http
from isthmus.app import Hub
from isthmus.cli import analytics as analytics_cli
from isthmus.cli import channels as channels_cli
from isthmus.cli import claims as claims_cli
from isthmus.cli import commands, config_check, datadir, security
from isthmus.cli import destinations as destinations_cli
from isthmus.cli import erp as erp_cli
from isthmus.cli import gate as gate_cli
from isthmus.cli import labor as labor_cli
from isthmus.cli import messages as messages_cli
from isthmus.cli import migrate as migrate_cli
from isthmus.cli import purge as purge_cli
from isthmus.cli import refunds as refunds_cli
from isthmus.cli import remits as remits_cli
from isthmus.cli import supply as supply_cli
from isthmus.cli import workitems as workitems_cli
from isthmus.config import Settings, load_settings
from isthmus.errors import IsthmusError, StorageUnavailable
from isthmus.observe import logs, tracing
from isthmus.ports.erp import ErpRejected, ErpUnavailable
from isthmus.runtime import serve_forever
from isthmus.store.migrations import SchemaNotCurrent


def _common(p: argparse.ArgumentParser) -> None:
    p.add_argument("--data-dir", type=Path, help="data directory (ISTHMUS_DATA_DIR)")
    p.add_argument("--config", type=Path, help="TOML config file (ISTHMUS_CONFIG)")
    p.add_argument("--json", action="store_true", help="machine-readable output")


def parser() -> argparse.ArgumentParser:
    """The `isthmus` argument parser, with every command and its options."""
    ap = argparse.ArgumentParser(prog="isthmus", description=__doc__.splitlines()[0])
    ap.add_argument("--version", action="version", version=f"isthmus {__version__}")
    sub = ap.add_subparsers(dest="cmd", required=True)

    def add(name: str, help_: str) -> argparse.ArgumentParser:
        p = sub.add_parser(name, help=help_)
        _common(p)
        return p

    s = add("serve", "run the hub: MLLP listener, HTTP API, workers, ERP export")
    s.add_argument("--mllp-port", type=int)
    s.add_argument("--http-port", type=int)
    s.add_argument(
        "--role",
        choices=["all", "listener", "worker", "api"],
        default="all",
        help="which parts this process runs (scale-out: several processes)",
    )
    s.add_argument(
        "--insecure",
        action="store_true",
        help="serve on a non-loopback address without TLS or without `isthmus "
        "init` (logged and audited; refused otherwise)",
    )
    mg = add("migrate", "create or upgrade the store's schema (PostgreSQL or SQLite)")
    mg.set_defaults(action="migrate")
    mg.add_argument(
        "--check",
        dest="action",
        action="store_const",
        const="check",
        help="change nothing; exit 4 when a migration is pending, 0 when current",
    )
    pu = add(
        "purge",
        "blank message bodies past the [retention] limits (lineage, journal and audit stay)",
    )
    pu.add_argument("--dry-run", action="store_true", help="count what would go; change nothing")
    d = add("demo", "run the hub and a simulated EHR day over real MLLP, then summarize")
    d.add_argument("--messages", type=int, default=2400)
    d.add_argument("--connections", type=int, default=4)
    d.add_argument("--seed", type=int, default=7)
    d.add_argument(
        "--erp",
        choices=["file", "tryton"],
        default="file",
        help="where the batches go: files (default) or a local Tryton (needs the tryton extra)",
    )
    led = add("ledger", "trial balance, journal, export")
    led.add_argument("action", choices=["trial-balance", "journal", "export"])
    led.add_argument("--limit", type=int, default=50)
    m = add("messages", "inbound messages and their lineage; release one refused message")
    m.add_argument("action", choices=["show", "list", "release"])
    m.add_argument(
        "ref",
        nargs="?",
        help="inbox id or correlation id "
        "(mllp/<MSH-3>^<MSH-4>:<MSH-10>, or mllp/<MSH-10> when one sender used it)",
    )
    m.add_argument("--reason", help="release: why this refusal is overridden (audited)")
    m.add_argument(
        "--override-ownership",
        action="store_true",
        help="release: take it even if [ownership] refuses its sender",
    )
    m.add_argument("--apply", action="store_true", help="release: process its events now")
    m.add_argument("--status", choices=["accepted", "rejected", "held", "ignored"])
    m.add_argument("--raw", action="store_true", help="include the raw message (PHI!)")
    m.add_argument("--limit", type=int, default=50, help="list: messages a page (newest first)")
    m.add_argument("--channel", help="list: only this channel (mllp, x12, fhir, ...)")
    m.add_argument("--type", help="list: message type, e.g. ADT (every trigger) or ADT^A01")
    m.add_argument("--sender", help="list: sender, <MSH-3.1>^<MSH-4.1>")
    m.add_argument("--control-id", help="list: control id (MSH-10) or whole identity")
    m.add_argument("--since", help="list: received at or after (ISO time)")
    m.add_argument("--until", help="list: received before (ISO time)")
    m.add_argument("--cursor", help="list: the next page (the `next` of the last one)")
    q = add("dlq", "dead-letter queue")
    q.add_argument("action", choices=["list", "replay"])
    q.add_argument("seqs", nargs="*", type=int)
    q.add_argument("--all", action="store_true")
    q.add_argument("--apply", action="store_true", help="process the replayed events now")
    r = add("replay", "re-drive stored messages through the flows (effects are idempotent)")
    r.add_argument("--since", help="ISO time, inclusive")
    r.add_argument("--until", help="ISO time, exclusive")
    r.add_argument("--correlation", help="correlation id (channel/control id) or inbox id")
    r.add_argument("--apply", action="store_true", help="process the replayed events now")
    w = add("workitems", "exception work queues")
    w.add_argument(
        "action",
        choices=["list", "resolve", "resubmit", "mappings"],
        help="mappings: the chart in force, config rows and overrides",
    )
    w.add_argument("id", nargs="?", type=int)
    w.add_argument("--status", choices=["open", "resolved", "resubmitted"])
    w.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="FIELD=VALUE",
        help="mapping to add when resolving, e.g. revenue_account=4100",
    )
    w.add_argument("--note", default="")
    w.add_argument(
        "--apply", action="store_true", help="process the resubmitted or released events now"
    )
    ing = add(
        "ingest",
        "take X12 (835, 837), HL7 v2, settlement or bank deposit CSV, or "
        "workforce timecard files once through the inbox",
    )
    ing.add_argument("files", nargs="+", type=Path, metavar="FILE")
    ing.add_argument("--apply", action="store_true", help="process the events now")
    add("status", "backlogs at a glance: unapplied events, dead letters, ERP outbox, work queues")
    b = add("backup", "online backup of the embedded databases and the token key")
    b.add_argument("--to", type=Path, required=True, help="an empty folder to write into")
    erp_cli.add_parsers(add)
    channels_cli.add_parsers(add)
    destinations_cli.add_parsers(add)
    refunds_cli.add_parsers(add)
    claims_cli.add_parsers(add)
    remits_cli.add_parsers(add)
    supply_cli.add_parsers(add)
    labor_cli.add_parsers(add)
    analytics_cli.add_parsers(add)
    config_check.add_parsers(add, _common)
    security.add_parsers(sub, add)
    return ap


def _emit(args: argparse.Namespace, data: Any, text: Callable[[Any], str]) -> None:
    if args.json:
        print(json.dumps(data, indent=2, default=str))
    else:
        print(text(data))


def _say(exc: IsthmusError, args: argparse.Namespace, settings: Settings | None) -> str:
    """The one stderr line of a refusal: its message, and what to run when it is known."""
    if isinstance(exc, SchemaNotCurrent):  # serve, a worker, the API or a command
        hint = (
            ""
            if exc.state.newer or settings is None
            else f": {migrate_cli.upgrade_hint(args, settings)}"
        )
        return f"{exc}{hint}"
    if isinstance(exc, StorageUnavailable):
        return f"storage unavailable: {exc}"
    if isinstance(exc, ErpUnavailable | ErpRejected):
        return f"ERP: {exc}"
    return str(exc)


def run(argv: list[str]) -> int:  # noqa: C901 - the CLI's dispatch, one branch per command
    """Run the `isthmus` command line on `argv` and return the exit code: an error's own
    (isthmus/errors.py), 1 on an OS error, 130 on Ctrl-C."""
    args = parser().parse_args(argv)
    logging.basicConfig(
        level=logging.WARNING,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    settings: Settings | None = None
    try:
        if args.cmd == "config":  # checks a file: it must not need that file to load
            data, text, code = config_check.dispatch(args)
            _emit(args, data, text)
            return code
        settings = load_settings(args.config, data_dir=args.data_dir)
        if datadir.needs_hub(args) and (missing := datadir.missing_hub(settings)):
            raise commands.NotFound(missing)  # exit 3: a typo must not open an empty hub
        logs.configure(settings.logging)
        gate = gate_cli.guard(settings, args)  # exit 2 without a token where one is needed
        if args.cmd in security.COMMANDS:
            data, text, code = security.dispatch(settings, args, gate)
            _emit(args, data, text)
            return code
        if args.cmd == "serve":
            tracing.configure(settings.tracing)  # ConfigError (exit 2) without the exporter
            serve_checks.check_serve(
                settings,
                args.role,
                insecure=args.insecure,
                governance=lambda: gate.gov,
                actor=gate.actor,
            )
            from isthmus.console.app import build_console  # noqa: PLC0415 - serve only

            hub = Hub.open(settings)
            try:
                asyncio.run(
                    serve_forever(
                        hub,
                        role=args.role,
                        mllp_port=args.mllp_port,
                        http_port=args.http_port,
                        http=functools.partial(serve_http, console=build_console),
                        on_ready=lambda: logging.getLogger("isthmus").setLevel(
                            settings.logging.level.upper() or logging.INFO
                        ),
                    )
                )
            finally:
                hub.close()
            return 0
        if args.cmd == "demo":
            from isthmus.cli.demo import run_demo  # noqa: PLC0415 - heavy, demo only

            return run_demo(settings, args)
        if args.cmd in erp_cli.COMMANDS:
            data, text, code = erp_cli.dispatch(settings, args)
            _emit(args, data, text)
            return code
        if args.cmd in ("migrate", "backup"):  # without the hub: it refuses an old schema
            data, text, code = migrate_cli.dispatch(settings, args, gate)
            _emit(args, data, text)
            return code
        hub = Hub.open(settings)
        try:
            if args.cmd == "ingest":
                from isthmus.cli.ingest import ingest  # noqa: PLC0415 - ingest only

                data, text, code = gate.run(ingest, hub, args)
            elif args.cmd in claims_cli.COMMANDS:
                data, text, code = gate.run(
                    lambda h, a: claims_cli.dispatch(h, a, gate=gate), hub, args
                )
            elif args.cmd in refunds_cli.COMMANDS:
                data, text, code = gate.run(
                    lambda h, a: refunds_cli.dispatch(h, a, gate=gate), hub, args
                )
            elif args.cmd in channels_cli.COMMANDS:
                data, text, code = gate.run(
                    lambda h, a: channels_cli.dispatch(h, a, gate=gate), hub, args
                )
            elif args.cmd in destinations_cli.COMMANDS:
                data, text, code = gate.run(
                    lambda h, a: destinations_cli.dispatch(h, a, gate=gate), hub, args
                )
            elif args.cmd in remits_cli.COMMANDS:
                data, text, code = gate.run(
                    lambda h, a: remits_cli.dispatch(h, a, gate=gate), hub, args
                )
            elif args.cmd in supply_cli.COMMANDS:
                data, text, code = gate.run(supply_cli.dispatch, hub, args)
            elif args.cmd in labor_cli.COMMANDS:
                data, text, code = gate.run(labor_cli.dispatch, hub, args)
            elif args.cmd in analytics_cli.COMMANDS:
                data, text, code = gate.run(analytics_cli.dispatch, hub, args)
            elif args.cmd == "purge":
                data, text, code = gate.run(purge_cli.dispatch, hub, args)
            elif args.cmd in messages_cli.COMMANDS:
                data, text, code = gate.run(
                    lambda h, a: messages_cli.dispatch(h, a, actor=gate.actor), hub, args
                )
            elif args.cmd in workitems_cli.COMMANDS:
                data, text, code = gate.run(workitems_cli.dispatch, hub, args)
            else:
                data, text, code = gate.run(commands.dispatch, hub, args)
        finally:
            hub.close()
        _emit(args, data, text)
        return code
    except IsthmusError as exc:  # every refusal, mapped by its family (isthmus/errors.py)
        print(f"isthmus: {_say(exc, args, settings)}", file=sys.stderr)
        return exc.exit_code
    except OSError as exc:
        where = f" ({exc.filename})" if exc.filename else ""
        print(f"isthmus: {exc.strerror or exc}{where}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130


def main() -> int:
    """The `isthmus` console script: run the command line of this process."""
    return run(sys.argv[1:])


if __name__ == "__main__":
    sys.exit(main())
