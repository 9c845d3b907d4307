"""The demo's workforce week: a timecard export for two departments (ED and LAB), seven
days from 2 November 2026, as an HCM writes it (names included: the hub drops them).

One shift carries overtime nobody approved (it waits in queue `workforce`), one is worked
the day after the employee's licence expired (it waits in queue `compliance`); the rest
accrue. Monthly budgets make the ED cross its 90% alert and leave LAB well under.
"""

from __future__ import annotations

from datetime import date, timedelta
from decimal import Decimal
from typing import Final

HEADER: Final = (
    "shift_id,employee_id,employee_name,department,work_date,regular_hours,"
    "overtime_hours,differential_hours,on_call_hours,overtime_approval,"
    "credential_expires_on"
)
START: Final = date(2026, 11, 2)
BUDGETS: Final = {"ED": Decimal("4000.00"), "LAB": Decimal("6000.00")}
# employee id, name (never stored), department, night differential hours per shift
STAFF: Final = (
    ("E1001", "Avery Quinn", "ED", 2),
    ("E1002", "Blake Rowe", "ED", 0),
    ("E2001", "Casey Stone", "LAB", 0),
    ("E2002", "Drew Tate", "LAB", 0),
)
UNAPPROVED: Final = ("E1002", 4)  # day index of 3 overtime hours with no approval
APPROVED: Final = ("E2001", 2)  # 2 overtime hours approved as OT-55
EXPIRED: Final = ("E2002", date(2026, 11, 5))  # licence expiry; the shift of 6 Nov is held


def timecards() -> bytes:
    """Five weekday shifts of 8 hours per employee, as CSV."""
    rows = [HEADER]
    for emp, name, dept, diff in STAFF:
        for i in range(5):
            day = START + timedelta(days=i)
            ot, approval = "", ""
            if (emp, i) == UNAPPROVED:
                ot = "3"
            if (emp, i) == APPROVED:
                ot, approval = "2", "OT-55"
            expires = str(EXPIRED[1]) if emp == EXPIRED[0] else ""
            rows.append(
                f"S-{emp}-{day:%m%d},{emp},{name},{dept},{day},8,{ot},"
                f"{diff or ''},,{approval},{expires}"
            )
    return ("\n".join(rows) + "\n").encode()
