"""Connectors: the edges of Isthmus, where bytes enter and leave.

Inbound connectors frame bytes and nothing else (MLLP for HL7 v2, HTTP for FHIR R4 and
webhooks, watched folders for X12 and CSV); they hand each payload to a handler and answer
the source with whatever that handler decides, so the ACK is sent only after the inbox has
stored the message. Outbound connectors deliver to the ERP and other destinations. Each is
reached through its port; none of them parses or posts anything.
"""
