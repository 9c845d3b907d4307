"""How a code read from a message is shown in a work item: as itself when it looks like a
code, else by a digest (issue 16, no echo).

An unmapped FT1-6 transaction type, FT1-7 charge code or FT1-13 department becomes a work
item that names the code, so that someone adds the mapping row: its key, its ref
(`mapping:<table>/<code>`) and its detail text. Every role reads work items. When the
sender typed a name into that field ("SMITHSON, JANE" in FT1-13), repeating the code would
repeat the name, so a code is shown as it is only when it looks like one:

- 1 to `MAX_LENGTH[table]` characters: 20 for charge codes and transaction types from HL7
  v2 fields (HL7 v2.5.1 chapter 2A, CE and CWE: the identifier component is at most 20
  characters), 64 for departments, facilities and payees, which may also be FHIR ids (R4
  2.24.0.0 id);
- ASCII letters and digits, with `. - _ / : + * #` inside: no space, no comma, no caret,
  nothing a written name needs (names have a space or a comma between their parts).

Anything else is shown as ``<not a code: N characters, sha256 0123456789ab>``: the digest
tells two such values apart, and the value itself stays in the stored message, which only
the roles that read patient data open (governance/phi_access.py). A digest of a name can be
confirmed by someone who guesses the name: it keeps the name out of sight, it is not a
secret. A name typed without a space ("SMITHSON") looks like a code and is shown; nothing
can tell it from one.

Pure: no I/O.
"""

from __future__ import annotations

import hashlib
import re
from typing import Final

DEFAULT_MAX: Final = 20
MAX_LENGTH: Final[dict[str, int]] = {
    "charge_codes": 20,
    "transaction_types": 20,
    # departments, facilities and payees may be FHIR ids (a 36-character Organization UUID)
    "department_cost_center": 64,
    "facility_company": 64,
    "payee_company": 64,
}
_CODE: Final = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9._\-/:+*#]*[A-Za-z0-9])?")


def looks_like_code(table: str, value: str) -> bool:
    """True when `value` may be shown as it is (module docstring)."""
    return len(value) <= MAX_LENGTH.get(table, DEFAULT_MAX) and _CODE.fullmatch(value) is not None


def digest_of(value: str) -> str:
    """The first 12 hex digits of the value's SHA-256: tells two non-codes apart without
    showing them."""
    return hashlib.sha256(value.encode("utf-8", "surrogateescape")).hexdigest()[:12]


def shown(table: str, value: str) -> str:
    """`value` itself when it looks like a code, else its length and digest."""
    if looks_like_code(table, value):
        return value
    return f"<not a code: {len(value)} characters, sha256 {digest_of(value)}>"


def masked(table: str, code: str, text: str) -> tuple[str, str]:
    """(the code as shown, `text` with every copy of the code replaced by it): for a work
    item's key/ref and detail, whatever the caller wrote into the detail."""
    display = shown(table, code)
    if display == code or not code:
        return code, text
    return display, text.replace(repr(code), display).replace(code, display)


__all__ = ["DEFAULT_MAX", "MAX_LENGTH", "digest_of", "looks_like_code", "masked", "shown"]
