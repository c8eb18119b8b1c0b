"""The group coordinator with real group consumers (confluent-kafka and
kafka-python) and raw JoinGroup requests, against one controller and one
broker: disjoint full assignments, commits that a restarted consumer (and
a restarted broker) resumes from, and Kafka's error codes for bad joins.
"""

import json
import subprocess
import time
import uuid

import pytest
from confluent_kafka import Consumer, KafkaError, KafkaException, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic

import gregor
from gregor import Reader, Writer

ERR_NONE = 0
ERR_UNKNOWN_SERVER_ERROR = -1
ERR_ILLEGAL_GENERATION = 22
ERR_INCONSISTENT_GROUP_PROTOCOL = 23
ERR_UNKNOWN_MEMBER_ID = 25
ERR_MEMBER_ID_REQUIRED = 79
# Retriable: the coordinator is moving or still loading.
COORDINATOR_ERRORS = (14, 15, 16)
API_OFFSET_FETCH = 9
API_JOIN_GROUP = 11
API_HEARTBEAT = 12
API_SYNC_GROUP = 14

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


@pytest.fixture
def own(cluster):
    """A cluster of the test's own, for tests that restart it."""
    cluster.start(controllers=1, brokers=1, broker_config=BROKER_CONFIG)
    return cluster


def create(cluster, name, partitions, timeout=15.0):
    admin = AdminClient({"bootstrap.servers": cluster.bootstrap})
    for f in admin.create_topics([NewTopic(name, partitions, 1)],
                                 operation_timeout=timeout).values():
        f.result(timeout)
    deadline = time.monotonic() + timeout
    while True:
        md = cluster.metadata(cluster.brokers[0], topics=[name])
        t = [t for t in md["topics"] if t["name"] == name]
        if t and t[0]["error_code"] == ERR_NONE and len(t[0]["partitions"]) == partitions and \
                all(p["leader_id"] >= 0 for p in t[0]["partitions"]):
            return
        assert time.monotonic() < deadline, f"topic {name} never got leaders"
        time.sleep(0.05)


def produce(cluster, topic, count, partitions):
    p = Producer({"bootstrap.servers": cluster.bootstrap, "linger.ms": 5})
    for i in range(count):
        p.produce(topic, value=b"%d" % i, partition=i % partitions)
        if i % 1000 == 0:
            p.poll(0)
    assert p.flush(30) == 0


def gregorctl(cluster, *args):
    exe = gregor.bin_dir() / "gregorctl"
    r = subprocess.run([str(exe), "-b", cluster.bootstrap] + list(args), capture_output=True,
                       text=True, timeout=60, stdin=subprocess.DEVNULL)
    assert r.returncode == 0, r.stdout + r.stderr
    return r


def lag(cluster, group):
    """The group's total lag as gregorctl describes it."""
    d = json.loads(gregorctl(cluster, "--json", "group", "describe", group).stdout)
    return sum(p["lag"] for p in d["offsets"])


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


def consume_until(consumers, seen, want, timeout=60.0):
    deadline = time.monotonic() + timeout
    while len(seen) < want:
        assert time.monotonic() < deadline, f"consumed {len(seen)} of {want}"
        poll_all(consumers, seen)


def test_group_of_three_shares_partitions_and_commits(single):
    topic, group = "shared", "g-" + uuid.uuid4().hex[:8]
    create(single, topic, 6)
    produce(single, topic, 600, 6)
    cs = [consumer(single, group) for _ in range(3)]
    try:
        for c in cs:
            c.subscribe([topic])
        # Every partition assigned to exactly one member.
        seen = set()
        deadline = time.monotonic() + 30
        while True:
            poll_all(cs, seen)
            parts = [sorted(tp.partition for tp in c.assignment()) for c in cs]
            flat = sorted(p for ps in parts for p in ps)
            if flat == list(range(6)) and all(parts):
                break
            assert time.monotonic() < deadline, f"assignments never settled: {parts}"
        consume_until(cs, seen, 600)
        assert seen == set(range(600))
    finally:
        for c in cs:
            c.close()
    # The committed offsets cover everything: a new member reads nothing new.
    c = consumer(single, group)
    try:
        committed = c.committed([TopicPartition(topic, p) for p in range(6)], timeout=10)
        assert sorted(tp.offset for tp in committed) == [100] * 6
    finally:
        c.close()
    # The admin view: the group, its offsets and its lag, through
    # ListGroups, DescribeGroups, OffsetFetch and ListOffsets.
    assert group in gregorctl(single, "group", "list").stdout
    assert lag(single, group) == 0
    produce(single, topic, 60, 6)
    assert lag(single, group) == 60


def test_member_leaving_hands_over_partitions(single):
    topic, group = "handover", "g-" + uuid.uuid4().hex[:8]
    create(single, topic, 4)
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


CHILD_CONSUMER = """
import sys, time
from confluent_kafka import Consumer
c = Consumer({"bootstrap.servers": sys.argv[1], "group.id": sys.argv[2],
              "session.timeout.ms": 6000, "heartbeat.interval.ms": 500,
              "enable.auto.commit": False})
c.subscribe([sys.argv[3]])
while True:
    c.poll(0.1)
"""


