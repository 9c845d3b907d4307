"""HL7 v2 messages: a lazy parser, batch reader and acknowledgement builder.

HL7 v2.5.1 chapter 2 (control): message construction (2.5), escape sequences (2.7), batch
protocol (2.10.3), acknowledgements (2.9, MSA/ERR in 2.15). Pure functions, no I/O: the
MLLP connector frames bytes, this package reads them and writes the ACK bytes it sends back.

``parse_message`` raises :class:`HL7ParseError` and nothing else, whatever the input.
"""

from isthmus.formats.hl7v2.ack import (
    AckCode,
    ack_code,
    build_ack,
    recover_control_id,
    recover_identity,
)
from isthmus.formats.hl7v2.batch import Batch, BatchGroup, parse_batch, split_messages
from isthmus.formats.hl7v2.encoding import DEFAULT_ENCODING, EncodingChars
from isthmus.formats.hl7v2.errors import TABLE_0357, ErrorLocation, HL7ParseError
from isthmus.formats.hl7v2.escape import escape, unescape
from isthmus.formats.hl7v2.identity import (
    FRAMING_PREFIX,
    charge_keys,
    control_id_of,
    identity_of,
    is_identity,
    message_identity,
)
from isthmus.formats.hl7v2.message import Message, parse_message
from isthmus.formats.hl7v2.path import FieldPath, parse_path
from isthmus.formats.hl7v2.segment import Segment

__all__ = [
    "DEFAULT_ENCODING",
    "FRAMING_PREFIX",
    "TABLE_0357",
    "AckCode",
    "Batch",
    "BatchGroup",
    "EncodingChars",
    "ErrorLocation",
    "FieldPath",
    "HL7ParseError",
    "Message",
    "Segment",
    "ack_code",
    "build_ack",
    "charge_keys",
    "control_id_of",
    "escape",
    "identity_of",
    "is_identity",
    "message_identity",
    "parse_batch",
    "parse_message",
    "parse_path",
    "recover_control_id",
    "recover_identity",
    "split_messages",
    "unescape",
]
