"""Workforce feeds (HCM / scheduling): timecard files and webhook bodies -> events. Pure."""

from isthmus.formats.workforce.events import (
    TYPES,
    WebhookError,
    decode_webhook,
    event_id,
    keyed,
)
from isthmus.formats.workforce.timecard import TimecardFile, detect, parse_timecards

__all__ = [
    "TYPES",
    "TimecardFile",
    "WebhookError",
    "decode_webhook",
    "detect",
    "event_id",
    "keyed",
    "parse_timecards",
]
