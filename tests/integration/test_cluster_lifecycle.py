"""Cluster behaviours beyond failover: a broker's controlled shutdown, a
controller catching up through a snapshot, and topics auto-created by
Metadata.
"""

import time

from confluent_kafka.admin import AdminClient

import gregor
from gregor import eventually


def partitions(broker, topic):
    with broker.connect() as c:
        md = c.metadata(version=12, topics=[topic])
    for t in md["topics"]:
        if t["name"] == topic and t["error_code"] == gregor.ERR_NONE:
            return {p["partition_index"]: p for p in t["partitions"]}
    return {}


def test_sigterm_moves_leadership_before_the_broker_exits(cluster):
    cluster.start(controllers=1, brokers=3)
    cluster.create_topic("shutdown", 6, 3)
    other = cluster.brokers[0]
    parts = eventually(lambda: partitions(other, "shutdown"), 10.0, "topic listed", poll=0.05)
    leaders = {p["leader_id"] for p in parts.values()}
    victim = next(b for b in cluster.brokers[1:] if b.node_id in leaders)

    started = time.monotonic()
    status = victim.stop(timeout=20.0)
    took = time.monotonic() - started
    assert status == 0, victim.log_tail()
    assert not victim.needed_sigkill
    assert "controlled shutdown complete" in victim.log_text(), victim.log_tail()
    print(f"\n[figure] controlled shutdown took {took:.3f} s")

    # The move was committed before the broker exited: the other brokers
    # learn of it within a metadata round trip, and none is led by it.
    def moved():
        now = partitions(other, "shutdown")
        return now and all(p["leader_id"] != victim.node_id and p["leader_id"] >= 0
                           for p in now.values()) and now
    now = eventually(moved, 1.0, "leaderships moved off the stopped broker", poll=0.05)
    for i, p in now.items():
        if parts[i]["leader_id"] == victim.node_id:
            assert p["leader_epoch"] > parts[i]["leader_epoch"], (i, parts[i], p)
            assert p["leader_id"] in parts[i]["isr_nodes"], (i, parts[i], p)


def test_lagging_controller_catches_up_through_a_snapshot(cluster):
    small = {"metadata.log.max.record.bytes.between.snapshots": 2000,
             "metadata.log.segment.bytes": 8192}
    cluster.start(controllers=3, brokers=1, controller_config=small)
    active, _ = cluster.wait_active_controller(timeout=10.0)
    lagging = next(c for c in cluster.controllers if c is not active)
    cluster.kill9(lagging)

    for batch in range(6):
        cluster.create_topics([(f"snap-{batch}-{i}", 2, 1) for i in range(5)])
    leader, _ = cluster.active_controller()
    eventually(lambda: "wrote snapshot" in leader.log_text(), 10.0,
               "a snapshot written by the leader", poll=0.05)

    cluster.restart(lagging, timeout=20.0)
    eventually(lambda: "installed snapshot" in lagging.log_text(), 15.0,
               "the lagging controller installs the leader's snapshot", poll=0.05)

    # It then follows like any voter: the leader reports it caught up.
    def caught_up():
        q = cluster.quorum_state()
        if not q:
            return None
        voters = {v["replica_id"]: v["log_end_offset"] for v in q["voters"]}
        return voters.get(lagging.node_id) == q["high_watermark"] and q
    eventually(caught_up, 15.0, "the restarted controller at the high watermark", poll=0.05)

    # And it holds the whole state: with the other follower gone, the two
    # left still form a quorum, and every topic is still there.
    current, _ = cluster.active_controller()
    others = [c for c in cluster.controllers if c not in (lagging, current)]
    for c in others:
        cluster.kill9(c)
    admin = AdminClient({"bootstrap.servers": cluster.bootstrap})
    cluster.create_topic("after-snapshot", 1, 1)
    names = admin.list_topics(timeout=10).topics
    expected = {f"snap-{b}-{i}" for b in range(6) for i in range(5)} | {"after-snapshot"}
    assert expected <= set(names), sorted(expected - set(names))


def test_metadata_auto_creates_a_topic(cluster):
    cluster.start(controllers=1, brokers=1)
    broker = cluster.brokers[0]
    with broker.connect() as c:
        first = c.metadata(version=12, topics=["auto-made"], allow_auto_topic_creation=True)
    (t,) = first["topics"]
    # As Kafka answers while it creates the topic.
    assert t["error_code"] in (gregor.ERR_LEADER_NOT_AVAILABLE, gregor.ERR_NONE), t
    parts = eventually(lambda: partitions(broker, "auto-made"), 10.0, "the auto-created topic",
                       poll=0.05)
    assert len(parts) == 1  # num.partitions
    with broker.connect() as c:
        no = c.metadata(version=12, topics=["not-made"], allow_auto_topic_creation=False)
    assert no["topics"][0]["error_code"] == gregor.ERR_UNKNOWN_TOPIC_OR_PARTITION
