"""A CPU hog on every core, for running the test suite on a busy machine (issue 22).

`python3 scripts/load.py --parent PID --max-seconds S` spins one process per core until
the process PID ends or S seconds have passed, whichever comes first, so a hog never
outlives the run that started it (not even one killed with SIGKILL).
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import signal
import sys
import time


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def spin(parent: int, deadline: float) -> None:
    while time.monotonic() < deadline and alive(parent):
        end = time.monotonic() + 0.25
        while time.monotonic() < end:
            pass


def main(argv: list[str]) -> int:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--parent", type=int, default=os.getppid())
    p.add_argument("--max-seconds", type=float, default=4 * 3600.0)
    p.add_argument("--cores", type=int, default=os.cpu_count() or 1)
    a = p.parse_args(argv)
    deadline = time.monotonic() + a.max_seconds
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))  # stop the spinners too
    procs = [
        multiprocessing.Process(target=spin, args=(a.parent, deadline), daemon=True)
        for _ in range(max(1, a.cores))
    ]
    for proc in procs:
        proc.start()
    try:
        for proc in procs:
            proc.join()
    except KeyboardInterrupt:
        pass
    finally:
        for proc in procs:
            proc.terminate()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
