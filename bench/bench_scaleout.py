"""Benchmark (d) scale-out: embedded SQLite vs PostgreSQL + NATS JetStream with 1, 2, 4 workers.

End to end, as in bench_ingest.py (c): DFT^P03 charges sent over MLLP (8 connections, 8 in
flight each) until every charge is a posted journal entry, read from GET /api/v1/status
(store.journal_entries, and bus_pending, which counts the inbox rows not yet relayed too).

- embedded: one `isthmus serve --role all`, default settings (SQLite WAL, synchronous=FULL).
- scale-out: `serve --role listener` x1 + `serve --role worker` xN + `serve --role api`, with
  ISTHMUS_STORE=postgresql, ISTHMUS_BUS=nats, ISTHMUS_PARTITIONS=4; a fresh database per run
  (dropped after) and a stream of its own (deleted after, with its DLQ and KV buckets).
  Workers are started before the send, and the run waits until the partition leases are
  spread over all of them (ceil(4 / N) each).

Every process shares this machine's cores with PostgreSQL, NATS and the client, so the CPU
each one used during the run is read from /proc (utime + stime; PostgreSQL includes the
backends the postmaster reaped) and printed beside the throughput: it says where the time
went. Other load on the machine shows as "other" (machine busy time minus what was measured;
the biggest other processes are named). Each setup runs --repeat times, interleaved, and the
median run is reported with the range, since a shared machine is noisy.

Usage: .venv/test/bin/python bench/bench_scaleout.py [--messages 4000] [--workers 1,2,4]
       [--repeat 3] [--pg-dsn postgresql://postgres@127.0.0.1:5432/postgres]
       [--nats nats://127.0.0.1:4222]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import math
import os
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

import nats
import nats.errors
import nats.js.errors
import psycopg
from psycopg import sql

from bench_ingest import free_port, stop, wait_port
from isthmus.connectors.mllp_client import send_messages
from isthmus.demo.ehr_day import corpus_like

PARTITIONS = 4
TICK = os.sysconf("SC_CLK_TCK")


# -- CPU accounting from /proc -------------------------------------------------------------


def _stat(pid: int) -> list[str]:
    raw = Path(f"/proc/{pid}/stat").read_text()
    return raw[raw.rindex(")") + 2 :].split()  # fields from 3 (state) on


def proc_cpu(pid: int, *, children: bool = False) -> float:
    """CPU seconds (user + system) of `pid`; with `children`, plus the reaped children's."""
    try:
        f = _stat(pid)
    except OSError:
        return 0.0
    ticks = int(f[11]) + int(f[12]) + ((int(f[13]) + int(f[14])) if children else 0)
    return ticks / TICK


