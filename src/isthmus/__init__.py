"""Isthmus: a healthcare finance integration hub.

Clinical and billing messages come in (HL7 v2 over MLLP first); balanced, traceable journal
batches go out to the ERP. See DESIGN.md in the shared folder for the architecture.
"""

__version__ = "0.1.0"