def test_crashed_member_partitions_move_within_session_timeout(single):
    topic, group = "crash", "g-" + uuid.uuid4().hex[:8]
    create(single, topic, 4)
    child = subprocess.Popen(["/usr/bin/python3", "-c", CHILD_CONSUMER, single.bootstrap, group,
                              topic], stdout=subprocess.DEVNULL)
    a = consumer(single, group)
    seen = set()
    try:
        a.subscribe([topic])
        deadline = time.monotonic() + 30
        while not (0 < len(a.assignment()) < 4):
            poll_all([a], seen)
            assert time.monotonic() < deadline, "the two members never shared the topic"
        child.kill()  # no LeaveGroup: only the session timeout can tell
        child.wait(10)
        killed = time.monotonic()
        while len(a.assignment()) != 4:
            poll_all([a], seen)
            assert time.monotonic() - killed < 6 + 4, f"still {a.assignment()}"
    finally:
        if child.poll() is None:
            child.kill()
            child.wait(10)
        a.close()


def test_kafka_python_resumes_from_commit(single):
    from kafka import KafkaConsumer
    topic, group = "resume", "g-" + uuid.uuid4().hex[:8]
    create(single, topic, 1)
    produce(single, topic, 100, 1)
    kc = KafkaConsumer(topic, bootstrap_servers=single.bootstrap, group_id=group,
                       auto_offset_reset="earliest", enable_auto_commit=False,
                       consumer_timeout_ms=20000)
    got = []
    for m in kc:
        got.append(int(m.value))
        if len(got) == 50:
            kc.commit()
            break
    kc.close()
    assert got == list(range(50))
    kc = KafkaConsumer(topic, bootstrap_servers=single.bootstrap, group_id=group,
                       auto_offset_reset="earliest", enable_auto_commit=False,
                       consumer_timeout_ms=20000)
    try:
        m = next(iter(kc))
        assert int(m.value) == 50
    finally:
        kc.close()


def test_commits_survive_broker_restart(own):
    topic, group = "durable", "g-" + uuid.uuid4().hex[:8]
    create(own, topic, 2)
    c = consumer(own, group)
    c.commit(offsets=[TopicPartition(topic, 0, 7), TopicPartition(topic, 1, 9)],
             asynchronous=False)
    # A topic the cluster does not know is refused, as Kafka does.
    with pytest.raises(KafkaException) as e:
        c.commit(offsets=[TopicPartition("no-such-topic", 0, 1)], asynchronous=False)
    assert e.value.args[0].code() == KafkaError.UNKNOWN_TOPIC_OR_PART
    c.close()
    own.restart(own.brokers[0])
    deadline = time.monotonic() + 30
    while True:
        c = consumer(own, group)
        try:
            got = c.committed([TopicPartition(topic, 0), TopicPartition(topic, 1)], timeout=5)
            if [tp.offset for tp in got] == [7, 9]:
                break
        except KafkaException:  # the coordinator may still be loading
            pass
        finally:
            c.close()
        assert time.monotonic() < deadline, "commits lost across the restart"
        time.sleep(0.2)


def wait_assigned(consumers, total, seen, timeout=30.0):
    """Polls until the consumers' assignments are disjoint and cover
    `total` partitions; returns them."""
    deadline = time.monotonic() + timeout
    while True:
        poll_all(consumers, seen)
        parts = [sorted(tp.partition for tp in c.assignment()) for c in consumers]
        flat = sorted(p for ps in parts for p in ps)
        if flat == list(range(total)) and all(parts):
            return parts
        assert time.monotonic() < deadline, f"assignments never settled: {parts}"


def test_static_member_restart_keeps_assignment(single):
    topic, group = "static", "g-" + uuid.uuid4().hex[:8]
    create(single, topic, 4)
    assigns = []

    def on_assign(c, parts):
        assigns.append(sorted(p.partition for p in parts))

    a = consumer(single, group, **{"group.instance.id": "a", "session.timeout.ms": 10000})
    b = consumer(single, group, **{"group.instance.id": "b", "session.timeout.ms": 10000})
    seen = set()
    try:
        a.subscribe([topic])
        b.subscribe([topic], on_assign=on_assign)
        before = wait_assigned([a, b], 4, seen)
        settled = len(assigns)
        a.close()  # a static member leaves no LeaveGroup behind
        a = consumer(single, group, **{"group.instance.id": "a", "session.timeout.ms": 10000})
        a.subscribe([topic])
        after = wait_assigned([a, b], 4, seen)
        # A is back with its partitions, and B was never asked to rebalance.
        assert after == before
        for _ in range(20):
            poll_all([a, b], seen)
        assert len(assigns) == settled, assigns
    finally:
        a.close()
        b.close()


