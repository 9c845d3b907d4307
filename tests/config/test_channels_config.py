"""`[channels.<name>]` with transports, ports, TLS, senders and ACK identity (issue 18):
what a file may say, what it is refused with (the dotted key named), and what existing
files (a policy table only) keep meaning."""

from __future__ import annotations

from pathlib import Path

import pytest

from isthmus.config import ConfigError, Settings, load_settings
from isthmus.flows import channels
from isthmus.serve_checks import exposure
from isthmus.store.memory import MemoryStore


def load(tmp_path: Path, text: str, env: dict[str, str] | None = None) -> Settings:
    conf = tmp_path / "isthmus.toml"
    conf.write_text(text)
    return load_settings(conf, data_dir=tmp_path, env=env or {})


def test_existing_channel_tables_keep_their_meaning(tmp_path: Path) -> None:
    s = load(
        tmp_path,
        '[channels.mllp]\ncurrency = "EUR"\n[channels.x12]\n'
        'summarization = "detailed"\n[channels.fhir]\ncharges_from = "claim"\n',
    )
    assert s.channel("mllp").transport == "mllp" and s.channel("mllp").port is None
    assert s.channel("x12").transport == "folder" and s.channel("x12").folder is None
    assert s.channel("fhir").transport == "fhir"
    assert s.channel("settlement").transport == "folder"  # not configured: inferred too
    # [hub] mllp_port is still the default channel's port
    s = load(tmp_path, "[hub]\nmllp_port = 2999\n")
    [mllp] = [r for r in channels.table(s, MemoryStore()) if r["name"] == "mllp"]
    assert mllp["address"] == "127.0.0.1:2999" and mllp["transport"] == "mllp"
    assert channels.pausable(s) == ["drop", "fhir", "mllp"]


def test_a_full_mllp_channel(tmp_path: Path) -> None:
    s = load(
        tmp_path,
        """
[channels.lab]
transport = "mllp"
host = "0.0.0.0"
port = 2600
tls_cert = "/etc/isthmus/lab.crt"
tls_key = "/etc/isthmus/lab.key"
tls_client_ca = "/etc/isthmus/lab-ca.crt"
senders = ["LAB^MAIN"]
ack_application = "HUB"
ack_facility = "LABIF"
""",
    )
    lab = s.channel("lab")
    assert (lab.transport, lab.host, lab.port, lab.senders) == (
        "mllp",
        "0.0.0.0",
        2600,
        ("LAB^MAIN",),
    )
    assert lab.tls_client_ca == Path("/etc/isthmus/lab-ca.crt")
    assert (lab.ack_application, lab.ack_facility) == ("HUB", "LABIF")
    assert channels.pausable(s) == ["drop", "fhir", "lab", "mllp"]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('[channels.lab]\ntransport = "ftp"\nport = 1\n', "channels.lab.transport must be one of"),
        ('[channels.lab]\nsenders = ["LAB"]\nport = 1\n', "channels.lab.senders must be a list"),
        ('[channels.lab]\ntransport = "mllp"\n', "channels.lab.port is required"),
        ("[channels.lab]\nport = 70000\n", "channels.lab.port must be a TCP port"),
        (
            "[channels.lab]\nport = 2601\n[channels.rad]\nport = 2601\n",
            "channels.rad.port 2601 is already the port of channel lab",
        ),
        (
            "[hub]\nmllp_port = 2601\n[channels.lab]\nport = 2601\n",
            "channels.lab.port 2601 is already the port of channel mllp",
        ),
        (
            '[channels.lab]\nport = 1\nack_application = "A|B"\n',
            "channels.lab.ack_application must be text without HL7 delimiters",
        ),
        (
            '[channels.lab]\nport = 1\ntls_cert = "c.pem"\n',
            "channels.lab.tls_cert and channels.lab.tls_key go together",
        ),
        (
            '[channels.lab]\nport = 1\ntls_client_ca = "ca.pem"\n',
            "channels.lab.tls_client_ca needs a certificate",
        ),
        ('[channels.x12]\nsenders = ["A^B"]\n', "channels.x12.senders is for MLLP channels"),
        ('[channels.lab]\nport = 1\nfolder = "/x"\n', "channels.lab.folder is for folder"),
        ('[channels.api2]\ntransport = "fhir"\n', "the FHIR API is the one channel named"),
    ],
)
def test_bad_channel_settings_name_the_key(tmp_path: Path, text: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message.replace("|", "\\|")):
        load(tmp_path, text)


def test_unknown_channel_keys_are_refused_with_a_guess(tmp_path: Path) -> None:
    with pytest.raises(
        ConfigError,
        match=r"unknown key channels\.lab\.sender: did you mean "
        r"channels\.lab\.senders\?",
    ):
        load(tmp_path, '[channels.lab]\nport = 1\nsender = ["A^B"]\n')


def test_a_channel_on_a_network_address_needs_tls_and_an_admin(tmp_path: Path) -> None:
    s = load(tmp_path, '[channels.lab]\nport = 2600\nhost = "0.0.0.0"\n')
    missing = exposure(s, "listener", lambda: True)
    assert missing == ["TLS for channel lab ([channels.lab] tls_cert and tls_key, or [hub] ones)"]
    assert exposure(s, "api", lambda: True) == []  # the API process binds no MLLP port
    s = load(
        tmp_path,
        '[channels.lab]\nport = 2600\nhost = "0.0.0.0"\ntls_cert = "c.pem"\ntls_key = "k.pem"\n',
    )
    assert exposure(s, "all", lambda: False) == ["an admin (run `isthmus init`)"]
    assert exposure(s, "all", lambda: True) == []
