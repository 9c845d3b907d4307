"""Durable state behind one port (`store.ports.Store`): inbox, accounts, ledger, outbox."""
