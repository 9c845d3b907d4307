"""The JetStream layout of the NATS bus: its streams, consumers and key-value buckets.

What `NatsBus` declares when it connects; what exists already is kept (a stream by its
name, a durable consumer, a bucket), so every instance of a consumer group declares the
same layout:

- the log `<stream>`: subjects `<prefix>.<partition>.<hex(key)>`, file storage, WorkQueue
  retention (a message stays until it is acked or dead-lettered), the duplicate window
  `dedupe_window_s` over `Nats-Msg-Id`, `replicas` copies;
- the dead-letter stream `<stream>_DLQ` on the subject `<prefix>.dlq` (`nats_dead_letters`);
- one durable pull consumer per partition, `<stream>_p<n>` (`durable`), filter
  `<prefix>.<n>.*`, explicit ack, `ack_wait_s`, and no max_deliver of its own: the bus
  enforces it (JetStream's limit stops redelivery with only an advisory, a silent drop);
- the buckets `<stream>_RETRY` (retry state, `nats_retries`) and `<stream>_LEASES`
  (`nats_leases`), one value a key, file storage.
"""

from __future__ import annotations

import nats.js.errors
from nats.js.api import AckPolicy, ConsumerConfig, RetentionPolicy, StorageType, StreamConfig
from nats.js.client import JetStreamContext
from nats.js.kv import KeyValue


def durable(stream: str, partition: int) -> str:
    """The durable consumer of one partition of the log."""
    return f"{stream}_p{partition}"


async def declare(
    js: JetStreamContext,
    *,
    stream: str,
    dlq: str,
    prefix: str,
    dlq_subject: str,
    partitions: int,
    dedupe_window_s: float,
    ack_wait_s: float,
    replicas: int,
) -> tuple[KeyValue, KeyValue]:
    """Declare the streams, consumers and buckets (module docstring); the retry bucket and
    the lease bucket."""
    await _ensure_stream(
        js,
        StreamConfig(
            name=stream,
            subjects=[f"{prefix}.*.*"],
            storage=StorageType.FILE,
            retention=RetentionPolicy.WORK_QUEUE,
            duplicate_window=dedupe_window_s,
            num_replicas=replicas,
        ),
    )
    await _ensure_stream(
        js,
        StreamConfig(
            name=dlq,
            subjects=[dlq_subject],
            storage=StorageType.FILE,
            duplicate_window=dedupe_window_s,
            num_replicas=replicas,
        ),
    )
    for p in range(partitions):
        await js.add_consumer(
            stream,
            ConsumerConfig(
                durable_name=durable(stream, p),
                filter_subject=f"{prefix}.{p}.*",
                ack_policy=AckPolicy.EXPLICIT,
                ack_wait=ack_wait_s,
                max_deliver=-1,
            ),
        )
    retry = await _bucket(js, f"{stream}_RETRY", replicas)
    return retry, await _bucket(js, f"{stream}_LEASES", replicas)


async def _ensure_stream(js: JetStreamContext, config: StreamConfig) -> None:
    assert config.name is not None
    try:
        await js.stream_info(config.name)
    except nats.js.errors.NotFoundError:
        await js.add_stream(config)


async def _bucket(js: JetStreamContext, name: str, replicas: int) -> KeyValue:
    try:
        return await js.key_value(name)
    except nats.js.errors.BucketNotFoundError:
        return await js.create_key_value(
            bucket=name, history=1, storage=StorageType.FILE, replicas=replicas
        )
