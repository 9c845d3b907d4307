"""What `isthmus serve` checks before it binds a port: safe defaults, refused with the fix.

* The data directory holds patient data (raw messages in store.db and bus.db, the token
  key): it must be the hub's user's alone. A missing one is made 0700; one that group or
  others can read, write or enter stops `serve` (exit 2) naming `chmod 700 DIR`.
* A listener on a network address (anything but loopback: 127.0.0.0/8, ::1, localhost)
  carries PHI in HL7 v2 over MLLP and in the HTTP API. It needs TLS ([hub] tls_cert and
  tls_key: HIPAA 45 CFR 164.312(e)(1), transmission security) and an admin made by
  `isthmus init` (before it, the API has no principals and the CLI gate is open). Without
  either, `serve` refuses unless `--insecure` is given; then it runs, says so in a warning
  and records it in the audit trail. A `worker` binds no port and is not checked.
"""

from __future__ import annotations

import ipaddress
import logging
import socket
from collections.abc import Callable

from isthmus.config import ConfigError, Settings
from isthmus.governance import audit
from isthmus.governance.ports import GovernanceStore
from isthmus.store.private_files import open_to_others, private_dir

log = logging.getLogger("isthmus.serve")


def check_data_dir(settings: Settings) -> None:
    """Make the data directory 0700 when missing; ConfigError when others can reach it."""
    data = settings.data_dir
    why = open_to_others(data)
    if why is not None:
        raise ConfigError(
            f"data directory {data} is not private ({why}); it holds patient "
            f"data: run `chmod 700 {data}` and start again"
        )
    private_dir(data)


def is_loopback(host: str) -> bool:
    """True when `host` reaches this machine only; a name counts when every address it
    resolves to is a loopback one (one that does not resolve is not: the bind fails)."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        pass
    if not host:
        return False  # every interface
    try:
        infos = socket.getaddrinfo(host, None, proto=socket.IPPROTO_TCP)
    except OSError:
        return False
    return bool(infos) and all(
        ipaddress.ip_address(str(info[4][0]).split("%", 1)[0]).is_loopback for info in infos
    )


def exposure(settings: Settings, role: str, initialized: Callable[[], bool]) -> list[str]:
    """What a listener on `settings.host` lacks to be safe there; [] when it binds loopback
    only, or the role binds nothing, or TLS and an admin are both set up."""
    if role == "worker":
        return []
    # an MLLP channel with an address of its own ([channels.<name>] host, issue 18) is a
    # listener too: it needs TLS there, its own certificate or the hub's
    channels = [
        ch
        for ch in settings.channels.values()
        if role in ("all", "listener")
        and ch.transport == "mllp"
        and ch.host
        and not is_loopback(ch.host)
    ]
    if is_loopback(settings.host) and not channels:
        return []
    missing = []
    if not is_loopback(settings.host) and not (settings.tls_cert and settings.tls_key):
        missing.append("TLS ([hub] tls_cert and tls_key)")
    missing += [
        f"TLS for channel {ch.name} ([channels.{ch.name}] tls_cert and tls_key, or [hub] ones)"
        for ch in channels
        if not (ch.tls_cert or (settings.tls_cert and settings.tls_key))
    ]
    if not initialized():
        missing.append("an admin (run `isthmus init`)")
    return missing


def check_serve(
    settings: Settings,
    role: str,
    *,
    insecure: bool,
    governance: Callable[[], GovernanceStore],
    actor: str,
) -> None:
    """Refuse (ConfigError, exit 2) what `serve` must not start with; with `insecure`,
    an exposed listener is logged as a warning and recorded in the audit trail."""
    check_data_dir(settings)
    missing = exposure(settings, role, lambda: governance().initialized())
    if not missing:
        return
    where = settings.host or "every interface"
    if not insecure:
        raise ConfigError(
            f"refusing to serve on {where} (not loopback) without {' and '.join(missing)}: "
            "patient data would cross the network in clear or to anyone; set them up, bind "
            "127.0.0.1 ([hub] host, ISTHMUS_HOST), or pass --insecure to accept the risk"
        )
    log.warning(
        "serving on %s without %s (--insecure): patient data is exposed",
        where,
        " and ".join(missing),
    )
    audit.record(
        governance(), actor, "cli serve", where, "ok", insecure=True, missing=missing, role=role
    )
