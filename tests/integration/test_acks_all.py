"""Produce with acks=all: the request waits in the broker's purgatory until the
high watermark covers its records, as Kafka's delayed produce does.

There is no follower replication yet, so a partition whose ISR has another
broker never sees its high watermark move: such a produce times out
(REQUEST_TIMED_OUT), unless the ISR shrinks to the leader alone (the
controller fences the follower), which must wake it. min.insync.replicas is
checked before the append (NOT_ENOUGH_REPLICAS, nothing appended) and while
waiting (NOT_ENOUGH_REPLICAS_AFTER_APPEND), capped by the replication factor
as Kafka's effective min ISR is. A topic deleted under a waiting produce, and
a broker shutting down, answer it at once.
"""

import time

from gregor import (ERR_NONE, ERR_UNKNOWN_TOPIC_OR_PARTITION, parse_produce_response,
                    produce_request, record_batch)

ERR_REQUEST_TIMED_OUT = 7
ERR_NOT_ENOUGH_REPLICAS = 19
ERR_NOT_ENOUGH_REPLICAS_AFTER_APPEND = 20

VERSION = 8
# How long the controller waits for a broker's heartbeat before fencing it.
SESSION_TIMEOUT_MS = 1500


def batch(n, tag=b"v"):
    return record_batch([(None, tag + b"%d" % i) for i in range(n)])


def send_produce(conn, cid, acks, topics, timeout_ms=10000):
    """topics: {name: {partition: records}}; the answer is read separately."""
    conn.send(produce_request(VERSION, cid, acks, topics, timeout_ms))


def read_produce(conn, cid, timeout=None):
    resp = parse_produce_response(conn.recv_frame(timeout), VERSION)
    assert resp["correlation_id"] == cid
    return resp["topics"]


def produce(conn, cid, acks, topic, records, partition=0, timeout_ms=10000):
    """One partition's answer and the round trip's seconds."""
    started = time.monotonic()
    send_produce(conn, cid, acks, {topic: {partition: records}}, timeout_ms)
    part = read_produce(conn, cid, timeout=timeout_ms / 1000 + 10)[topic][partition]
    return part, time.monotonic() - started


def partitions(cluster, topic):
    md = cluster.metadata(cluster.brokers[0], topics=[topic])
    t = next(t for t in md["topics"] if t["name"] == topic)
    return {p["partition_index"]: p for p in t["partitions"]}


def replicated(cluster, topic, partition=0):
    """(leader, follower) of a partition whose ISR holds both brokers."""
    p = partitions(cluster, topic)[partition]
    assert sorted(p["isr_nodes"]) == sorted(b.node_id for b in cluster.brokers), p
    leader = cluster.node(p["leader_id"])
    follower = next(b for b in cluster.brokers if b is not leader)
    return leader, follower


def test_sole_replica_answers_at_once(cluster):
    cluster.start(controllers=1, brokers=1)
    cluster.create_topic("solo", 1, 1)
    cluster.create_topic("solo-min2", 1, 1, config={"min.insync.replicas": "2"})
    b = cluster.brokers[0]
    with b.connect() as c:
        part, took = produce(c, 1, -1, "solo", batch(3))
        assert part["error_code"] == ERR_NONE and part["base_offset"] == 0, part
        assert part["log_start_offset"] == 0
        assert took < 0.5, f"acks=all on a sole in-sync replica took {took:.3f}s"
        part, took = produce(c, 2, -1, "solo", batch(2))
        assert part["error_code"] == ERR_NONE and part["base_offset"] == 3, part
        assert took < 0.5

        # min.insync.replicas above the replication factor is capped by it,
        # as Kafka's effective min ISR is: one replica is enough here.
        part, took = produce(c, 3, -1, "solo-min2", batch(1))
        assert part["error_code"] == ERR_NONE and part["base_offset"] == 0, part
        assert took < 0.5