def _procs() -> Iterator[tuple[int, str, int, str]]:
    """(pid, comm, ppid, cmdline) of every process we may read."""
    for d in Path("/proc").iterdir():
        if not d.name.isdigit():
            continue
        try:
            raw = (d / "stat").read_text()
            cmd = (d / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        comm = raw[raw.index("(") + 1 : raw.rindex(")")]
        ppid = int(raw[raw.rindex(")") + 2 :].split()[1])
        yield int(d.name), comm, ppid, cmd


def postgres_cpu() -> float:
    """All PostgreSQL processes, live ones plus the backends the postmaster has reaped."""
    procs = [(p, c, pp) for p, c, pp, _ in _procs() if c == "postgres"]
    pids = {p for p, _, _ in procs}
    total = 0.0
    for pid, _, ppid in procs:
        total += proc_cpu(pid, children=ppid not in pids)  # the postmaster has no pg parent
    return total


def nats_cpu(port: int) -> float:
    """The nats-server serving `port` (other nats-servers on the machine are left out)."""
    found = [(p, cmd) for p, c, _, cmd in _procs() if c.startswith("nats-server")]
    mine = [p for p, cmd in found if str(port) in cmd]
    return sum(proc_cpu(p) for p in (mine or [p for p, _ in found]))


def machine_busy() -> tuple[float, float]:
    """(busy, irq + softirq) CPU seconds of the whole machine since boot, from /proc/stat."""
    f = [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    idle = f[3] + f[4]  # idle + iowait
    return (sum(f[:8]) - idle) / TICK, (f[5] + f[6]) / TICK


def all_cpu() -> dict[int, tuple[str, float]]:
    """pid -> (comm, CPU seconds) of every process, to name what else ran meanwhile."""
    out: dict[int, tuple[str, float]] = {}
    for pid, comm, _, _ in _procs():
        out[pid] = (comm, proc_cpu(pid))
    return out


def self_cpu() -> float:
    t = os.times()
    return t.user + t.system


@dataclass
class CpuWindow:
    """CPU seconds per component between `start` and `stop`."""

    parts: dict[str, int]  # name -> pid of our child processes
    nats_port: int | None = None
    before: dict[str, float] = field(default_factory=dict)
    used: dict[str, float] = field(default_factory=dict)

    pg_dsn: str = ""  # the hub's database: its backends are counted apart
    pg_before: dict[int, float] = field(default_factory=dict)
    others_before: dict[int, tuple[str, float]] = field(default_factory=dict)
    others: str = ""  # the biggest other consumers, for the report

    def _sample(self) -> dict[str, float]:
        s = {name: proc_cpu(pid) for name, pid in self.parts.items()}
        if self.nats_port is not None:
            s["postgresql"] = postgres_cpu()
            s["nats-server"] = nats_cpu(self.nats_port)
        s["client (bench: MLLP sender + poller)"] = self_cpu()
        s["_machine"], s["_irq"] = machine_busy()
        return s

    def _backends(self) -> dict[int, float]:
        if not self.pg_dsn:
            return {}
        with psycopg.connect(self.pg_dsn, autocommit=True) as c:
            pids = [
                int(r[0])
                for r in c.execute(
                    "SELECT pid FROM pg_stat_activity WHERE datname = current_database() "
                    "AND pid <> pg_backend_pid()"
                )
            ]
        return {pid: proc_cpu(pid) for pid in pids}

    def start(self) -> None:
        self.others_before = all_cpu()
        self.pg_before = self._backends()
        self.before = self._sample()

    def stop(self) -> None:
        after = self._sample()
        pg_after = self._backends()
        self.used = {k: after[k] - self.before[k] for k in after}
        if self.pg_dsn:
            hub = sum(v - self.pg_before.get(pid, 0.0) for pid, v in pg_after.items())
            self.used["postgresql: rest (WAL writer, checkpointer, other databases)"] = max(
                0.0, self.used.pop("postgresql") - hub
            )
            self.used["postgresql: this hub's backends"] = hub
        machine, irq = self.used.pop("_machine"), self.used.pop("_irq")
        self.used["kernel irq/softirq (loopback TCP etc.)"] = irq
        self.used["other (rest of the machine)"] = max(0.0, machine - sum(self.used.values()))
        self.used["_machine"] = machine
        mine = {*self.parts.values(), os.getpid()}
        by_comm: dict[str, float] = {}
        for pid, (comm, cpu) in all_cpu().items():
            if pid in mine or comm in ("postgres", "nats-server"):
                continue
            delta = cpu - self.others_before.get(pid, (comm, 0.0))[1]
            by_comm[comm] = by_comm.get(comm, 0.0) + delta
        top = sorted(by_comm.items(), key=lambda kv: -kv[1])[:3]
        self.others = ", ".join(f"{c} {v:.1f} s" for c, v in top if v >= 0.05)


# -- processes ------------------------------------------------------------------------------


def spawn(
    role: str,
    data: Path,
    env: dict[str, str],
    log: Path,
    *,
    mllp_port: int | None = None,
    http_port: int | None = None,
) -> subprocess.Popen[bytes]:
    cfg = log.parent / "bench.toml"
    cfg.write_text('[mappings]\ninclude = "demo"\n')  # the demo EHR's codes post
    env = {**env, "ISTHMUS_CONFIG": str(cfg)}
    cmd = [
        sys.executable,
        "-m",
        "isthmus.cli.main",
        "serve",
        "--role",
        role,
        "--data-dir",
        str(data),
    ]
    if mllp_port is not None:
        cmd += ["--mllp-port", str(mllp_port)]
    if http_port is not None:
        cmd += ["--http-port", str(http_port)]
    with log.open("ab") as fh:
        return subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=fh)


def metrics(port: int) -> dict[str, object]:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/v1/status", timeout=10) as r:
        return dict(json.loads(r.read()))


def posted(m: dict[str, object]) -> int:
    store = m["store"]
    assert isinstance(store, dict)
    return int(store["journal_entries"])


@dataclass
class Result:
    name: str
    n: int
    total_s: float
    ingest_rate: float
    ingest_s: float
    cpu: dict[str, float]
    others: str = ""

    @property
    def drain_s(self) -> float:
        return self.total_s - self.ingest_s


def drive(
    name: str,
    n: int,
    seed: int,
    mllp: int,
    api: int,
    cpu: CpuWindow,
    poll_s: float = 0.05,
    timeout_s: float = 900,
) -> Result:
    """Send n charges, then poll /api/v1/status until all are posted and nothing is pending."""
    batch = corpus_like(n, seed=seed)
    base = posted(metrics(api))
    cpu.start()
    t0 = time.perf_counter()
    rep = asyncio.run(
        send_messages("127.0.0.1", mllp, batch, connections=8, window=8, timeout_s=120)
    )
    t_ingest = time.perf_counter() - t0
    assert rep.failed == 0, f"{rep.failed} messages without ACK"
    while True:
        m = metrics(api)
        if m["bus_pending"] == 0 and posted(m) - base >= n:
            break
        if time.perf_counter() - t0 > timeout_s:
            raise RuntimeError(f"{name}: {posted(m) - base}/{n} posted after {timeout_s}s")
        time.sleep(poll_s)
    total = time.perf_counter() - t0
    cpu.stop()
    return Result(name, n, total, rep.rate, t_ingest, cpu.used, cpu.others)


def run_embedded(n: int, seed: int) -> Result:
    with tempfile.TemporaryDirectory() as tmp:
        data = Path(tmp)
        mp, hp = free_port(), free_port()
        env = {k: v for k, v in os.environ.items() if not k.startswith("ISTHMUS_")}
        proc = spawn("all", data / "hub", env, data / "serve.log", mllp_port=mp, http_port=hp)
        try:
            wait_port(mp)
            wait_port(hp)
            return drive(
                "embedded: serve --role all (SQLite WAL, FULL)",
                n,
                seed,
                mp,
                hp,
                CpuWindow({"serve --role all": proc.pid}),
            )
        except BaseException:
            print((data / "serve.log").read_text()[-3000:], file=sys.stderr)
            raise
        finally:
            stop(proc)


async def _lease_owners(url: str, stream: str) -> dict[int, str]:
    nc = await nats.connect(url)
    try:
        kv = await nc.jetstream().key_value(f"{stream}_LEASES")
        owners: dict[int, str] = {}
        try:
            keys = await kv.keys()
        except nats.js.errors.NoKeysError:
            return owners
        for key in keys:
            name = bytes.fromhex(key).decode()
            if not name.startswith("partition:"):
                continue
            with contextlib.suppress(nats.js.errors.KeyNotFoundError):
                e = await kv.get(key)
                if e.value and json.loads(e.value)["expires_at"] > time.time():
                    owners[int(name.split(":")[1])] = json.loads(e.value)["owner"]
        return owners
    finally:
        await nc.close()


def wait_leases(url: str, stream: str, workers: int, timeout_s: float = 60) -> dict[int, str]:
    """Until every partition is leased and the leases are spread over all workers."""
    cap = math.ceil(PARTITIONS / workers)
    end = time.time() + timeout_s
    owners: dict[int, str] = {}
    while time.time() < end:
        with contextlib.suppress(nats.errors.Error, nats.js.errors.Error):
            owners = asyncio.run(_lease_owners(url, stream))
        per = [list(owners.values()).count(o) for o in set(owners.values())]
        if len(owners) == PARTITIONS and len(per) == min(workers, PARTITIONS) and max(per) <= cap:
            return owners
        time.sleep(0.5)
    raise RuntimeError(f"leases never spread over {workers} workers: {owners}")


async def _delete_streams(url: str, stream: str) -> list[str]:
    nc = await nats.connect(url)
    try:
        js = nc.jetstream()
        names = [s.config.name for s in await js.streams_info()]
        gone = [x for x in names if x and (x.startswith(stream) or x.startswith(f"KV_{stream}_"))]
        for x in gone:
            await js.delete_stream(x)
        return gone
    finally:
        await nc.close()


def _dsn_db(dsn: str, db: str) -> str:
    return psycopg.conninfo.make_conninfo(dsn, dbname=db)


def run_scaleout(n: int, seed: int, workers: int, *, pg_dsn: str, nats_url: str) -> Result:
    tag = f"bench_scaleout_{os.getpid()}_{workers}w"
    db, stream = tag, tag.upper()
    with psycopg.connect(pg_dsn, autocommit=True) as c:
        c.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(db)))
    procs: list[subprocess.Popen[bytes]] = []
    with tempfile.TemporaryDirectory() as tmp:
        data, log = Path(tmp) / "hub", Path(tmp) / "serve.log"
        env = {k: v for k, v in os.environ.items() if not k.startswith("ISTHMUS_")} | {
            "ISTHMUS_STORE": "postgresql",
            "ISTHMUS_BUS": "nats",
            "ISTHMUS_PG_DSN": _dsn_db(pg_dsn, db),
            "ISTHMUS_NATS_URL": nats_url,
            "ISTHMUS_NATS_STREAM": stream,
            "ISTHMUS_PARTITIONS": str(PARTITIONS),
        }
        try:
            mig = subprocess.run(
                [sys.executable, "-m", "isthmus.cli.main", "migrate", "--data-dir", str(data)],
                env=env,
                capture_output=True,
                check=False,
            )
            assert mig.returncode == 0, mig.stderr.decode()
            mp, hp = free_port(), free_port()
            parts: dict[str, int] = {}
            listener = spawn("listener", data, env, log, mllp_port=mp)
            procs.append(listener)
            api = spawn("api", data, env, log, http_port=hp)
            procs.append(api)
            for i in range(workers):
                w = spawn("worker", data, env, log)
                procs.append(w)
                parts[f"worker {i + 1}"] = w.pid
            wait_port(mp)
            wait_port(hp)
            wait_leases(nats_url, stream, workers)
            parts = {"listener": listener.pid, **parts, "api": api.pid}
            port = urlsplit(nats_url).port or 4222
            return drive(
                f"scale-out: PostgreSQL + NATS, {workers} worker(s)",
                n,
                seed,
                mp,
                hp,
                CpuWindow(parts, nats_port=port, pg_dsn=_dsn_db(pg_dsn, db)),
            )
        except BaseException:
            with contextlib.suppress(OSError):
                print(log.read_text()[-3000:], file=sys.stderr)
            raise
        finally:
            for p in procs:
                stop(p)
            with contextlib.suppress(Exception):
                asyncio.run(_delete_streams(nats_url, stream))
            with psycopg.connect(pg_dsn, autocommit=True) as c:
                c.execute(
                    sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(db))
                )


