"""Consumer groups, end to end, with unmodified clients: confluent_kafka
(librdkafka) members sharing a topic and surviving a crashed member,
kafka-python resuming at its committed offset, committed offsets surviving a
restart of the coordinator broker, static membership, `gregorctl group` lag,
and bad JoinGroup / SyncGroup / Heartbeat input answered with Kafka's error
codes without disturbing the group's other members.
"""

import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from confluent_kafka import Consumer, Producer, TopicPartition

import gregor
from gregor import Reader, Writer, encode_request, eventually

HERE = Path(__file__).resolve().parent

# Fast rebalances for tests; everything else is Kafka's default.
BROKER_CONFIG = {"group.initial.rebalance.delay.ms": 200,
                 "offsets.topic.num.partitions": 5}

API_OFFSET_COMMIT = 8
API_JOIN_GROUP = 11
API_HEARTBEAT = 12
API_SYNC_GROUP = 14

ERR_UNKNOWN_SERVER_ERROR = -1
ERR_NONE = 0
ERR_UNKNOWN_TOPIC_OR_PARTITION = 3
ERR_ILLEGAL_GENERATION = 22
ERR_INVALID_COMMIT_OFFSET_SIZE = 28
ERR_INCONSISTENT_GROUP_PROTOCOL = 23
ERR_UNKNOWN_MEMBER_ID = 25
ERR_REBALANCE_IN_PROGRESS = 27
ERR_MEMBER_ID_REQUIRED = 79
RETRIABLE_COORDINATOR = {14, 15, 16}


def produce(cluster, topic, values, partitions=None):
    p = Producer({"bootstrap.servers": cluster.bootstrap, "linger.ms": 5, "acks": "all"})
    failed = []
    for i, v in enumerate(values):
        kw = {} if partitions is None else {"partition": i % partitions}
        while True:
            try:
                p.produce(topic, value=str(v).encode(),
                          on_delivery=lambda e, m: failed.append(e) if e else None, **kw)
                break
            except BufferError:
                p.poll(0.05)
    assert p.flush(30) == 0
    assert not failed, failed[:3]


def describe(cluster, group):
    return json.loads(cluster.gregorctl("group", "describe", group, "--json").stdout)


@pytest.fixture
def one_broker(cluster):
    cluster.start(controllers=1, brokers=1, broker_config=BROKER_CONFIG)
    return cluster


# ---- members in their own processes ----

class Member:
    """A group_member.py process."""

    def __init__(self, cluster, tmp, name, group, topic, **conf):
        # Cooperative assignors hand out and take back partitions incrementally.
        self.incremental = conf.get("partition.assignment.strategy") == "cooperative-sticky"
        self.out = tmp / f"{name}.out"
        self.events_path = tmp / f"{name}.events"
        self.err = open(tmp / f"{name}.err", "a")
        args = [sys.executable if sys.executable else "/usr/bin/python3",
                str(HERE / "group_member.py"), cluster.bootstrap, group, topic, str(self.out),
                str(self.events_path)] + [f"{k}={v}" for k, v in conf.items()]
        # Dies with the test runner, like the nodes: an aborted run leaves nothing.
        self.proc = subprocess.Popen(args, stdin=subprocess.DEVNULL, stdout=self.err,
                                     stderr=self.err, preexec_fn=gregor._die_with_parent)

    def events(self):
        try:
            return [json.loads(ln) for ln in self.events_path.read_text().splitlines() if ln]
        except FileNotFoundError:
            return []

    def assignment(self):
        """The partitions held now (None before the first assignment)."""
        held = None
        for e in self.events():
            if not self.incremental:
                held = set(e["partitions"]) if e["event"] == "assign" else set()
            elif e["event"] == "assign":
                held = (held or set()) | set(e["partitions"])
            else:
                held = (held or set()) - set(e["partitions"])
        return held

    def values(self):
        try:
            return [int(x) for x in self.out.read_text().split()]
        except FileNotFoundError:
            return []

    def kill(self):
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(10)

    def stop(self, timeout=20):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.kill()
        self.err.close()


@pytest.fixture
def members():
    started = []
    yield started
    for m in started:
        m.stop()


