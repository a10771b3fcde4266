"""
The latency baseline: two plain aiokafka hops, each write acknowledged, no decoding and no state.

    python bench/relay.py BROKER IN_TOPIC OUT_TOPIC

Run by bench/latency_bench.py as a process of its own, as the worker is. Like the worker it reads
in batches, writes each batch with acks=all and waits for the acknowledgement before it reads on,
in two hops (IN_TOPIC -> IN_TOPIC.hop -> OUT_TOPIC, keys kept) inside one process; it commits
nothing (the bench reads from the end). What it leaves out is everything statusflow adds: decoding,
the join, the state stores, the changelog write before the output write.
"""

from __future__ import annotations

import asyncio
import sys

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer


async def hop(broker: str, source: str, target: str) -> None:
    """Copy ``source`` to ``target`` for ever: batches in, one acknowledged write per batch out."""
    consumer = AIOKafkaConsumer(
        source,
        bootstrap_servers=broker,
        group_id=f"relay-{source}",
        enable_auto_commit=False,
        auto_offset_reset="earliest",
    )
    producer = AIOKafkaProducer(bootstrap_servers=broker, acks="all", enable_idempotence=True)
    await consumer.start()
    await producer.start()
    while True:
        batch = await consumer.getmany(timeout_ms=200, max_records=1000)
        sends = [
            await producer.send(target, record.value, key=record.key)
            for records in batch.values()
            for record in records
        ]
        await asyncio.gather(*sends)


async def relay(broker: str, source: str, target: str) -> None:
    """Run both hops until the process is killed."""
    await asyncio.gather(hop(broker, source, f"{source}.hop"), hop(broker, f"{source}.hop", target))


if __name__ == "__main__":
    asyncio.run(relay(*sys.argv[1:4]))
