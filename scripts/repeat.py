"""`python3 dev.py test --repeat N --load[=suite]`: the suite run again and again, on a busy
machine, to find the tests that fail at random (issue 22).

Every pass (embedded, then scale-out on a fresh database) runs to its end, a failure does
not stop the next one, and each writes a JUnit report; at the end every test that failed at
least once is listed with its mode and count. With `--load` a CPU hog spins on every core
(scripts/load.py) until the run ends; with `--load=suite` a second run of the same suite
goes on beside the first, isolated from it: its own PostgreSQL database and its own
temporary directory (so its own data directories, PostgreSQL schemas and NATS stream names,
which are named after the data directory). Its failures are listed too, marked `beside`;
its output goes to log files, not to the terminal. The reports and logs stay in the run's
directory under /tmp. Nothing is ever rerun to make a failure go away.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import threading
import time
import xml.etree.ElementTree as ET
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from check import DATABASE, DURATIONS, ROOT, run, scaleout_vars

DATABASES = {"main": DATABASE, "beside": f"{DATABASE}_beside_{os.getpid()}"}


def failed_tests(report: Path) -> list[str]:
    """Node ids of the tests a JUnit report marks failed or errored (setup included)."""
    if not report.exists():
        return ["<no report: pytest did not finish>"]
    out = []
    for case in ET.parse(report).iter("testcase"):
        if case.find("failure") is None and case.find("error") is None:
            continue
        parts = (case.get("classname") or "").split(".")
        for cut in range(len(parts), 0, -1):  # tests.bus.test_x.TestY -> tests/bus/test_x.py
            path = Path(*parts[:cut]).with_suffix(".py")
            if (ROOT / path).exists():
                out.append("::".join([str(path), *parts[cut:], case.get("name") or ""]))
                break
        else:
            out.append(f"{case.get('classname')}::{case.get('name')}")
    return out


@dataclass
class Repeat:
    work: Path
    pytest_args: list[str]
    modes: tuple[str, ...]
    times: int
    load: str | None
    failures: Counter[tuple[str, str, str]] = field(default_factory=Counter)
    passes: Counter[tuple[str, str]] = field(default_factory=Counter)
    red: Counter[tuple[str, str]] = field(default_factory=Counter)
    done: threading.Event = field(default_factory=threading.Event)

    def one(self, run_name: str, mode: str, n: int) -> None:
        """One pytest pass; its failures are counted under (run, mode)."""
        report = self.work / f"{run_name}-{mode}-{n}.xml"
        basetemp = self.work / f"tmp-{run_name}-{mode}-{n}"
        argv = [
            sys.executable,
            "-m",
            "pytest",
            DURATIONS,
            f"--junitxml={report}",
            f"--basetemp={basetemp}",
            *self.pytest_args,
        ]
        env = dict(os.environ)
        if mode == "scale-out":
            got = scaleout_vars(DATABASES[run_name])
            if isinstance(got, str):
                print(f"== scale-out pass cannot run: {got}", flush=True)
                self.failures[(run_name, mode, f"<scale-out unavailable: {got}>")] += 1
                self.red[(run_name, mode)] += 1
                return
            env = got
        log = self.work / f"{run_name}-{mode}-{n}.log" if run_name == "beside" else None
        code = run(f"pytest [{run_name} {n}, {mode}]", argv, env, log)
        shutil.rmtree(basetemp, ignore_errors=True)  # the next pass has its own
        self.passes[(run_name, mode)] += 1
        found = failed_tests(report)
        if code != 0 and not found:
            found = [f"<pytest exit code {code}>"]
        if found:
            self.red[(run_name, mode)] += 1
        for test in found:
            self.failures[(run_name, mode, test)] += 1
        print(f"== [{run_name} {n}, {mode}]: {len(found)} failed", flush=True)

    def beside(self) -> None:
        """The second run: whole passes, one after the other, until the first run ends."""
        n = 0
        while not self.done.is_set():
            n += 1
            for mode in self.modes:
                self.one("beside", mode, n)

    def go(self) -> int:
        hog = None
        if self.load is not None:
            print(f"== load: a CPU hog on {os.cpu_count()} cores", flush=True)
            hog = subprocess.Popen(
                [sys.executable, str(ROOT / "scripts" / "load.py"), "--parent", str(os.getpid())]
            )
        side = None
        if self.load == "suite":
            side = threading.Thread(target=self.beside, name="beside", daemon=True)
            side.start()
        t0 = time.monotonic()
        try:
            for n in range(1, self.times + 1):
                for mode in self.modes:
                    self.one("main", mode, n)
            self.done.set()
            if side is not None:
                print("== waiting for the second run to finish its pass", flush=True)
                side.join()
        finally:
            self.done.set()
            if hog is not None:
                hog.terminate()
                hog.wait(30)
            self.drop_beside_database()
        return self.summary(time.monotonic() - t0)

    def drop_beside_database(self) -> None:
        if self.load != "suite":
            return
        from scaleout_env import drop_database  # noqa: PLC0415 - needs the test env

        drop_database(DATABASES["beside"])

    def summary(self, seconds: float) -> int:
        print(
            f"\n== {self.times} x {'+'.join(self.modes)} in {seconds / 60:.1f} min"
            f"{', load: ' + self.load if self.load else ''}; JUnit reports and the second"
            f" run's logs in {self.work}",
            flush=True,
        )
        for (run_name, mode), count in sorted(self.passes.items()):
            print(
                f"   {run_name:<6} {mode:<9}: {count} passes, "
                f"{self.red[(run_name, mode)]} with failures"
            )
        if not self.failures:
            print("== no test failed", flush=True)
            return 0
        print("== tests that failed at least once (run, mode, times failed / passes):")
        for (run_name, mode, test), count in sorted(self.failures.items()):
            print(f"   {run_name:<6} {mode:<9} {count}/{self.passes[(run_name, mode)]}  {test}")
        return 1
