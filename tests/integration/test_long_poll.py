"""Fetch long polls: a consumer waiting on an empty partition is woken by
the append (not by a polling tick), idle long polls cost the broker almost
no CPU, and a fetch with nothing to read answers after max_wait_ms.
"""

import os
import statistics
import threading
import time

from confluent_kafka import Consumer, Producer, TopicPartition

import gregor
from gregor import fetch_v4, parse_fetch_v4

API_FETCH = gregor.API_FETCH
ERR_NONE = 0


def consumer(cluster, topic, partition=0, offset=0, wait_ms=500):
    c = Consumer({"bootstrap.servers": cluster.bootstrap, "group.id": "unused",
                  "enable.auto.commit": False, "fetch.wait.max.ms": wait_ms})
    c.assign([TopicPartition(topic, partition, offset)])
    return c


def context_switches(pid):
    """Voluntary and involuntary context switches of every thread of a
    process: how often it woke up."""
    n = 0
    for tid in os.listdir(f"/proc/{pid}/task"):
        try:
            with open(f"/proc/{pid}/task/{tid}/status") as f:
                for line in f:
                    if line.startswith(("voluntary_ctxt_switches", "nonvoluntary_ctxt_switches")):
                        n += int(line.split()[1])
        except FileNotFoundError:
            pass
    return n