# -- report ---------------------------------------------------------------------------------


def median(runs: list[Result]) -> Result:
    return sorted(runs, key=lambda r: r.total_s)[len(runs) // 2]


def report(runs: dict[str, list[Result]]) -> None:
    first = next(iter(runs.values()))
    n, reps = first[0].n, len(first)
    print("### (d) end to end, embedded vs scale-out\n")
    print(
        f"{n} DFT^P03 charges per run over MLLP (8 connections x 8 in flight), until every "
        f"charge is a posted journal entry; {PARTITIONS} partitions; "
        f"{os.cpu_count()} cores shared by every process. {reps} run(s) per setup, "
        "interleaved; the median run is shown, with the range of charges/s.\n"
    )
    print(
        "| setup | charges | seconds | charges/s (to ledger) | range | ingest msg/s | "
        "ingest s | drain after ingest s |"
    )
    print("|---|---:|---:|---:|---:|---:|---:|---:|")
    for rs in runs.values():
        r = median(rs)
        rates = sorted(x.n / x.total_s for x in rs)
        print(
            f"| {r.name} | {r.n} | {r.total_s:.2f} | {r.n / r.total_s:,.0f} | "
            f"{rates[0]:,.0f}-{rates[-1]:,.0f} | {r.ingest_rate:,.0f} | {r.ingest_s:.2f} | "
            f"{r.drain_s:.2f} |"
        )
    print("\n#### where the CPU went in the median run (CPU seconds; ms of CPU per charge)\n")
    for rs in runs.values():
        r = median(rs)
        busy = r.cpu["_machine"]
        print(
            f"**{r.name}**: machine busy {busy:.1f} CPU s over {r.total_s:.1f} s wall = "
            f"{busy / r.total_s:.2f} of {os.cpu_count()} cores"
            + (f"; biggest other processes: {r.others}" if r.others else "")
            + "\n"
        )
        print("| process | CPU s | ms/charge | share of busy |")
        print("|---|---:|---:|---:|")
        for k, v in r.cpu.items():
            if k == "_machine":
                continue
            share = v / busy if busy else 0.0
            print(f"| {k} | {v:.2f} | {v * 1000 / r.n:.2f} | {share:.0%} |")
        print(f"| **machine total** | {busy:.2f} | {busy * 1000 / r.n:.2f} | 100% |\n")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--messages", type=int, default=4000)
    ap.add_argument("--workers", default="1,2,4", help="scale-out worker counts, comma separated")
    ap.add_argument("--repeat", type=int, default=3, help="runs per setup, interleaved")
    ap.add_argument(
        "--pg-dsn",
        default="postgresql://postgres@127.0.0.1:5432/postgres",
        help="a database to run CREATE/DROP DATABASE from",
    )
    ap.add_argument("--nats", default="nats://127.0.0.1:4222")
    ap.add_argument("--no-embedded", action="store_true")
    args = ap.parse_args()
    n = args.messages
    workers = [int(x) for x in args.workers.split(",") if x]
    runs: dict[str, list[Result]] = {}
    for i in range(args.repeat):
        seed = 201 + i
        if not args.no_embedded:
            r = run_embedded(n, seed)
            runs.setdefault(r.name, []).append(r)
            print(f"run {i + 1}: {r.name}: {n / r.total_s:,.0f} charges/s", file=sys.stderr)
        for w in workers:
            r = run_scaleout(n, seed, w, pg_dsn=args.pg_dsn, nats_url=args.nats)
            runs.setdefault(r.name, []).append(r)
            print(f"run {i + 1}: {r.name}: {n / r.total_s:,.0f} charges/s", file=sys.stderr)
    report(runs)


if __name__ == "__main__":
    main()
