"""The durable event log between ingest and the flows, behind one port (`bus.ports.Bus`)."""
