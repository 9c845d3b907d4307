"""The ports between the flows and the adapters: the Protocols and the small value types
they speak, so that both sides import them and neither imports the other (DESIGN.md, the
dependency rule: flows reach adapters only through ports; connectors never import flows).

- `ports.erp`: the ERP (post journal batches, read balances and master data) and the
  outbox sink the ERP dispatcher delivers through, with the errors they raise.
- `ports.destination`: an outbound destination of the delivery engine (issue 18).
- `ports.supply`: the supply records the hub trades with the ERP (receipts, invoices,
  requisitions).

Ports import only `model`, `ledger`, the error tree and the store's port types; an
import-linter contract in pyproject.toml keeps it so.
"""
