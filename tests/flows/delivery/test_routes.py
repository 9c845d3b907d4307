"""Routes (flows/routes.py): config checks at load, matching, allow-list, rendering."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import hl7
import pytest

from isthmus.cli.main import parser
from isthmus.config import ConfigError, load_settings
from isthmus.flows.renderers import BAR_P05
from isthmus.flows.routes import Item, Routing, compile_routes, control_id

WHEN = datetime(2026, 11, 2, 10, 15, tzinfo=UTC)
BASE = """
[destinations.billing]
kind = "mllp"
port = 2576
receiving_application = "PAS"
allow = ["mrn", "assigning_authority", "account_number", "amount", "currency",
         "transaction_id", "ft1_type", "charge_code", "quantity", "balance", "visit_number"]
[destinations.portal]
kind = "webhook"
url = "http://127.0.0.1:9/hook"
[destinations.drop]
kind = "file"
path = "/tmp/never"
"""


def settings(tmp_path: Path, routes: str, base: str = BASE) -> Routing:
    path = tmp_path / "isthmus.toml"
    path.write_text(base + routes)
    s = load_settings(path, data_dir=tmp_path / "d", env={})
    return compile_routes(s.routes, s.destinations)


def payment(**fields: str) -> Item:
    base = {
        "transaction_id": "T1",
        "amount": "25.00",
        "currency": "USD",
        "ft1_type": "PY",
        "mrn": "MRN7",
        "assigning_authority": "HOSP",
        "account_number": "ACC7",
        "account_token": "PA-0123456789abcdef",
    }
    return Item("PaymentPosted", "HOSP|MRN7", "mllp/EHR^N:1/0", WHEN, {**base, **fields}, "mllp")


@pytest.mark.parametrize(
    ("routes", "message"),
    [
        (
            '[[routes]]\nevents = ["PaymentPosted"]\ndestinations = ["nowhere"]\n',
            r"routes\[0\]\.destinations: unknown destination 'nowhere'",
        ),
        (
            '[[routes]]\nevents = ["PaymentPosted"]\ndestinations = ["portal"]\n'
            'template = "{{ f.amount "\n',
            r"routes\[0\]\.template: not a valid Jinja2 template",
        ),
        (
            '[[routes]]\nevents = ["PaymentPosted"]\ndestinations = ["portal"]\n'
            'template = "/nonexistent/t.j2"\n',
            r"routes\[0\]\.template: cannot read template file",
        ),
        (
            '[[routes]]\nevents = ["PaymentPosted"]\ndestinations = ["portal"]\n'
            'function = "no.such.module:fn"\n',
            r"routes\[0\]\.function: cannot import",
        ),
        (
            '[[routes]]\nevents = ["ADT^A01"]\ndestinations = ["portal"]\n',
            r"routes\[0\]\.events: 'ADT\^A01' forwards source messages \(PHI\)",
        ),
        (
            '[[routes]]\nevents = ["Charge"]\ndestinations = ["portal"]\n',
            r"routes\[0\]\.events: 'Charge' sends canonical events \(PHI\)",
        ),
        (
            '[[routes]]\nevents = ["ClaimDenied"]\ndestinations = ["billing"]\n',
            r"routes\[0\]\.template: no built-in HL7 v2 message for 'ClaimDenied'",
        ),
        (
            '[[routes]]\nevents = ["PaymentPosted"]\ndestinations = ["portal"]\ntempalte = "x"\n',
            r"unknown key routes\[0\]\.tempalte",
        ),
        (
            '[[routes]]\nevents = []\ndestinations = ["portal"]\n',
            r"routes\[0\]\.events must be a list of names, at least one",
        ),
    ],
)
def test_a_route_that_cannot_run_is_refused_at_load_with_its_key(
    tmp_path: Path, routes: str, message: str
) -> None:
    with pytest.raises(ConfigError, match=message):
        settings(tmp_path, routes)


def test_the_allow_list_cuts_phi_before_the_body_is_written(tmp_path: Path) -> None:
    routing = settings(
        tmp_path,
        '[[routes]]\nname = "back"\nevents = ["PaymentPosted"]\n'
        'destinations = ["portal", "billing"]\n',
    )
    portal, billing = routing.render(payment())
    body = json.loads(portal.body)
    assert (portal.destination, portal.content_type) == ("portal", "application/json")
    assert body["amount"] == "25.00" and body["account_token"] == "PA-0123456789abcdef"
    for phi in (b"MRN7", b"ACC7", b"HOSP"):  # no allow-list: the non-PHI defaults only
        assert phi not in portal.body
    msg = hl7.parse(billing.body.decode())  # the mllp destination's allow-list names them
    assert billing.content_type == "x-application/hl7-v2+er7"
    assert str(msg.segment("MSH")[9]) == "DFT^P03^DFT_P03"
    assert str(msg.segment("MSH")[10]) == control_id(portal.idempotency_key)
    assert str(msg.segment("MSH")[5]) == "PAS"
    assert str(msg.segment("PID")[3]) == "MRN7^^^HOSP" and str(msg.segment("PID")[18]) == "ACC7"
    ft1 = msg.segment("FT1")
    assert (str(ft1[2]), str(ft1[4]), str(ft1[6]), str(ft1[11])) == (
        "T1",
        "20261102",
        "PY",
        "25.00^USD",
    )
    assert "account_token" not in billing.body.decode()  # not on billing's allow-list


def test_control_ids_are_short_and_deterministic() -> None:
    a, b = control_id("PaymentPosted:ev-1"), control_id("PaymentPosted:ev-2")
    assert len(a) <= 20 and a == control_id("PaymentPosted:ev-1") and a != b


def test_bar_p05_carries_the_balance_in_pv1_46(tmp_path: Path) -> None:
    routing = settings(
        tmp_path, '[[routes]]\nevents = ["AccountBalanceChanged"]\ndestinations = ["billing"]\n'
    )
    (out,) = routing.render(
        Item(
            "AccountBalanceChanged",
            "k",
            "ev",
            WHEN,
            {"balance": "75.00", "currency": "USD", "account_number": "AC|7", "mrn": "M1"},
        )
    )
    assert out.body.decode().startswith("MSH|") and BAR_P05.startswith("MSH|")
    msg = hl7.parse(out.body.decode())
    assert str(msg.segment("MSH")[9]) == "BAR^P05^BAR_P05"
    assert str(msg.segment("PV1")[46]) == "75.00"
    assert str(msg.segment("PID")[18]) == "AC\\F\\7"  # delimiters escaped (2.7.4)


def test_filters_on_channel_and_fields_and_one_delivery_per_destination(tmp_path: Path) -> None:
    routing = settings(
        tmp_path,
        """