def test_cooperative_sticky_members(single):
    topic, group = "coop", "g-" + uuid.uuid4().hex[:8]
    create(single, topic, 6)
    produce(single, topic, 300, 6)
    conf = {"partition.assignment.strategy": "cooperative-sticky"}
    cs = [consumer(single, group, **conf)]
    seen = set()
    try:
        cs[0].subscribe([topic])
        wait_assigned(cs, 6, seen)
        cs.append(consumer(single, group, **conf))
        cs[1].subscribe([topic])
        wait_assigned(cs, 6, seen)
        consume_until(cs, seen, 300)
        assert seen == set(range(300))
    finally:
        for c in cs:
            c.close()


# ---- raw JoinGroup ----

def join_body(group, member_id, protocol_type="consumer", protocols=(("range", b"m"),),
              session_ms=10000, rebalance_ms=10000):
    """JoinGroup v5 (not flexible): with group.instance.id null."""
    w = Writer()
    w.string(group)
    w.int32(session_ms)
    w.int32(rebalance_ms)
    w.string(member_id)
    w.nullable_string(None)
    w.string(protocol_type)
    w.int32(len(protocols))
    for name, meta in protocols:
        w.string(name)
        w.int32(len(meta))
        w.raw(meta)
    return w.bytes()


def parse_join_v5(payload):
    r = Reader(payload)
    r.int32()  # throttle
    out = {"error_code": r.int16(), "generation_id": r.int32(),
           "protocol_name": r.string(), "leader": r.string(), "member_id": r.string()}
    out["members"] = r.int32()
    return out


def round_trip(conn, api_key, version, body, parse, timeout=15.0):
    cid = conn._correlation_id()
    conn.send(gregor.encode_request(api_key, version, cid, body))
    payload = conn.recv_frame(timeout)
    r = Reader(payload)
    assert r.int32() == cid
    return parse(payload[4:])


def heartbeat(conn, group, generation, member_id):
    w = Writer()
    w.string(group)
    w.int32(generation)
    w.string(member_id)
    w.nullable_string(None)
    return round_trip(conn, API_HEARTBEAT, 3, w.bytes(),
                      lambda p: Reader(p[4:]).int16())


def wait_coordinator(conn, group, timeout=20.0):
    deadline = time.monotonic() + timeout
    while True:
        got = conn.find_coordinator([group], 0, 6)
        if got[0]["error_code"] == ERR_NONE:
            return
        assert time.monotonic() < deadline, f"no coordinator: {got}"
        time.sleep(0.1)


def joined_member(conn, group):
    """A member of a Stable one-member group: (member id, generation)."""
    deadline = time.monotonic() + 20
    while True:
        r = round_trip(conn, API_JOIN_GROUP, 5, join_body(group, ""), parse_join_v5)
        if r["error_code"] not in COORDINATOR_ERRORS:
            break
        assert time.monotonic() < deadline, f"the coordinator never took the group: {r}"
        time.sleep(0.1)
    assert r["error_code"] == ERR_MEMBER_ID_REQUIRED
    member = r["member_id"]
    r = round_trip(conn, API_JOIN_GROUP, 5, join_body(group, member), parse_join_v5)
    assert r["error_code"] == ERR_NONE and r["leader"] == member and r["members"] == 1
    w = Writer()
    w.string(group)
    w.int32(r["generation_id"])
    w.string(member)
    w.nullable_string(None)
    w.int32(1)
    w.string(member)
    w.int32(1)
    w.raw(b"A")
    err = round_trip(conn, API_SYNC_GROUP, 3, w.bytes(), lambda p: Reader(p[4:]).int16())
    assert err == ERR_NONE
    return member, r["generation_id"]


def test_bad_joins_answer_kafka_errors(single):
    group = "raw-" + uuid.uuid4().hex[:8]
    with single.brokers[0].connect() as conn:
        wait_coordinator(conn, group)
        member, gen = joined_member(conn, group)
        cases = [
            (join_body(group, "", protocol_type=""), ERR_INCONSISTENT_GROUP_PROTOCOL),
            (join_body(group, "", protocols=()), ERR_INCONSISTENT_GROUP_PROTOCOL),
            (join_body(group, "no-such-member"), ERR_UNKNOWN_MEMBER_ID),
            (join_body(group, "", protocols=(("range", b"x" * (600 * 1024)),)),
             ERR_UNKNOWN_SERVER_ERROR),
        ]
        for body, want in cases:
            r = round_trip(conn, API_JOIN_GROUP, 5, body, parse_join_v5)
            assert r["error_code"] == want, (want, r)
        assert heartbeat(conn, group, gen + 1, member) == ERR_ILLEGAL_GENERATION
        assert heartbeat(conn, group, gen, "stranger") == ERR_UNKNOWN_MEMBER_ID
        # The member in good standing never noticed.
        assert heartbeat(conn, group, gen, member) == ERR_NONE


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
    create(single, topic, 2)
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
    assert g1 in gregorctl(single, "group", "list").stdout
    gregorctl(single, "group", "delete", g1)
    assert g1 not in gregorctl(single, "group", "list").stdout
    with single.brokers[0].connect() as conn:
        assert offset_fetch_v8(conn, [(g1, None)])[g1] == (ERR_NONE, {})
