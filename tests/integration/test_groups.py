"""The group coordinator beyond the issue's acceptance tests
(test_group_acceptance.py): a member that leaves hands its partitions over,
and OffsetFetch v8 answers several groups at once, with DeleteGroups.
"""

import time
import uuid

import pytest
from confluent_kafka import Consumer, KafkaError, KafkaException, Producer, TopicPartition

import gregor
from gregor import Reader, Writer

ERR_NONE = 0
API_OFFSET_FETCH = 9

BROKER_CONFIG = {
    "offsets.topic.num.partitions": 4,
    "offsets.topic.replication.factor": 1,
    "group.initial.rebalance.delay.ms": 200,
}


@pytest.fixture(scope="module")
def single(tmp_path_factory):
    """One cluster for the module: every test has its own topics and groups."""
    c = gregor.Cluster(tmp_path_factory.mktemp("groups"))
    try:
        c.start(controllers=1, brokers=1, broker_config=BROKER_CONFIG)
        yield c
    finally:
        c.stop_all()


def produce(cluster, topic, count, partitions):
    p = Producer({"bootstrap.servers": cluster.bootstrap, "linger.ms": 5})
    for i in range(count):
        p.produce(topic, value=b"%d" % i, partition=i % partitions)
        if i % 1000 == 0:
            p.poll(0)
    assert p.flush(30) == 0


def consumer(cluster, group, **extra):
    conf = {"bootstrap.servers": cluster.bootstrap, "group.id": group,
            "auto.offset.reset": "earliest", "enable.auto.commit": False,
            "session.timeout.ms": 6000, "heartbeat.interval.ms": 500}
    conf.update(extra)
    return Consumer(conf)


def poll_all(consumers, seen, timeout=0.05):
    """One poll of every consumer; a message is processed (its value added
    to seen) and then its offset committed."""
    for c in consumers:
        m = c.poll(timeout)
        if m is None or m.error():
            continue
        seen.add(int(m.value()))
        try:
            c.commit(message=m, asynchronous=False)
        except KafkaException as e:
            # A commit racing a rebalance fails as in Kafka; the partition's
            # next owner reads the message again (a duplicate, not a loss).
            assert e.args[0].code() in (KafkaError.REBALANCE_IN_PROGRESS,
                                        KafkaError.ILLEGAL_GENERATION,
                                        KafkaError.UNKNOWN_MEMBER_ID), e


def test_member_leaving_hands_over_partitions(single):
    topic, group = "handover", "g-" + uuid.uuid4().hex[:8]
    single.create_topic(topic, 4)
    a, b = consumer(single, group), consumer(single, group)
    try:
        a.subscribe([topic])
        b.subscribe([topic])
        deadline = time.monotonic() + 30
        seen = set()
        while not (a.assignment() and b.assignment() and
                   len(a.assignment()) + len(b.assignment()) == 4):
            poll_all([a, b], seen)
            assert time.monotonic() < deadline, "two members never shared the topic"
        b.close()
        b = None
        deadline = time.monotonic() + 20
        while len(a.assignment()) != 4:
            poll_all([a], seen)
            assert time.monotonic() < deadline, f"left: {a.assignment()}"
    finally:
        a.close()
        if b:
            b.close()


# ---- raw JoinGroup ----


def offset_fetch_v8(conn, groups):
    """OffsetFetch v8: [(group, None for all topics, or [(topic, [partitions])])]
    -> {group: (error, {(topic, partition): offset})}."""
    w = Writer()
    w.uvarint(len(groups) + 1)
    for g, topics in groups:
        w.compact_string(g)
        if topics is None:
            w.uvarint(0)
        else:
            w.uvarint(len(topics) + 1)
            for t, parts in topics:
                w.compact_string(t)
                w.uvarint(len(parts) + 1)
                for p in parts:
                    w.int32(p)
                w.empty_tagged_fields()
        w.empty_tagged_fields()
    w.bool(False)  # require_stable
    w.empty_tagged_fields()
    cid = conn._correlation_id()
    conn.send(gregor.encode_request(API_OFFSET_FETCH, 8, cid, w.bytes(), flexible=True))
    r = Reader(conn.recv_frame(15))
    assert r.int32() == cid
    r.tagged_fields()
    r.int32()  # throttle

    def partition():
        p, off = r.int32(), r.int64()
        r.int32()  # leader epoch
        r.compact_nullable_string()
        assert r.int16() == ERR_NONE
        r.tagged_fields()
        return p, off

    def topic():
        name = r.compact_string()
        parts = r.compact_array(partition)
        r.tagged_fields()
        return name, parts

    def group():
        g = r.compact_string()
        topics = r.compact_array(topic)
        err = r.int16()
        r.tagged_fields()
        return g, (err, {(t, p): o for t, ps in topics for p, o in ps})

    out = dict(r.compact_array(group))
    r.tagged_fields()
    return out


def test_offset_fetch_many_groups_and_delete(single):
    topic = "multi"
    single.create_topic(topic, 2)
    g1, g2 = "g-" + uuid.uuid4().hex[:8], "g-" + uuid.uuid4().hex[:8]
    c = consumer(single, g1)
    c.commit(offsets=[TopicPartition(topic, 0, 3), TopicPartition(topic, 1, 4)],
             asynchronous=False)
    c.close()
    with single.brokers[0].connect() as conn:
        got = offset_fetch_v8(conn, [(g1, None), (g2, [(topic, [0, 1])]),
                                     (g1, [(topic, [1])])])
        assert got[g1] == (ERR_NONE, {(topic, 1): 4}) or got[g1] == \
            (ERR_NONE, {(topic, 0): 3, (topic, 1): 4})
        assert got[g2] == (ERR_NONE, {(topic, 0): -1, (topic, 1): -1})
        everything = offset_fetch_v8(conn, [(g1, None)])
        assert everything[g1] == (ERR_NONE, {(topic, 0): 3, (topic, 1): 4})
    # DeleteGroups through the admin tool: the offsets go with the group.
    assert g1 in single.gregorctl("group", "list").stdout
    single.gregorctl("group", "delete", g1)
    assert g1 not in single.gregorctl("group", "list").stdout
    with single.brokers[0].connect() as conn:
        assert offset_fetch_v8(conn, [(g1, None)])[g1] == (ERR_NONE, {})
