"""Reconciliation: billing vs GL, 835 vs deposits, PO-receipt-invoice match (later issues)."""
