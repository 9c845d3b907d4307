"""Format codecs: bytes from the outside world in, canonical model events out.

Each subpackage (``hl7v2``, and later ``x12``, ``fhir``, ``csv``) is pure: no I/O, no
sockets, no database. Parsers raise one documented error type on bad input so the inbox can
dead-letter the message and answer the sender with a negative acknowledgement.
"""
