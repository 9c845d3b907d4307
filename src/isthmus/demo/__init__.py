"""Demonstration data: a deterministic, synthetic hospital day of HL7 v2.5.1 traffic.

Nothing here does I/O and nothing here names a real person. The generator feeds the `demo`
command, the end-to-end tests and the throughput benchmarks with the same reproducible
stream of registrations, charges, credits, merges and deliberately bad messages.
"""
