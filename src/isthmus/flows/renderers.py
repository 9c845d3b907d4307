"""How a route writes a body (issue 18): the built-in HL7 v2 templates, a route's own
Jinja2 template or function, and the default JSON. flows/routes.py matches items to
routes and gives these renderers their variables (`routes.variables`).

Templates run in Jinja2's SandboxedEnvironment (as the REST ERP adapter's do), with the
filter `hl7` (HL7 v2 escaping, section 2.7); a field the allow-list cut renders empty
(`f.mrn` is undefined, never an error). The built-in HL7 v2 templates for mllp
destinations: DFT^P03 for ChargePosted, PaymentPosted and AdjustmentPosted (FT1), BAR^P05
for AccountBalanceChanged (PV1-46, the current patient balance). Anything else defaults to
JSON. A template or function that cannot run is a ConfigError with its dotted key, at load.
"""

from __future__ import annotations

import importlib
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any, Final

import jinja2
from jinja2.sandbox import SandboxedEnvironment

from isthmus.config import ConfigError
from isthmus.model.status import (
    ACCOUNT_BALANCE_CHANGED,
    ADJUSTMENT_POSTED,
    CHARGE_POSTED,
    PAYMENT_POSTED,
)

Render = Callable[[dict[str, Any]], bytes]


def hl7_escape(value: object) -> str:
    """HL7 v2 escape sequences for the delimiters (v2.5 section 2.7.4), CR/LF removed."""
    text = "" if value is None else str(value)
    text = text.replace("\\", "\\E\\")
    for ch, esc in (("|", "\\F\\"), ("^", "\\S\\"), ("~", "\\R\\"), ("&", "\\T\\")):
        text = text.replace(ch, esc)
    return text.replace("\r", " ").replace("\n", " ")


def default_json(v: dict[str, Any]) -> bytes:
    """The default body: the event's (cut) fields at the top level, `amount` and `currency`
    among them (what a file's control record sums), with its type, id and time."""
    return json.dumps(
        {
            **v["f"],
            "type": v["type"],
            "event_id": v["event_id"],
            "occurred_at": v["occurred_at"],
            "idempotency_key": v["idempotency_key"],
        },
        sort_keys=True,
        separators=(",", ":"),
    ).encode()


# --- built-in HL7 v2 templates (mllp destinations) --------------------------------------


def _segment(name: str, values: dict[int, str]) -> str:
    """A segment template: field n of `values` at position n (MSH counts its separator)."""
    last = max(values)
    return "|".join([name] + [values.get(i, "") for i in range(1, last + 1)])


_MSH = (
    "MSH|^~\\&|{{ d.sending_application|hl7 }}|{{ d.sending_facility|hl7 }}|"
    "{{ d.receiving_application|hl7 }}|{{ d.receiving_facility|hl7 }}|{{ hl7_ts }}||"
    "{{ message_type }}|{{ control_id }}|P|2.5"
)
_PID = _segment(
    "PID",
    {
        1: "1",
        3: "{{ f.mrn|default('')|hl7 }}{% if f.assigning_authority %}"
        "^^^{{ f.assigning_authority|hl7 }}{% endif %}",
        18: "{{ f.account_number|default('')|hl7 }}",
    },
)
_FT1 = _segment(
    "FT1",
    {
        1: "1",
        2: "{{ (f.transaction_id or f.trace_number or control_id)|hl7 }}",
        4: "{{ hl7_date }}",
        5: "{{ hl7_date }}",
        6: "{{ f.ft1_type|default('')|hl7 }}",
        7: "{{ f.charge_code|default('')|hl7 }}",
        10: "{{ f.quantity|default('1')|hl7 }}",
        11: "{{ f.amount|default('')|hl7 }}^{{ f.currency|default('')|hl7 }}",
    },
)
_PV1_VISIT = (
    "{% if f.visit_number %}\r"
    + _segment("PV1", {1: "1", 2: "U", 19: "{{ f.visit_number|hl7 }}"})
    + "{% endif %}"
)
_PV1_BALANCE = _segment(
    "PV1",
    {
        1: "1",
        2: "U",
        19: "{{ f.visit_number|default('')|hl7 }}",
        46: "{{ f.balance|default('')|hl7 }}",
    },
)
DFT_P03: Final = (
    "\r".join([_MSH.replace("{{ message_type }}", "DFT^P03^DFT_P03"), "EVN|P03|{{ hl7_ts }}", _PID])
    + _PV1_VISIT
    + "\r"
    + _FT1
    + "\r"
)
BAR_P05: Final = (
    "\r".join(
        [
            _MSH.replace("{{ message_type }}", "BAR^P05^BAR_P05"),
            "EVN|P05|{{ hl7_ts }}",
            _PID,
            _PV1_BALANCE,
        ]
    )
    + "\r"
)
HL7_TEMPLATES: Final = {
    CHARGE_POSTED: DFT_P03,
    PAYMENT_POSTED: DFT_P03,
    ADJUSTMENT_POSTED: DFT_P03,
    ACCOUNT_BALANCE_CHANGED: BAR_P05,
}

_env = SandboxedEnvironment(
    autoescape=False, keep_trailing_newline=True, undefined=jinja2.ChainableUndefined
)
_env.filters["hl7"] = hl7_escape


def template(source: str) -> Render:
    """A Jinja2 template in the sandbox, as a renderer (raises TemplateSyntaxError)."""
    compiled = _env.from_string(source)

    def render(v: dict[str, Any]) -> bytes:
        return compiled.render(**v).encode()

    return render


BUILT_IN: Final = {name: template(source) for name, source in HL7_TEMPLATES.items()}


def compile_template(text: str, where: str) -> Render:
    """A route's `template`: Jinja2 text, or the path of a file holding it; ConfigError
    (with the dotted key `where`) when it cannot be read or parsed."""
    source = text
    if "{{" not in text and "{%" not in text and "\n" not in text:
        try:
            source = Path(text).read_text(encoding="utf-8")
        except OSError as exc:
            raise ConfigError(
                f"{where}: cannot read template file {text}: {exc.strerror or exc}"
            ) from exc
    try:
        return template(source)
    except jinja2.TemplateSyntaxError as exc:
        raise ConfigError(
            f"{where}: not a valid Jinja2 template (line {exc.lineno}: {exc.message})"
        ) from exc


def import_function(spec: str, where: str) -> Render:
    """A route's `function` ("module:function", given the template variables, returning
    str or bytes) as a renderer; ConfigError (with the dotted key `where`) when it does
    not import or is not callable."""
    module, _, name = spec.partition(":")
    try:
        fn = getattr(importlib.import_module(module), name) if module and name else None
    except (ImportError, AttributeError) as exc:
        raise ConfigError(f"{where}: cannot import {spec!r}: {exc}") from exc
    if not callable(fn):
        raise ConfigError(f'{where}: {spec!r} is not a callable "module:function"')

    def render(v: dict[str, Any]) -> bytes:
        result = fn(v)
        return result.encode() if isinstance(result, str) else bytes(result)

    return render