[[routes]]
name = "usd-payments"
events = ["PaymentPosted", "AdjustmentPosted"]
channels = ["mllp"]
where = { currency = "USD", ft1_type = ["PY", "AJ"] }
destinations = ["portal"]
[[routes]]
name = "all-payments"
events = ["PaymentPosted"]
destinations = ["portal", "drop"]
template = '{"txn": "{{ f.transaction_id }}", "amount": "{{ f.amount }}"}'
""",
    )
    got = routing.render(payment())
    assert [(r.destination, r.route) for r in got] == [
        ("portal", "usd-payments"),
        ("drop", "all-payments"),
    ]
    assert json.loads(got[1].body) == {"txn": "T1", "amount": "25.00"}
    eur = routing.render(payment(currency="EUR"))
    assert [(r.destination, r.route) for r in eur] == [
        ("portal", "all-payments"),
        ("drop", "all-payments"),
    ]
    other_channel = Item("PaymentPosted", "k", "e", WHEN, payment().fields, "x12")
    assert [r.route for r in routing.render(other_channel)] == ["all-payments"] * 2
    assert routing.render(Item("ChargePosted", "k", "e", WHEN, {})) == []


def shout(v: dict[str, object]) -> str:
    """A registered transformation for the function route test."""
    return f"{v['type']}:{v['f']['amount']}"  # type: ignore[index]


def test_a_function_route_writes_what_the_function_returns(tmp_path: Path) -> None:
    routing = settings(
        tmp_path,
        '[[routes]]\nevents = ["PaymentPosted"]\n'
        'destinations = ["drop"]\n'
        'function = "tests.flows.delivery.test_routes:shout"\n'
        'content_type = "text/plain"\n',
    )
    (out,) = routing.render(payment())
    assert (out.body, out.content_type) == (b"PaymentPosted:25.00", "text/plain")


def test_source_messages_go_only_where_raw_is_allowed(tmp_path: Path) -> None:
    base = BASE + '[destinations.archive]\nkind = "file"\npath = "/tmp/x"\nallow = ["raw"]\n'
    routing = settings(
        tmp_path,
        '[[routes]]\nevents = ["ADT"]\nchannels = ["mllp"]\ndestinations = ["archive"]\n',
        base,
    )
    raw = "MSH|^~\\&|EHR|N|||20261102||ADT^A01|C1|P|2.5\r"
    item = Item("ADT^A01", "k", "e", WHEN, {}, "mllp", raw, "source:mllp:C1")
    (out,) = routing.render_source(item)
    assert (out.body.decode(), out.idempotency_key) == (raw, "source:mllp:C1")
    assert routing.render_source(Item("DFT^P03", "k", "e", WHEN, {}, "mllp", raw)) == []


def test_the_readme_example_loads_and_routes_as_it_says(tmp_path: Path) -> None:
    readme = (Path(__file__).resolve().parents[3] / "README.md").read_text()
    part = readme.split("### Destinations and routes", 1)[1].split("\n### ", 1)[0]
    block = part.split("```toml\n", 1)[1].split("```", 1)[0]
    path = tmp_path / "isthmus.toml"
    path.write_text(block)
    s = load_settings(path, data_dir=tmp_path / "d", env={})
    routing = compile_routes(s.routes, s.destinations)
    assert [r.name for r in routing.routes] == [
        "postings-to-pas",
        "portal-payments",
        "denials-to-lockbox",
    ]
    got = routing.render(payment())
    assert [(r.destination, r.content_type) for r in got] == [
        ("pas", "x-application/hl7-v2+er7"),
        ("portal", "application/json"),
    ]
    assert b"MRN7" in got[0].body and b"MRN7" not in got[1].body
    denial = Item(
        "ClaimDenied",
        "k",
        "e",
        WHEN,
        {
            "payer_claim_control_number": "PCN1",
            "payer_id": "P1",
            "charge": "90.00",
            "currency": "USD",
            "reasons": "CO-29",
        },
        "x12",
    )
    (out,) = routing.render(denial)
    assert json.loads(out.body) == {
        "claim": "PCN1",
        "payer": "P1",
        "amount": "90.00",
        "currency": "USD",
        "reasons": "CO-29",
    }
    for command in (
        "destinations",
        "destinations resend 41 42",
        "destinations resend --destination portal --status dead --since 2026-11-02T00:00:00",
    ):
        assert f"isthmus {command}" in " ".join(part.split())
        parser().parse_args(command.split())