def cpu_seconds(pid):
    """utime + stime of a process, in seconds."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    # fields[0] is the state (field 3): utime and stime are fields 14 and 15.
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def test_consumer_woken_by_produce(single):
    """A consumer parked in a long poll gets a message soon after its produce
    is acknowledged: the append wakes the fetch."""
    topic = "wake"
    single.create_topic(topic)
    cons = consumer(single, topic)
    prod = Producer({"bootstrap.servers": single.bootstrap, "linger.ms": 0})
    try:
        # Connected and parked: the first consume returns nothing.
        assert [m for m in cons.consume(10, 1.0) if not m.error()] == []
        got, lat = [], []
        acked = {}

        def receive():
            while len(got) < 20:
                for m in cons.consume(1, 0.2):
                    if not m.error():
                        got.append((m.value(), time.monotonic()))

        t = threading.Thread(target=receive)
        t.start()
        try:
            for i in range(20):
                time.sleep(0.2)  # the consumer is parked again
                v = b"m%d" % i

                def ack(err, msg, v=v):
                    assert err is None
                    acked[v] = time.monotonic()

                prod.produce(topic, value=v, partition=0, on_delivery=ack)
                assert prod.flush(10) == 0
        finally:
            t.join(30)
        assert not t.is_alive()
        assert [v for v, _ in got] == [b"m%d" % i for i in range(20)]
        lat = [(when - acked[v]) * 1000 for v, when in got]
        p50 = statistics.median(lat)
        print(f"produce ack -> receive: p50 {p50:.1f} ms, max {max(lat):.1f} ms")
        assert p50 < 50, lat
    finally:
        cons.close()


def test_idle_long_polls_cost_little_cpu(single):
    """Three consumers long-polling empty partitions for 10 s: the broker
    sleeps between their fetches instead of rechecking every few ms."""
    topic = "idle"
    single.create_topic(topic, partitions=3)
    pid = single.brokers[0].pid
    conss = [consumer(single, topic, partition=i) for i in range(3)]
    stop = threading.Event()

    def poll(c):
        while not stop.is_set():
            c.consume(10, 0.2)

    threads = [threading.Thread(target=poll, args=(c,)) for c in conss]
    try:
        for t in threads:
            t.start()
        time.sleep(1.0)  # connected, metadata fetched, parked
        before, switches = cpu_seconds(pid), context_switches(pid)
        time.sleep(10.0)
        used = cpu_seconds(pid) - before
        switches = context_switches(pid) - switches
        print(f"broker over 10 s of idle long polls by 3 consumers: {used:.3f} s CPU, "
              f"{switches} context switches")
        assert used < 0.3
        # Each consumer fetches about twice a second (fetch.wait.max.ms 500):
        # a few hundred wake-ups in 10 s, where a polling tick makes thousands.
        assert switches < 1500
    finally:
        stop.set()
        for t in threads:
            t.join(10)
        for c in conss:
            c.close()


def test_raw_fetch_waits_max_wait_ms(single):
    """Nothing to read: the answer comes after max_wait_ms, empty and
    without error."""
    topic = "raw"
    single.create_topic(topic)
    b = single.brokers[0]
    with gregor.KafkaConnection(b.host, b.port) as c:
        for cid in (1, 2):
            started = time.monotonic()
            c.send(gregor.encode_request(API_FETCH, 4, cid, fetch_v4(topic, 0, 0, 300)))
            got_cid, parts = parse_fetch_v4(c.recv_frame())
            elapsed = (time.monotonic() - started) * 1000
            print(f"empty fetch, max_wait_ms 300: answered after {elapsed:.0f} ms")
            assert got_cid == cid
            assert parts == [{"partition": 0, "error_code": ERR_NONE, "high_watermark": 0,
                              "records": b""}]
            assert 250 <= elapsed <= 1000


def test_min_bytes_waits_for_enough_data(single):
    """min_bytes is counted in bytes: a small append does not end the wait,
    enough data does; the deadline answers with what there is."""
    topic = "minb"
    single.create_topic(topic)
    b = single.brokers[0]
    prod = Producer({"bootstrap.servers": single.bootstrap, "linger.ms": 0})
    with gregor.KafkaConnection(b.host, b.port, timeout=10.0) as c:
        # One small batch is far below min_bytes: the fetch runs to its deadline.
        started = time.monotonic()
        c.send(gregor.encode_request(API_FETCH, 4, 1, fetch_v4(topic, 0, 0, 1500,
                                                                min_bytes=20000)))
        time.sleep(0.2)
        prod.produce(topic, value=b"x", partition=0)
        assert prod.flush(10) == 0
        _, parts = parse_fetch_v4(c.recv_frame())
        elapsed = (time.monotonic() - started) * 1000
        assert elapsed >= 1400
        assert parts[0]["error_code"] == ERR_NONE and parts[0]["high_watermark"] == 1
        assert len(parts[0]["records"]) > 0
        # Enough bytes arrive well before the deadline: answered early.
        started = time.monotonic()
        c.send(gregor.encode_request(API_FETCH, 4, 2, fetch_v4(topic, 0, 1, 5000,
                                                                min_bytes=20000)))
        time.sleep(0.2)
        prod.produce(topic, value=b"y" * 30000, partition=0)
        assert prod.flush(10) == 0
        _, parts = parse_fetch_v4(c.recv_frame())
        elapsed = (time.monotonic() - started) * 1000
        assert elapsed < 3000
        assert parts[0]["high_watermark"] == 2 and len(parts[0]["records"]) >= 20000


def test_client_gone_while_waiting(single):
    """A client that disconnects during a long poll costs nothing lasting:
    the broker keeps serving and answers the next fetch."""
    topic = "gone"
    single.create_topic(topic)
    b = single.brokers[0]
    for i in range(5):
        c = gregor.KafkaConnection(b.host, b.port)
        c.send(gregor.encode_request(API_FETCH, 4, 1, fetch_v4(topic, 0, 0, 400)))
        c.close()
    prod = Producer({"bootstrap.servers": single.bootstrap})
    prod.produce(topic, value=b"after", partition=0)  # wakes the orphans
    assert prod.flush(10) == 0
    with gregor.KafkaConnection(b.host, b.port) as c:
        c.send(gregor.encode_request(API_FETCH, 4, 7, fetch_v4(topic, 0, 0, 400)))
        cid, parts = parse_fetch_v4(c.recv_frame())
        assert cid == 7 and parts[0]["high_watermark"] == 1 and parts[0]["records"]
    time.sleep(0.6)  # the orphans' deadlines pass
    assert b.alive()


def test_shutdown_answers_waiting_fetches(single):
    """A broker stopping with long polls parked answers them at once and
    exits cleanly, without waiting for their deadlines."""
    topic = "stop"
    single.create_topic(topic)
    b = single.brokers[0]
    conns = [gregor.KafkaConnection(b.host, b.port, timeout=10.0) for _ in range(3)]
    try:
        for c in conns:
            c.send(gregor.encode_request(API_FETCH, 4, 1, fetch_v4(topic, 0, 0, 30000)))
        time.sleep(0.3)  # parked
        started = time.monotonic()
        assert b.stop() == 0
        assert time.monotonic() - started < 5
        for c in conns:
            cid, parts = parse_fetch_v4(c.recv_frame())
            assert cid == 1 and parts[0]["error_code"] == ERR_NONE
    finally:
        for c in conns:
            c.close()
