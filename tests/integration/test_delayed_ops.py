"""Requests and reads that outlive the moment they began: a topic deleted
while a slow consumer still holds its fetched file ranges must not stall the
broker's metadata loop once per partition held.
"""

import os
import socket
import time

from confluent_kafka import Producer
from confluent_kafka.admin import AdminClient

import gregor


def fill(cluster, topic, partitions, per_partition, value_size=100_000):
    prod = Producer({"bootstrap.servers": cluster.bootstrap, "linger.ms": 5,
                     "message.max.bytes": 2_000_000})
    value = b"x" * value_size
    for p in range(partitions):
        for _ in range(per_partition // value_size):
            prod.produce(topic, value, partition=p)
            prod.poll(0)
    assert prod.flush(30) == 0


def test_deleting_a_topic_held_by_a_slow_reader_does_not_wait(single):
    """A consumer that fetched several partitions and does not read its
    answer keeps every one of them referenced. Deleting their topic does not
    wait for such readers (the broker's main loop, which heartbeats, must
    not stall on a slow client): every partition is retired at once, the
    held ones left to their last reader."""
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
        # or left to its last reader.
        def retired(log, p):
            return f"held-{p}: removed while still being read" in log or \
                f"deleted partition held-{p}" in log
        gregor.eventually(lambda: all(retired(broker.log_text(), p) for p in range(parts)),
                          timeout=4.0 * parts, what="every partition retired", poll=0.05)
        elapsed = time.monotonic() - start
        held = broker.log_text().count("removed while still being read")
        assert held >= 2, f"only {held} partitions were still being read: nothing to measure"
        assert elapsed < 1.5, \
            f"retiring {held} held partitions took {elapsed:.1f}s: the broker waited for them"
    finally:
        slow.close()


SANITIZER_MARKS = ("AddressSanitizer", "LeakSanitizer", "runtime error:", "ThreadSanitizer")


def test_waiting_requests_survive_disconnects_deletions_and_shutdown(cluster):
    """A stress of the delayed paths: long polls (with and without fetch
    sessions) and acks=all produces that wait, whose clients vanish at random
    moments, on topics deleted under them, while appends wake them; then the
    brokers stop with requests still parked. Every broker keeps answering,
    exits cleanly, and (under a sanitizer build) reports nothing."""
    import random
    import threading

    from confluent_kafka.admin import NewTopic

    cluster.start(controllers=1, brokers=2)
    admin = AdminClient({"bootstrap.servers": cluster.bootstrap})
    stop, stopping = threading.Event(), threading.Event()
    errors = []
    batch = gregor.record_batch([(None, b"v")])

    def leaders(topic):
        md = cluster.metadata(cluster.brokers[0], topics=[topic])
        t = [t for t in md["topics"] if t["name"] == topic]
        if not t or t[0]["error_code"]:
            return {}
        return {p["partition_index"]: cluster.node(p["leader_id"])
                for p in t[0]["partitions"] if p["leader_id"] >= 0}

    def client(seed, topic):
        rnd = random.Random(seed)
        cid = 0
        while not stop.is_set():
            try:
                where = leaders(topic)
                if not where:
                    time.sleep(0.05)
                    continue
                part, node = rnd.choice(sorted(where.items(), key=lambda kv: kv[0]))
                with node.connect(timeout=5.0) as c:
                    for _ in range(rnd.randint(1, 4)):
                        cid += 1
                        kind = rnd.random()
                        if kind < 0.4:
                            c.send(gregor.fetch_request(
                                12, cid, [(topic, [(part, 0, 1 << 20)])],
                                session_epoch=rnd.choice((-1, 0)),
                                max_wait_ms=rnd.randint(1, 3000),
                                min_bytes=rnd.randint(1, 1 << 20)))
                        elif kind < 0.8:
                            c.send(gregor.produce_request(
                                8, cid, -1, {topic: {part: batch}},
                                timeout_ms=rnd.choice((-5, 0, 50, 1500, 1 << 30))))
                        else:
                            c.send(gregor.produce_request(8, cid, 1, {topic: {part: batch}}))
                        if rnd.random() < 0.5:
                            break  # gone with the request still in the broker
                        c.recv_frame(timeout=10.0)
            except (OSError, gregor.ProtocolError):
                pass  # brokers drop connections of deleted topics' requests: fine
            except Exception as e:  # noqa: BLE001 - reported below
                if not stopping.is_set():
                    errors.append(repr(e))
                return

    def churn():
        n = 0
        while not stop.is_set():
            n += 1
            name = f"churn{n % 2}"
            try:
                for f in admin.create_topics([NewTopic(name, 3, 2)],
                                             operation_timeout=10).values():
                    f.result()
                time.sleep(0.7)
                for f in admin.delete_topics([name], operation_timeout=10).values():
                    f.result()
                time.sleep(0.3)
            except Exception:  # noqa: BLE001 - a create racing its deletion
                time.sleep(0.2)

    cluster.create_topic("steady", 2, 2)
    threads = [threading.Thread(target=churn)]
    threads += [threading.Thread(target=client, args=(i, t))
                for i, t in enumerate(("steady", "steady", "churn0", "churn1", "steady", "churn0"))]
    for t in threads:
        t.start()
    time.sleep(8.0)
    for b in cluster.brokers:
        assert b.alive(), b.log_tail()
    stop.set()
    threads[0].join(30)  # no topic operation left in flight
    # Clients are still blocked on requests parked in the brokers, which
    # stop under them (closing their connections is expected from here on).
    stopping.set()
    for b in cluster.brokers:
        assert b.stop() == 0, b.log_tail()
    for t in threads:
        t.join(20)
    assert errors == []
    for b in cluster.brokers:
        log = b.log_text()
        marks = [m for m in SANITIZER_MARKS if m in log]
        assert not marks, f"{b}: {marks}\n{b.log_tail(120)}"


def socket_count(pid):
    n = 0
    for fd in os.listdir(f"/proc/{pid}/fd"):
        try:
            if os.readlink(f"/proc/{pid}/fd/{fd}").startswith("socket:"):
                n += 1
        except FileNotFoundError:
            pass
    return n


def test_long_polls_of_vanished_clients_let_go_at_once(single):
    """Clients that send a long poll with a far deadline and vanish do not
    keep their connections (and requests) in the broker until that
    deadline: each is closed as soon as its client is."""
    single.create_topic("far", 1)
    b = single.brokers[0]
    with b.connect() as c:  # the connection path is warm
        c.metadata()
    time.sleep(0.2)
    base = socket_count(b.pid)
    conns = [socket.create_connection(("127.0.0.1", b.port)) for _ in range(20)]
    for i, s in enumerate(conns):
        s.sendall(gregor.fetch_request(12, i + 1, [("far", [(0, 0, 1 << 20)])],
                                       max_wait_ms=120_000, min_bytes=1 << 30))
    gregor.eventually(lambda: socket_count(b.pid) >= base + 20, timeout=5.0,
                      what="the connections accepted", poll=0.05)
    time.sleep(0.3)  # parked
    for s in conns:
        s.close()
    gregor.eventually(lambda: socket_count(b.pid) <= base, timeout=3.0,
                      what="the broker closing the vanished clients' connections", poll=0.05)
    # A parked fetch of a client still there is answered as before.
    with b.connect() as c:
        resp = c.fetch(12, [("far", [(0, 0, 1 << 20)])], max_wait_ms=300, min_bytes=1)
        assert resp["error_code"] == 0
    assert b.alive()
