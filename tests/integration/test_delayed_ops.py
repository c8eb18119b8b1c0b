"""Requests and reads that outlive the moment they began: a topic deleted
while a slow consumer still holds its fetched file ranges must not stall the
broker's metadata loop once per partition held.
"""

import socket
import time

import pytest
from confluent_kafka import Producer
from confluent_kafka.admin import AdminClient

import gregor


@pytest.fixture
def single(cluster):
    cluster.start(controllers=1, brokers=1)
    return cluster


def fill(cluster, topic, partitions, per_partition, value_size=100_000):
    prod = Producer({"bootstrap.servers": cluster.bootstrap, "linger.ms": 5,
                     "message.max.bytes": 2_000_000})
    value = b"x" * value_size
    for p in range(partitions):
        for _ in range(per_partition // value_size):
            prod.produce(topic, value, partition=p)
            prod.poll(0)
    assert prod.flush(30) == 0


def test_deleting_a_topic_held_by_a_slow_reader_waits_once(single):
    """A consumer that fetched several partitions and does not read its
    answer keeps every one of them referenced. Deleting their topic waits
    for such readers once, not once per partition: all of them are retired
    within about one wait (2 s), not one wait each."""
    parts = 5
    single.create_topic("held", parts)
    fill(single, "held", parts, 1_000_000)
    broker = single.brokers[0]
    slow = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    slow.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    slow.connect(("127.0.0.1", broker.port))
    try:
        # Names are used (v12), so no topic id lookup is needed.
        slow.sendall(gregor.fetch_request(
            12, 1, [("held", [(p, 0, 4 << 20) for p in range(parts)])],
            max_bytes=64 << 20))
        time.sleep(0.5)  # answered and queued; far more than the socket holds

        admin = AdminClient({"bootstrap.servers": single.bootstrap})
        start = time.monotonic()
        for f in admin.delete_topics(["held"], operation_timeout=15).values():
            f.result()
        # Each partition is either deleted at once (its answer was sent)
        # or, after the one shared wait, left to its last reader.
        def retired(log, p):
            return f"held-{p}: removed while still being read" in log or \
                f"deleted partition held-{p}" in log
        gregor.eventually(lambda: all(retired(broker.log_text(), p) for p in range(parts)),
                          timeout=4.0 * parts, what="every partition retired", poll=0.05)
        elapsed = time.monotonic() - start
        held = broker.log_text().count("removed while still being read")
        assert held >= 2, f"only {held} partitions were still being read: nothing to measure"
        assert elapsed < 2.0 * held - 1.5, \
            f"retiring {held} held partitions took {elapsed:.1f}s: one wait per partition"
    finally:
        slow.close()
