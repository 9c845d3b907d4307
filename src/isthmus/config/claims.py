"""[claims] (issue 20): the X12 envelope ids, where outbound claim files go, and the days,
amounts and fee schedules the claim life cycle (flows/claim_*.py) works by."""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from isthmus.config.values import ConfigError, non_negative_decimal, subtable


@dataclass(frozen=True)
class ClaimSettings:
    """[claims] (issue 20): the 837/270/276 envelope ids (ISA06/GS02 `sender_id`, ISA08/GS03
    `receiver_id`, ISA15 `usage` P or T), where outbound X12 files go (`destination`: a
    file or sftp `[destinations.<name>]`; else the folder `outbound_dir`, "" = <data
    dir>/outbound/claims), a payer's expected turnaround before a 276 asks
    (`status_after_days`, per payer in `turnaround_days`), its appeal deadline (`appeal_days`,
    per payer in `appeal_deadline_days`), the write-off amount above which a second person
    approves (`write_off_threshold`), the underpayment tolerance per claim
    (`underpayment_tolerance`) and fee schedule CSVs per "payer/plan" (`fee_schedules`)."""

    sender_id: str = "ISTHMUS"
    receiver_id: str = "CLEARINGHOUSE"
    usage: str = "P"
    currency: str = "USD"
    outbound_dir: str = ""
    destination: str = ""  # a [destinations.<name>] of kind file or sftp, over outbound_dir
    status_after_days: int = 30
    appeal_days: int = 180
    write_off_threshold: Decimal = Decimal("100.00")
    underpayment_tolerance: Decimal = Decimal("1.00")
    turnaround_days: dict[str, int] = field(default_factory=dict)
    appeal_deadline_days: dict[str, int] = field(default_factory=dict)
    fee_schedules: dict[str, str] = field(default_factory=dict)


def _claim_days(v: Any, where: str) -> int:
    """A claim deadline or turnaround: whole days from 0 to 3660."""
    if isinstance(v, bool) or not isinstance(v, int) or not 0 <= v <= 3660:
        raise ConfigError(f"{where} must be a whole number of days from 0 to 3660, got {v!r}")
    return v


def claims_from_table(raw: dict[str, Any]) -> ClaimSettings:
    """The [claims] table, checked (its destination is checked once [destinations] is)."""
    d = ClaimSettings()
    usage = str(raw.get("usage", d.usage))
    if usage not in ("P", "T"):
        raise ConfigError(f"claims.usage must be P or T, got {usage!r}")
    return ClaimSettings(
        sender_id=str(raw.get("sender_id", d.sender_id)),
        receiver_id=str(raw.get("receiver_id", d.receiver_id)),
        usage=usage,
        currency=str(raw.get("currency", d.currency)),
        outbound_dir=str(raw.get("outbound_dir", "")),
        destination=str(raw.get("destination", "")),
        status_after_days=_claim_days(
            raw.get("status_after_days", d.status_after_days), "claims.status_after_days"
        ),
        appeal_days=_claim_days(raw.get("appeal_days", d.appeal_days), "claims.appeal_days"),
        write_off_threshold=non_negative_decimal(
            raw.get("write_off_threshold", "100.00"), "claims.write_off_threshold"
        ),
        underpayment_tolerance=non_negative_decimal(
            raw.get("underpayment_tolerance", "1.00"), "claims.underpayment_tolerance"
        ),
        turnaround_days={
            str(k): _claim_days(v, f"claims.turnaround_days.{k}")
            for k, v in subtable(raw, "turnaround_days").items()
        },
        appeal_deadline_days={
            str(k): _claim_days(v, f"claims.appeal_deadline_days.{k}")
            for k, v in subtable(raw, "appeal_deadline_days").items()
        },
        fee_schedules={str(k): str(v) for k, v in subtable(raw, "fee_schedules").items()},
    )
