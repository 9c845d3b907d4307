"""837 out: claims from billing pass their edits, then leave in batches with our numbers.

Issue 20. An 837P/I file from the billing system is scrubbed (`formats.x12.claim_edits`:
envelope counts, CLM02 = line charges, NPI check digit, required loops, code sets,
duplicate). Each claim gets a state (`flows.claim_life`, keyed by CLM01): a claim that
fails stays ``created`` with one ``claim_edits`` work item in queue ``claim-edits`` naming
each failure by segment, position and element (codes only, no PHI); a clean one becomes
``scrubbed``, then all clean claims go out together as one 837 interchange
(`formats.x12.claim_batch`) with a new ISA13 and new GS06/ST02 from a counter kept in the
store (flow state ``claims/control``, advanced in the same transaction) and become
``submitted``, with the numbers a 999 will name.

Outbound files go through :class:`X12Sender`, a port of this flow; the hub wires the file
implementation (`connectors.claim_files.FileSender`) until these sends are routed through
`[destinations.<name>]` (issue 18, SFTP or file). The file is written inside the store
transaction, before commit: if the write fails nothing is recorded as submitted; if the
commit fails after the write, the same claims go again on the retry and the duplicate edit
keeps them once (their digest is recorded only with the commit).

A claim sent again under the same CLM01 must be a replacement or void (CLM05-3 7 or 8)
of a claim that is corrected, rejected or denied; a frequency-1 claim whose number is
already in flight fails the duplicate edit.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Final, Protocol

from isthmus.config import ClaimSettings
from isthmus.flows import claim_life as life
from isthmus.formats.x12.claim_batch import OutboundBatch, build_837
from isthmus.formats.x12.claim_edits import DUPLICATE, EditFailure, ScrubbedClaim, scrub
from isthmus.formats.x12.reader import Delimiters
from isthmus.store.ports import ClaimState, Store, Tx

QUEUE: Final = "claim-edits"
KIND: Final = "claim_edits"
COUNTER: Final = "claims/control"
RESENDABLE: Final = frozenset({life.CREATED, life.CORRECTED, life.REJECTED, life.DENIED})


class X12Sender(Protocol):
    """Where outbound X12 (837, 270, 276) goes: returns a reference to what was sent (a
    file name, a remote path), never patient data."""

    def send(self, *, name: str, kind: str, body: bytes) -> str: ...


@dataclass
class Submission:
    """What one 837 file from billing became."""

    clean: list[str] = field(default_factory=list)  # CLM01s submitted
    failed: dict[str, list[str]] = field(default_factory=dict)  # CLM01 -> edit failures
    sent: str = ""  # the sender's reference of the outbound file, "" when none left
    interchange_control: str = ""


def next_controls(tx: Tx, n: int = 1) -> int:
    """Reserve ``n`` control numbers (ISA13, GS06 and ST02 all count from it) from the
    persisted counter; returns the first. 1..999999999, then round again (X12.5)."""
    raw = tx.load_state(COUNTER)
    first = int(raw.decode()) + 1 if raw else 1
    last = first + n - 1
    if last > 999_999_999:
        first, last = 1, n
    tx.save_state(COUNTER, str(last).encode())
    return first


class _Sent(Mapping[str, str]):
    """CLM01 -> digest of the claim last sent under it, read from the claim states."""

    def __init__(self, tx: Tx) -> None:
        self._tx = tx

    def __getitem__(self, key: str) -> str:
        got = self._tx.get_claim_state(key)
        digest = _body(got).get("digest", "") if got else ""
        if not digest or got is None or got.state == life.CREATED:
            raise KeyError(key)
        return str(digest)

    def __iter__(self) -> Iterator[str]:
        return iter(())

    def __len__(self) -> int:
        return 0


def _body(state: ClaimState | None) -> dict[str, object]:
    if state is None or not state.body:
        return {}
    got: dict[str, object] = json.loads(state.body)
    return got


def plan_of(c: ScrubbedClaim) -> str:
    """The subscriber's plan as the 837 names it: SBR03 (group or policy number), else
    SBR04 (group name); what a "payer/plan" fee schedule is chosen by."""
    es = c.delimiters.element
    for seg in c.subscriber:
        e = seg.split(es)
        if e[0] == "SBR":
            return (e[3] if len(e) > 3 and e[3] else e[4] if len(e) > 4 else "").strip()
    return ""


def claim_body(c: ScrubbedClaim) -> bytes:
    """What a claim state keeps of its claim: the segments to rebuild it (276, resubmit)."""
    d = c.delimiters
    return json.dumps(
        {
            "digest": c.digest,
            "guide": c.guide,
            "kind": c.kind,
            "plan": plan_of(c),
            "delimiters": [d.element, d.repetition, d.component, d.segment],
            "header": c.header,
            "billing": c.billing,
            "subscriber": c.subscriber,
            "patient": c.patient,
            "claim": c.claim,
        }
    ).encode()


def claim_from_body(state: ClaimState) -> ScrubbedClaim:
    """The clean claim a state was submitted with (for a 276 or a resubmission)."""
    b = _body(state)
    es, rs, cs, term = (str(x) for x in b["delimiters"])  # type: ignore[attr-defined]
    return ScrubbedClaim(
        kind=str(b["kind"]),
        guide=str(b["guide"]),
        patient_control_number=state.claim_key,
        payer_id=state.payer_id,
        total_charge=state.total_charge,
        frequency=state.frequency,
        payer_claim_control_number=state.payer_claim_id,
        digest=str(b["digest"]),
        failures=(),
        delimiters=Delimiters(es, rs, cs, term),
        header=tuple(b["header"]),  # type: ignore[arg-type]
        billing=tuple(b["billing"]),  # type: ignore[arg-type]
        subscriber=tuple(b["subscriber"]),  # type: ignore[arg-type]
        patient=tuple(b["patient"]),  # type: ignore[arg-type]
        claim=tuple(b["claim"]),  # type: ignore[arg-type]
    )


def edits_detail(failures: tuple[EditFailure, ...] | list[EditFailure]) -> str:
    """The edit failures as one line, separated by semicolons."""
    return "; ".join(str(f) for f in failures)


def submit_837(
    store: Store,
    data: bytes | str,
    *,
    settings: ClaimSettings,
    sender: X12Sender,
    now: float,
    source: str = "",
    account_of: Mapping[str, str] | None = None,
    actor: str = "hub",
) -> Submission:
    """Scrub an 837 from billing, open edit items, send the clean claims in one batch."""
    out = Submission()
    with store.transaction() as tx:
        claims = scrub(data, _Sent(tx))
        clean: list[ScrubbedClaim] = []
        for c in claims:
            pcn = c.patient_control_number or "(none)"
            failures = list(c.failures)
            old = tx.get_claim_state(pcn)
            if (
                old is not None
                and old.state not in RESENDABLE
                and not any(f.code == DUPLICATE for f in failures)
            ):
                failures.append(
                    EditFailure(
                        code=DUPLICATE,
                        text=f"claim number already {old.state}: send a "
                        "replacement (CLM05-3 7) once it is corrected, rejected or denied",
                        segment_id="CLM",
                        element=1,
                        loop="2300",
                    )
                )
            if old is not None and old.state not in RESENDABLE:
                state = old  # in flight: leave it as it is, the item says why
            elif old is not None and old.state == life.CORRECTED:
                state = old
            else:
                state = life.create(
                    tx,
                    claim_key=pcn,
                    payer_id=c.payer_id,
                    total_charge=c.total_charge,
                    currency=settings.currency,
                    now=now,
                    causation_id=source,
                    account_number=(account_of or {}).get(pcn, pcn),
                    frequency=c.frequency or "1",
                    payer_claim_id=c.payer_claim_control_number,
                    body=claim_body(c),
                    actor=actor,
                )
            if failures:
                detail = edits_detail(failures)
                out.failed[pcn] = [str(f) for f in failures]
                life.note(tx, state, "edits_failed", now=now, causation_id=source, detail=detail)
                tx.add_work_item(
                    kind=KIND,
                    queue=QUEUE,
                    key=pcn,
                    event_id=f"claim-edits/{pcn}/{c.digest[:16]}",
                    correlation_id=f"claims/{pcn}",
                    detail=detail,
                    envelope=b"",
                    now=now,
                )
                continue
            life.advance(
                tx,
                state,
                "edits_passed",
                now=now,
                causation_id=source,
                detail=f"{c.guide}: every edit passed",
                body=claim_body(c),
                total_charge=c.total_charge,
                frequency=c.frequency or "1",
            )
            clean.append(c)
        if clean:
            batch, out.sent = send_batch(
                tx, clean, settings=settings, sender=sender, now=now, source=source
            )
            out.clean = [p.patient_control_number for p in batch.placements]
            out.interchange_control = batch.interchange_control
    return out


def send_batch(
    tx: Tx,
    claims: list[ScrubbedClaim],
    *,
    settings: ClaimSettings,
    sender: X12Sender,
    now: float,
    source: str,
) -> tuple[OutboundBatch, str]:
    """Number, build and send clean claims; mark each submitted with its controls.
    Returns the batch and the sender's reference."""
    guides = len({c.guide for c in claims})
    first = next_controls(tx, guides)
    at = datetime.fromtimestamp(now, UTC)
    batch = build_837(
        claims,
        sender=settings.sender_id,
        receiver=settings.receiver_id,
        interchange_control=first,
        group_control=first,
        transaction_control=first % 10000 or 1,
        reference=f"B{first}",
        at=at,
        usage=settings.usage,
    )
    ref = sender.send(
        name=f"837-{batch.interchange_control}.x12", kind="837", body=batch.text.encode()
    )
    sets: dict[str, list[str]] = {}
    for p in batch.placements:
        state = tx.get_claim_state(p.patient_control_number)
        if state is None:
            continue
        sets.setdefault(sent_set_state(p.group_control, p.transaction_control), []).append(
            p.patient_control_number
        )
        life.advance(
            tx,
            state,
            "submitted",
            now=now,
            causation_id=source or ref,
            detail=f"837 {p.interchange_control}/{p.group_control}/"
            f"{p.transaction_control} sent as {ref}",
            controls=f"{p.interchange_control}/{p.group_control}/{p.transaction_control}",
            submitted_at=now,
        )
    for name, keys in sets.items():  # what a 999 naming the set applies to (claim_acks)
        tx.save_state(name, " ".join(keys).encode())
    # what a 277CA rejecting the batch (2200B TRN02 = our BHT03) applies to (claim_acks)
    tx.save_state(
        sent_batch_state(f"B{first}"),
        " ".join(p.patient_control_number for p in batch.placements).encode(),
    )
    return batch, ref


def sent_batch_state(reference: str) -> str:
    """The flow state naming the claims of one 837 batch by its BHT03 reference, read when a
    277CA answers the batch at the receiver or provider level (`flows.claim_acks`)."""
    return f"claims/batch/{reference.strip()}"


def sent_set_state(group_control: str, set_control: str) -> str:
    """The flow state naming the claims that left in one set (our GS06 and ST02), read
    when a 999 names that set (`flows.claim_acks`)."""
    return f"claims/sent/{group_control.strip().lstrip('0') or '0'}/{set_control.strip()}"