def test_three_consumers_share_six_partitions(one_broker, members, tmp_path):
    c = one_broker
    topic, group, total, parts = "orders", "three", 60_000, 6
    c.create_topic(topic, parts)
    produce(c, topic, range(total // 2), parts)

    ms = [Member(c, tmp_path, f"m{i}", group, topic) for i in range(3)]
    members.extend(ms)

    def balanced(group_members):
        held = [m.assignment() for m in group_members]
        if any(not h for h in held):
            return False
        flat = [p for h in held for p in h]
        return sorted(flat) == list(range(parts))  # each partition exactly once
    eventually(lambda: balanced(ms), 40, "every partition assigned to exactly one of 3 members")

    # The second half arrives while the members consume, and one of them
    # crashes in the middle of it: no LeaveGroup, so its partitions must move
    # when its session times out, and what it processed without committing
    # is processed again (duplicates, never losses).
    def second_half():
        for start in range(total // 2, total, 1000):
            produce(c, topic, range(start, start + 1000), parts)
            time.sleep(0.05)
    producer = threading.Thread(target=second_half)
    producer.start()
    try:
        eventually(lambda: any(v >= total // 2 for v in ms[2].values()), 30,
                   "the member to be killed to be busy with the second half")
        killed = ms[2].assignment()
        ms[2].kill()
        t0 = time.monotonic()
        eventually(lambda: balanced(ms[:2]), 30, "the survivors to take every partition")
        moved = time.monotonic() - t0
    finally:
        producer.join()
    print(f"\npartitions {sorted(killed)} moved in {moved:.2f}s after the crash "
          f"(session.timeout.ms 6000)")
    assert moved < 6.0 + 2.0, f"rebalance took {moved:.1f}s"

    eventually(lambda: len({v for m in ms for v in m.values()}) >= total, 60,
               "all messages consumed")
    seen = [v for m in ms for v in m.values()]
    assert set(seen) == set(range(total)), "messages lost"
    print(f"consumed {len(seen)} for {total} messages: {len(seen) - total} duplicates")

    # Everything processed was committed: lag 0 on every partition.
    def caught_up():
        d = describe(c, group)
        return len(d["offsets"]) == parts and all(o["lag"] == 0 for o in d["offsets"]) and d
    d = eventually(caught_up, 20, "lag 0 everywhere")
    assert sum(o["log_end_offset"] for o in d["offsets"]) == total


def test_kafka_python_resumes_at_committed_offset(one_broker):
    from kafka import KafkaConsumer, TopicPartition as KTP
    from kafka.structs import OffsetAndMetadata
    c = one_broker
    topic, group, n = "resume", "kp-group", 1000
    c.create_topic(topic, 1)
    produce(c, topic, range(n))
    tp = KTP(topic, 0)

    def consumer():
        return KafkaConsumer(topic, bootstrap_servers=c.bootstrap, group_id=group,
                             enable_auto_commit=False, auto_offset_reset="earliest",
                             consumer_timeout_ms=20000, api_version_auto_timeout_ms=10000)
    first = consumer()
    got = []
    for msg in first:
        got.append(int(msg.value))
        if len(got) == n // 2:
            break
    assert got == list(range(n // 2))
    first.commit({tp: OffsetAndMetadata(n // 2, "half")})
    first.close()

    second = consumer()
    assert second.committed(tp) == n // 2
    msg = next(iter(second))
    assert (msg.offset, int(msg.value)) == (n // 2, n // 2)
    second.close()


def test_committed_offsets_survive_coordinator_restart(one_broker):
    c = one_broker
    topic, group = "durable", "durable-group"
    c.create_topic(topic, 3)
    produce(c, topic, range(300), 3)
    want = {0: 17, 1: 42, 2: 100}
    cons = Consumer({"bootstrap.servers": c.bootstrap, "group.id": group,
                     "enable.auto.commit": False})
    cons.commit(offsets=[TopicPartition(topic, p, o) for p, o in want.items()],
                asynchronous=False)
    cons.close()

    with c.brokers[0].connect() as conn:
        coord = eventually(lambda: [x for x in conn.find_coordinator([group], 0, 4)
                                    if x["error_code"] == ERR_NONE], what="a coordinator")[0]
    c.restart(c.node(coord["node_id"]))

    cons = Consumer({"bootstrap.servers": c.bootstrap, "group.id": group,
                     "enable.auto.commit": False})
    try:
        got = cons.committed([TopicPartition(topic, p) for p in want], timeout=30)
    finally:
        cons.close()
    assert {tp.partition: tp.offset for tp in got} == want


def test_gregorctl_lag(one_broker):
    c = one_broker
    topic, group = "lagging", "lag-group"
    c.create_topic(topic, 2)
    produce(c, topic, range(100), 2)
    cons = Consumer({"bootstrap.servers": c.bootstrap, "group.id": group,
                     "enable.auto.commit": False, "auto.offset.reset": "earliest"})
    cons.subscribe([topic])

    def drain(expect):
        seen = 0
        deadline = time.monotonic() + 30
        while seen < expect:
            assert time.monotonic() < deadline, f"consumed {seen} of {expect}"
            seen += sum(1 for m in cons.consume(500, timeout=0.5) if m.error() is None)
        cons.commit(asynchronous=False)
    try:
        drain(100)
        d = describe(c, group)
        assert d["state"] == "Stable" and len(d["members"]) == 1
        assert sorted(o["lag"] for o in d["offsets"]) == [0, 0]

        produce(c, topic, range(37), 2)  # 19 to partition 0, 18 to partition 1
        d = describe(c, group)
        lags = {o["partition"]: o["lag"] for o in d["offsets"]}
        assert lags == {0: 19, 1: 18}
        for o in d["offsets"]:
            assert o["lag"] == o["log_end_offset"] - o["committed_offset"]
        text = c.gregorctl("group", "describe", group, check=False).stdout
        assert "LAG" in text and topic in text

        drain(37)
        d = describe(c, group)
        assert {o["partition"]: o["lag"] for o in d["offsets"]} == {0: 0, 1: 0}
    finally:
        cons.close()


def test_static_member_rejoins_without_rebalance(one_broker, members, tmp_path):
    c = one_broker
    topic, group = "static", "static-group"
    c.create_topic(topic, 4)
    conf = {"session.timeout.ms": 10000}
    a = Member(c, tmp_path, "a", group, topic, **{"group.instance.id": "inst-a"}, **conf)
    b = Member(c, tmp_path, "b", group, topic, **{"group.instance.id": "inst-b"}, **conf)
    members.extend([a, b])
    eventually(lambda: a.assignment() and b.assignment() and
               len(a.assignment() | b.assignment()) == 4, 40, "both static members assigned")
    a_events, b_held = len(a.events()), b.assignment()

    b.stop()  # a static member leaves no LeaveGroup behind
    b2 = Member(c, tmp_path, "b2", group, topic, **{"group.instance.id": "inst-b"}, **conf)
    members.append(b2)
    eventually(lambda: b2.assignment() is not None, 20, "the restarted member's assignment")
    assert b2.assignment() == b_held
    time.sleep(2.0)  # several heartbeats: a rebalance would have reached a by now
    assert len(a.events()) == a_events, f"a saw a rebalance: {a.events()[a_events:]}"


def test_cooperative_sticky_members(one_broker, members, tmp_path):
    c = one_broker
    topic, group, parts = "coop", "coop-group", 6
    c.create_topic(topic, parts)
    conf = {"partition.assignment.strategy": "cooperative-sticky"}
    first = [Member(c, tmp_path, f"c{i}", group, topic, **conf) for i in range(2)]
    members.extend(first)

    def exactly_once(ms):
        held = [m.assignment() for m in ms]
        return all(held) and sorted(p for h in held for p in h) == list(range(parts))
    eventually(lambda: exactly_once(first), 40, "two cooperative members sharing the topic")
    before = [m.assignment() for m in first]

    third = Member(c, tmp_path, "c2", group, topic, **conf)
    members.append(third)
    eventually(lambda: exactly_once(first + [third]), 40, "three cooperative members")
    # Incremental: the first two kept what they still own and were never
    # stripped of everything (an eager rebalance revokes all partitions).
    for m, had in zip(first, before):
        assert m.assignment() <= had
        revoked = [set(e["partitions"]) for e in m.events() if e["event"] == "revoke"]
        assert all(r != had for r in revoked), f"all of {had} revoked at once: {revoked}"


# ---- bad input, on the wire ----

def group_request(api, version, body, cid):
    return encode_request(api, version, cid, body)


def join(conn, group, member_id="", protocol_type="consumer", protocols=(("range", b"\0\0"),),
         instance=None, session_ms=10000, version=5):
    w = Writer().string(group).int32(session_ms).int32(session_ms).string(member_id)
    w.nullable_string(instance).string(protocol_type).int32(len(protocols))
    for name, meta in protocols:
        w.string(name).int32(len(meta)).raw(meta)
    conn.send(group_request(API_JOIN_GROUP, version, w.bytes(), 1))
    r = Reader(conn.recv_frame(timeout=30))
    r.int32()
    out = {"throttle": r.int32(), "error_code": r.int16(), "generation": r.int32(),
           "protocol": r.string(), "leader": r.string(), "member_id": r.string()}
    out["members"] = r.array(lambda: (r.string(), r.nullable_string(), r.take(r.int32())))
    r.expect_end("JoinGroup v5")
    return out


def sync(conn, group, generation, member_id, assignments=()):
    w = Writer().string(group).int32(generation).string(member_id).nullable_string(None)
    w.int32(len(assignments))
    for mid, data in assignments:
        w.string(mid).int32(len(data)).raw(data)
    conn.send(group_request(API_SYNC_GROUP, 3, w.bytes(), 2))
    r = Reader(conn.recv_frame(timeout=30))
    r.int32()
    r.int32()
    err = r.int16()
    r.take(r.int32())
    r.expect_end("SyncGroup v3")
    return err


def heartbeat(conn, group, generation, member_id):
    w = Writer().string(group).int32(generation).string(member_id).nullable_string(None)
    conn.send(group_request(API_HEARTBEAT, 3, w.bytes(), 3))
    r = Reader(conn.recv_frame(timeout=30))
    r.int32()
    r.int32()
    err = r.int16()
    r.expect_end("Heartbeat v3")
    return err


def commit_partitions(conn, group, generation, member_id, topic, partitions):
    """OffsetCommit v7 of [(partition, offset, metadata)]: the error of each."""
    w = Writer().string(group).int32(generation).string(member_id).nullable_string(None)
    w.int32(1).string(topic).int32(len(partitions))
    for partition, offset, metadata in partitions:
        w.int32(partition).int64(offset).int32(-1).nullable_string(metadata)
    conn.send(group_request(API_OFFSET_COMMIT, 7, w.bytes(), 4))
    r = Reader(conn.recv_frame(timeout=30))
    r.int32()
    r.int32()
    topics = r.array(lambda: (r.string(), r.array(lambda: (r.int32(), r.int16()))))
    r.expect_end("OffsetCommit v7")
    return [err for _, err in topics[0][1]]


def commit(conn, group, generation, member_id, topic, partition, offset):
    return commit_partitions(conn, group, generation, member_id, topic,
                             [(partition, offset, "")])[0]


def coordinator_conn(cluster, group):
    with cluster.brokers[0].connect() as conn:
        co = eventually(lambda: [x for x in conn.find_coordinator([group], 0, 4)
                                 if x["error_code"] == ERR_NONE], what="a coordinator")[0]
    return gregor.KafkaConnection(co["host"], co["port"], timeout=30)


def stable_member(conn, group):
    """Joins (answering MEMBER_ID_REQUIRED) and syncs one member: (member id, generation)."""
    while True:
        j = join(conn, group)
        if j["error_code"] == ERR_MEMBER_ID_REQUIRED:
            j = join(conn, group, j["member_id"])
        if j["error_code"] not in RETRIABLE_COORDINATOR:
            break
        time.sleep(0.2)
    assert j["error_code"] == ERR_NONE, j
    assert j["leader"] == j["member_id"]
    assert sync(conn, group, j["generation"], j["member_id"],
                [(j["member_id"], b"\0\0\0\0\0\0\xff\xff\xff\xff")]) == ERR_NONE
    return j["member_id"], j["generation"]


def test_bad_group_input(one_broker):
    c = one_broker
    group = "raw-group"
    c.create_topic("raw-topic", 1)
    with coordinator_conn(c, group) as m1, coordinator_conn(c, group) as bad:
        member, gen = stable_member(m1, group)
        assert heartbeat(m1, group, gen, member) == ERR_NONE

        # Empty protocol type, no protocols: INCONSISTENT_GROUP_PROTOCOL, on the
        # stable group and on a group that does not exist yet.
        for g in (group, "raw-fresh"):
            assert join(bad, g, "", protocol_type="")["error_code"] == \
                ERR_INCONSISTENT_GROUP_PROTOCOL
            assert join(bad, g, "", protocols=())["error_code"] == \
                ERR_INCONSISTENT_GROUP_PROTOCOL

        # A member id the group never gave out.
        assert join(bad, group, "stranger-1")["error_code"] == ERR_UNKNOWN_MEMBER_ID
        assert heartbeat(bad, group, gen, "stranger-1") == ERR_UNKNOWN_MEMBER_ID
        assert sync(bad, group, gen, "stranger-1") == ERR_UNKNOWN_MEMBER_ID

        # A stale generation from a real member id.
        assert heartbeat(bad, group, gen - 1, member) == ERR_ILLEGAL_GENERATION
        assert sync(bad, group, gen + 5, member) == ERR_ILLEGAL_GENERATION
        assert commit(bad, group, gen - 1, member, "raw-topic", 0, 1) == ERR_ILLEGAL_GENERATION

        # Oversized member metadata (more than one record of the offsets topic
        # could hold): Kafka fails the generation with UNKNOWN_SERVER_ERROR when
        # it stores the group; the member that brings it gets that code at once.
        huge = join(bad, group, "", protocols=(("range", b"x" * (2 << 20)),))
        if huge["error_code"] == ERR_MEMBER_ID_REQUIRED:
            huge = join(bad, group, huge["member_id"], protocols=(("range", b"x" * (2 << 20)),))
        assert huge["error_code"] == ERR_UNKNOWN_SERVER_ERROR

        # The real member never noticed any of it.
        assert heartbeat(m1, group, gen, member) == ERR_NONE
        assert commit(m1, group, gen, member, "raw-topic", 0, 1) == ERR_NONE
        # Partitions the topic does not have: UNKNOWN_TOPIC_OR_PARTITION each,
        # as Kafka; the others of the same commit are stored.
        assert commit_partitions(m1, group, gen, member, "raw-topic",
                                 [(7, 3, ""), (0, 2, ""), (-1, 4, "")]) == \
            [ERR_UNKNOWN_TOPIC_OR_PARTITION, ERR_NONE, ERR_UNKNOWN_TOPIC_OR_PARTITION]
        d = describe(c, group)
        assert d["state"] == "Stable" and [x["member_id"] for x in d["members"]] == [member]
    assert c.brokers[0].alive()


def test_commit_too_large_for_the_log(cluster):
    """Offsets whose records do not fit one batch of __consumer_offsets
    (message.max.bytes) are answered INVALID_COMMIT_OFFSET_SIZE per
    partition, as Kafka does, and nothing of them is stored."""
    cluster.start(controllers=1, brokers=1,
                  broker_config=dict(BROKER_CONFIG, **{"message.max.bytes": 4096}))
    cluster.create_topic("big-commit", 2)
    group = "big-commit-group"
    with coordinator_conn(cluster, group) as conn:
        small = [(0, 5, "a"), (1, 6, "b")]
        big = [(0, 7, "x" * 3000), (1, 8, "y" * 3000)]  # each fits offset.metadata.max.bytes
        eventually(lambda: commit_partitions(conn, group, -1, "", "big-commit", small)
                   == [ERR_NONE, ERR_NONE], what="a first commit")
        assert commit_partitions(conn, group, -1, "", "big-commit", big) == \
            [ERR_INVALID_COMMIT_OFFSET_SIZE] * 2
    cons = Consumer({"bootstrap.servers": cluster.bootstrap, "group.id": group})
    try:
        got = cons.committed([TopicPartition("big-commit", p) for p in (0, 1)], timeout=30)
    finally:
        cons.close()
    assert {tp.partition: tp.offset for tp in got} == {0: 5, 1: 6}


def commit_v2(conn, group, topic, partitions, retention_ms):
    """OffsetCommit v2 outside group management, asking for its own retention
    time: the error of each of [(partition, offset)]."""
    w = Writer().string(group).int32(-1).string("").int64(retention_ms)
    w.int32(1).string(topic).int32(len(partitions))
    for partition, offset in partitions:
        w.int32(partition).int64(offset).nullable_string("")
    conn.send(group_request(API_OFFSET_COMMIT, 2, w.bytes(), 5))
    r = Reader(conn.recv_frame(timeout=30))
    r.int32()
    topics = r.array(lambda: (r.string(), r.array(lambda: (r.int32(), r.int16()))))
    r.expect_end("OffsetCommit v2")
    return [err for _, err in topics[0][1]]


def test_expiry_larger_than_one_batch(cluster):
    """Offsets that expire together but whose tombstones do not fit one batch
    of __consumer_offsets (message.max.bytes) still expire: the expiry is
    written in as many batches as it takes, as Kafka's coordinator does."""
    cluster.start(controllers=1, brokers=1,
                  broker_config=dict(BROKER_CONFIG, **{"message.max.bytes": 4096,
                                                       "offsets.retention.check.interval.ms":
                                                       1000}))
    # Long names make each tombstone almost as large as its commit: each
    # commit fits a batch, the tombstones of all of them do not.
    topic, group, per_commit, commits = "t" * 200, "g" * 200, 8, 3
    n = per_commit * commits
    cluster.create_topic(topic, n)
    with coordinator_conn(cluster, group) as conn:
        # All of them expire in the same check.
        for k in range(commits):
            parts = [(p, p + 1) for p in range(k * per_commit, (k + 1) * per_commit)]
            assert eventually(lambda: commit_v2(conn, group, topic, parts, 3000)
                              == [ERR_NONE] * per_commit, what="a commit")
    cons = Consumer({"bootstrap.servers": cluster.bootstrap, "group.id": group})
    try:
        tps = [TopicPartition(topic, p) for p in range(n)]
        assert sum(tp.offset >= 0 for tp in cons.committed(tps, timeout=30)) == n
        eventually(lambda: all(tp.offset < 0 for tp in cons.committed(tps, timeout=30)),
                   timeout=15, what="the offsets to expire")
    finally:
        cons.close()
    assert "cannot append" not in cluster.brokers[0].log_text()


ERR_COORDINATOR_LOAD_IN_PROGRESS = 14

# Makes pread(2) of __consumer_offsets fail with EIO while a flag file
# exists, for reads larger than a batch header: the coordinator's load
# reads several batches at once, opening a log reads headers only.
FAILING_READS_C = r"""
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static int failing(int fd, size_t n)
{
    const char *flag = getenv("GR_TEST_FAIL_READS");
    if (!flag || n < 256 || access(flag, F_OK) != 0)
        return 0;
    char p[64], t[4096];
    snprintf(p, sizeof p, "/proc/self/fd/%d", fd);
    ssize_t k = readlink(p, t, sizeof t - 1);
    if (k <= 0)
        return 0;
    t[k] = 0;
    return strstr(t, "/__consumer_offsets-") != NULL;
}

#define WRAP(name)                                                        \
    ssize_t name(int fd, void *buf, size_t n, off_t off)                  \
    {                                                                     \
        static ssize_t (*real)(int, void *, size_t, off_t);               \
        if (!real)                                                        \
            real = (ssize_t(*)(int, void *, size_t, off_t))dlsym(RTLD_NEXT, #name); \
        if (failing(fd, n)) {                                             \
            errno = EIO;                                                  \
            return -1;                                                    \
        }                                                                 \
        return real(fd, buf, n, off);                                     \
    }
WRAP(pread)
WRAP(pread64)
"""


def test_failed_group_load_is_retried(cluster, tmp_path):
    """A read error while the coordinator loads __consumer_offsets is
    retried with a backoff: once the log reads again the groups are
    served, without any change of leadership."""
    cc = shutil.which("cc")
    if not cc:
        pytest.skip("no C compiler to build the failing-reads shim")
    shim = tmp_path / "failing_reads.so"
    (tmp_path / "failing_reads.c").write_text(FAILING_READS_C)
    subprocess.run([cc, "-shared", "-fPIC", "-o", str(shim), str(tmp_path / "failing_reads.c"),
                    "-ldl"], check=True)
    cluster.start(controllers=1, brokers=1,
                  broker_config=dict(BROKER_CONFIG, **{"offsets.topic.num.partitions": 1}))
    broker = cluster.brokers[0]
    cluster.create_topic("load-retry", 1)
    group = "load-retry-group"
    with coordinator_conn(cluster, group) as conn:
        eventually(lambda: commit(conn, group, -1, "", "load-retry", 0, 40) == ERR_NONE,
                   what="a first commit")
        for offset in (41, 42):
            assert commit(conn, group, -1, "", "load-retry", 0, offset) == ERR_NONE
    broker.stop()
    flag = tmp_path / "fail-reads"
    flag.touch()
    broker.env["LD_PRELOAD"] = str(shim)
    broker.env["GR_TEST_FAIL_READS"] = str(flag)
    # A sanitizer build must not insist on coming first in the library list.
    broker.env["ASAN_OPTIONS"] = ":".join(
        x for x in (os.environ.get("ASAN_OPTIONS"), "verify_asan_link_order=0") if x)
    broker.start()
    eventually(lambda: "retrying in" in broker.log_text(), what="a failed load")
    with coordinator_conn(cluster, group) as conn:
        assert commit(conn, group, -1, "", "load-retry", 0, 1) == ERR_COORDINATOR_LOAD_IN_PROGRESS
    flag.unlink()  # the log reads again
    cons = Consumer({"bootstrap.servers": cluster.bootstrap, "group.id": group})
    try:
        got = cons.committed([TopicPartition("load-retry", 0)], timeout=30)
    finally:
        cons.close()
    assert got[0].offset == 42
    assert "__consumer_offsets-0: loaded 1 groups" in broker.log_text()


ERR_NOT_COORDINATOR = 16


def test_joins_pending_at_shutdown(cluster):
    """JoinGroups still waiting for their rebalance when the broker is told
    to stop are answered NOT_COORDINATOR (or their connections closed) and
    nothing of them is left behind: with the sanitizer build, the broker's
    log holds no leak report."""
    cluster.start(controllers=1, brokers=1,
                  broker_config=dict(BROKER_CONFIG,
                                     **{"group.initial.rebalance.delay.ms": 600000}))
    broker = cluster.brokers[0]
    group = "shutdown-group"
    conns = [coordinator_conn(cluster, group) for _ in range(8)]
    try:
        first = conns[0]
        ids = []
        for conn in conns[1:]:  # on the network threads in turn
            j = eventually(lambda: (lambda x: x if x["error_code"] not in RETRIABLE_COORDINATOR
                                    else None)(join(first, group)), what="a coordinator")
            assert j["error_code"] == ERR_MEMBER_ID_REQUIRED
            w = Writer().string(group).int32(10000).int32(10000).string(j["member_id"])
            w.nullable_string(None).string("consumer").int32(1).string("range").int32(2)
            conn.send(group_request(API_JOIN_GROUP, 5, w.raw(b"\0\0").bytes(), 7))
            ids.append(j["member_id"])
        # Its members exist and wait: the rebalance is in progress.
        for member in ids:
            eventually(lambda: heartbeat(first, group, 0, member) == ERR_REBALANCE_IN_PROGRESS,
                       what="the joins waiting on the initial delay")
        assert broker.stop() == 0
        for conn in conns[1:]:
            try:
                r = Reader(conn.recv_frame(timeout=10))
                assert r.int32() == 7
                r.int32()
                assert r.int16() == ERR_NOT_COORDINATOR
            except EOFError:
                pass  # closed before the answer went out: the client retries elsewhere
    finally:
        for conn in conns:
            conn.close()
    log = broker.log_text()
    assert "LeakSanitizer" not in log and "AddressSanitizer" not in log, broker.log_tail(80)
    assert "group answers still pending" not in log