def test_unreplicated_produce_times_out_keeps_records_and_sees_deletion(cluster):
    cluster.start(controllers=1, brokers=2)
    cluster.create_topic("pair", 1, 2)
    leader, _ = replicated(cluster, "pair")
    with leader.connect(timeout=10.0) as c:
        # One partition waits for a follower that never replicates; one
        # that does not exist fails at once and keeps its error.
        started = time.monotonic()
        send_produce(c, 1, -1, {"pair": {0: batch(3), 7: batch(1)}}, timeout_ms=1000)
        parts = read_produce(c, 1)["pair"]
        took = time.monotonic() - started
        assert parts[0]["error_code"] == ERR_REQUEST_TIMED_OUT, parts
        assert parts[0]["base_offset"] == 0 and parts[0]["log_start_offset"] == 0, parts
        assert parts[7]["error_code"] == ERR_UNKNOWN_TOPIC_OR_PARTITION, parts
        assert 0.9 <= took < 3.0, f"timeout_ms=1000 answered after {took:.3f}s"

        # The connection serves on, and the timed-out records stayed.
        part, took = produce(c, 2, 1, "pair", batch(1))
        assert part["error_code"] == ERR_NONE and part["base_offset"] == 3, part
        assert took < 0.5

        # A topic deleted under a waiting produce answers as a produce to it
        # would now, without waiting for the timeout.
        send_produce(c, 3, -1, {"pair": {0: batch(1)}}, timeout_ms=20000)
        time.sleep(0.3)  # appended and waiting
        started = time.monotonic()
        cluster.gregorctl("topic", "delete", "pair", bootstrap=leader.bootstrap, timeout=30)
        part = read_produce(c, 3, timeout=15)["pair"][0]
        assert part["error_code"] == ERR_UNKNOWN_TOPIC_OR_PARTITION, part
        assert part["base_offset"] == 4, part
        assert time.monotonic() - started < 10


def test_fenced_follower_completes_waiting_produces(cluster):
    cluster.start(controllers=1, brokers=2,
                  controller_config={"broker.session.timeout.ms": SESSION_TIMEOUT_MS},
                  broker_config={"broker.heartbeat.interval.ms": 250})
    # Two partitions each: leaders spread over both brokers, so each topic
    # has a partition led by the broker that stays.
    cluster.create_topic("wait", 2, 2)
    cluster.create_topic("need-two", 2, 2, config={"min.insync.replicas": "2"})
    leader, follower = replicated(cluster, "wait", 0)
    two = next(i for i, p in partitions(cluster, "need-two").items()
               if p["leader_id"] == leader.node_id)
    replicated(cluster, "need-two", two)

    with leader.connect(timeout=30.0) as a, leader.connect(timeout=30.0) as b:
        send_produce(a, 1, -1, {"wait": {0: batch(2)}}, timeout_ms=20000)
        send_produce(b, 1, -1, {"need-two": {two: batch(1)}}, timeout_ms=20000)
        time.sleep(0.3)  # both appended and waiting
        cluster.kill9(follower)
        killed = time.monotonic()

        # The controller fences the follower and shrinks the ISR to the
        # leader: its high watermark moves and the waiting produce succeeds
        # long before its timeout.
        part = read_produce(a, 1, timeout=25)["wait"][0]
        took = time.monotonic() - killed
        assert part["error_code"] == ERR_NONE and part["base_offset"] == 0, part
        assert took < SESSION_TIMEOUT_MS / 1000 + 5, f"completed {took:.3f}s after the kill"

        # An ISR of one is below need-two's min.insync.replicas.
        part = read_produce(b, 1, timeout=25)["need-two"][two]
        assert part["error_code"] == ERR_NOT_ENOUGH_REPLICAS_AFTER_APPEND, part
        assert part["base_offset"] == 0, part
        assert time.monotonic() - killed < SESSION_TIMEOUT_MS / 1000 + 5

        # Now refused before the append, with Kafka's message: nothing is
        # written.
        part, took = produce(b, 2, -1, "need-two", batch(4), partition=two)
        assert part["error_code"] == ERR_NOT_ENOUGH_REPLICAS, part
        assert "min.isr requirement of 2" in part["error_message"], part
        assert part["base_offset"] == -1 and took < 0.5
        part, _ = produce(b, 3, 1, "need-two", batch(1), partition=two)
        assert part["error_code"] == ERR_NONE and part["base_offset"] == 1, part

        # acks=all to the leader alone answers at once.
        part, took = produce(a, 2, -1, "wait", batch(1))
        assert part["error_code"] == ERR_NONE and part["base_offset"] == 2, part
        assert took < 0.5


def test_waiting_produce_is_answered_at_shutdown(cluster):
    cluster.start(controllers=1, brokers=2)
    cluster.create_topic("halt", 1, 2)
    leader, _ = replicated(cluster, "halt")
    with leader.connect(timeout=10.0) as c:
        send_produce(c, 1, -1, {"halt": {0: batch(1)}}, timeout_ms=30000)
        time.sleep(0.3)  # appended and waiting
        started = time.monotonic()
        assert leader.stop() == 0
        assert time.monotonic() - started < 5
        part = read_produce(c, 1, timeout=1)["halt"][0]
        assert part["error_code"] == ERR_REQUEST_TIMED_OUT, part
        assert part["base_offset"] == 0, part
