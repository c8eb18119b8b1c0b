"""A KRaft cluster on loopback: 3 controllers and 3 brokers.

Topics created through gregorctl and through librdkafka's AdminClient reach
every broker's Metadata quickly; leaders spread over the brokers; the active
controller and a broker can die (kill -9) and come back; metadata survives a
restart of the whole quorum; bad CreateTopics input gets Kafka's error codes.

Figures (failover and propagation times) are printed (pytest -s shows them)
and recorded as test properties.
"""

import os
import re
import subprocess
import time

import pytest

import gregor
from gregor import (ERR_INVALID_PARTITIONS, ERR_INVALID_REPLICATION_FACTOR,
                    ERR_INVALID_TOPIC_EXCEPTION, ERR_NONE, ERR_TOPIC_ALREADY_EXISTS)

# How fast a created topic must show in every broker's Metadata.
PROPAGATION_LIMIT_S = 1.0
# How fast a new active controller must be elected after kill -9.
FAILOVER_LIMIT_S = 10.0
# The broker session timeout the broker-failure test runs with.
SESSION_TIMEOUT_MS = 3000
# What fencing may take beyond the session timeout: the controller's tick,
# the leader election and the brokers catching up with the metadata log.
FENCING_SLACK_S = 4.0

KCAT_PARTITION = re.compile(
    r"^\s*partition (\d+), leader (-?\d+), replicas: ([\d,]*), isrs: ([\d,]*)", re.MULTILINE)


def report(record_property, name, value, unit="s"):
    record_property(name, value)
    print(f"\n[figure] {name} = {value:.3f} {unit}" if unit else f"\n[figure] {name} = {value}")


def admin_client(cluster):
    from confluent_kafka.admin import AdminClient
    conf = {"bootstrap.servers": cluster.bootstrap, "socket.timeout.ms": 10000}
    if os.environ.get("GREGOR_RDKAFKA_DEBUG"):  # e.g. "admin,protocol"
        conf["debug"] = os.environ["GREGOR_RDKAFKA_DEBUG"]
    return AdminClient(conf)


def admin_create(cluster, topics, timeout=20.0):
    """Creates [(name, partitions, rf)] with AdminClient; returns {name: error
    code} (0 for success) and the time the last answer arrived."""
    from confluent_kafka import KafkaException
    from confluent_kafka.admin import NewTopic
    admin = admin_client(cluster)  # kept: destroying it fails the futures
    futures = admin.create_topics(
        [NewTopic(n, p, r) for n, p, r in topics], operation_timeout=timeout,
        request_timeout=timeout)
    codes = {}
    for name, f in futures.items():
        try:
            f.result(timeout=timeout + 5)
            codes[name] = ERR_NONE
        except KafkaException as e:
            codes[name] = e.args[0].code()
    return codes, time.monotonic()


def topic_metadata(broker, name):
    """The topic's entry in this broker's Metadata v12, or None."""
    with broker.connect(timeout=2.0) as c:
        md = c.metadata(topics=[name])
    for t in md["topics"]:
        if t["name"] == name:
            return t
    return None


def complete(t, partitions):
    """A Metadata topic entry with every partition and a leader for each."""
    return (t is not None and t["error_code"] == ERR_NONE
            and sorted(p["partition_index"] for p in t["partitions"]) == list(range(partitions))
            and all(p["error_code"] == ERR_NONE and p["leader_id"] >= 0
                    for p in t["partitions"]))


def wait_topic_everywhere(cluster, name, partitions, since, timeout):
    """Polls every live broker's Metadata directly until the topic is complete
    there; returns {broker id: seconds after `since`}."""
    deadline = since + timeout
    seen = {}
    last = {}
    while True:
        for b in cluster.live(cluster.brokers):
            if b.node_id in seen:
                continue
            try:
                t = topic_metadata(b, name)
            except (OSError, EOFError, TimeoutError, gregor.ProtocolError) as e:
                t = e
            last[b.node_id] = t
            if not isinstance(t, Exception) and complete(t, partitions):
                seen[b.node_id] = time.monotonic() - since
        if len(seen) == len(cluster.live(cluster.brokers)):
            return seen
        if time.monotonic() > deadline:
            pytest.fail(f"topic {name!r} ({partitions} partitions) not complete on every broker "
                        f"{timeout:.1f}s after it was created; seen on {sorted(seen)}; last "
                        f"answers: {last}")
        time.sleep(0.01)


def all_topics(broker):
    """{name: (topic id, partition count)} from this broker's Metadata v12."""
    with broker.connect() as c:
        md = c.metadata()
    return {t["name"]: (t["topic_id"], len(t["partitions"])) for t in md["topics"]}


def listed_brokers(broker):
    with broker.connect(timeout=2.0) as c:
        return sorted(b["node_id"] for b in c.metadata(topics=[])["brokers"])


# ---- propagation and placement -------------------------------------------------

def test_created_topics_reach_every_broker_and_leaders_spread(cluster, record_property):
    cluster.start(controllers=3, brokers=3)
    assert len(cluster.live(cluster.controllers)) == 3
    for b in cluster.brokers:
        assert listed_brokers(b) == [101, 102, 103], f"broker {b.node_id}'s Metadata"

    # gregorctl, through one broker.
    r = cluster.gregorctl("topic", "create", "via-gregorctl", "-p", "6", "-r", "3",
                          bootstrap=cluster.brokers[0].bootstrap, check=False, timeout=30.0)
    acked = time.monotonic()
    assert r.returncode == 0, f"gregorctl topic create failed ({r.returncode}):\n" \
                              f"{r.stdout}\n{r.stderr}"
    seen = wait_topic_everywhere(cluster, "via-gregorctl", 6, acked, timeout=10.0)
    worst = max(seen.values())
    report(record_property, "propagation_gregorctl_s", worst)
    assert worst < PROPAGATION_LIMIT_S, f"gregorctl topic reached the brokers after {seen}"

    # librdkafka's AdminClient, bootstrapped with every broker.
    codes, acked = admin_create(cluster, [("via-adminclient", 6, 3)])
    assert codes == {"via-adminclient": ERR_NONE}
    seen = wait_topic_everywhere(cluster, "via-adminclient", 6, acked, timeout=10.0)
    worst = max(seen.values())
    report(record_property, "propagation_adminclient_s", worst)
    assert worst < PROPAGATION_LIMIT_S, f"AdminClient topic reached the brokers after {seen}"

    # kcat sees both, RF=3 everywhere, and each broker leads some partition.
    for topic in ("via-gregorctl", "via-adminclient"):
        out = subprocess.run(["kcat", "-b", cluster.bootstrap, "-L", "-t", topic, "-m", "5"],
                             stdin=subprocess.DEVNULL, capture_output=True, text=True,
                             timeout=20)
        assert out.returncode == 0, f"kcat -L failed:\n{out.stdout}\n{out.stderr}"
        parts = KCAT_PARTITION.findall(out.stdout)
        assert sorted(int(p[0]) for p in parts) == list(range(6)), out.stdout
        leaders = {int(p[1]) for p in parts}
        assert leaders == {101, 102, 103}, \
            f"{topic}: leaders {sorted(leaders)} do not cover every broker:\n{out.stdout}"
        for _, leader, replicas, isrs in parts:
            reps = [int(x) for x in replicas.split(",") if x]
            assert sorted(reps) == [101, 102, 103], out.stdout
            assert int(leader) in reps, out.stdout
            assert reps[0] == int(leader), f"leader is not the preferred replica:\n{out.stdout}"


# ---- controller failover -----------------------------------------------------

def test_controller_failover_rejoin_and_quorum_restart(cluster, record_property):
    cluster.start(controllers=3, brokers=3)
    old, epoch = cluster.wait_active_controller()
    codes, acked = admin_create(cluster, [("before-failover", 3, 3)])
    assert codes == {"before-failover": ERR_NONE}
    wait_topic_everywhere(cluster, "before-failover", 3, acked, timeout=10.0)

    cluster.kill9(old)
    killed = time.monotonic()
    new, new_epoch = cluster.wait_active_controller(timeout=30.0, min_epoch=epoch + 1,
                                                    poll=0.01)
    failover = time.monotonic() - killed
    report(record_property, "controller_failover_s", failover)
    assert new is not old and new_epoch > epoch
    assert failover < FAILOVER_LIMIT_S, f"new active controller after {failover:.2f}s"

    # The brokers follow the new controller: a topic created now reaches them.
    codes, acked = admin_create(cluster, [("after-failover", 3, 3)])
    assert codes == {"after-failover": ERR_NONE}
    seen = wait_topic_everywhere(cluster, "after-failover", 3, acked, timeout=10.0)
    report(record_property, "propagation_after_failover_s", max(seen.values()))

    # The old controller rejoins as a follower of the new one and catches up.
    cluster.restart(old)
    deadline = time.monotonic() + 10.0
    while not any(r == "follower" and e >= new_epoch and ld == new.node_id
                  for r, e, ld in old.raft_roles()):
        assert time.monotonic() < deadline, \
            f"controller {old.node_id} does not log itself as follower of {new.node_id}:\n" \
            + old.log_tail(30)
        time.sleep(0.05)
    deadline = time.monotonic() + 10.0
    while True:
        q = new.describe_quorum()
        assert q["error_code"] == ERR_NONE and q["leader_id"] == new.node_id, q
        voters = {v["replica_id"]: v["log_end_offset"] for v in q["voters"]}
        assert set(voters) == {1, 2, 3}, f"DescribeQuorum voters: {q['voters']}"
        if voters[old.node_id] == voters[new.node_id]:
            break
        assert time.monotonic() < deadline, \
            f"controller {old.node_id} has not caught up: voters {q['voters']}"
        time.sleep(0.1)

    # Stop and restart the whole quorum: the metadata is on disk.
    before = all_topics(cluster.brokers[0])
    assert {"before-failover", "after-failover"} <= set(before), before
    for c in cluster.controllers:
        c.stop()
    cluster.start_controllers(cluster.controllers)
    active, _ = cluster.wait_active_controller(timeout=20.0)
    for name in ("before-failover", "after-failover"):
        with active.connect() as conn:
            res = conn.create_topics([(name, 3, 3)])["topics"][0]
        assert res["error_code"] == ERR_TOPIC_ALREADY_EXISTS, \
            f"the restarted quorum does not know {name!r}: {res}"
    # A broker with an empty directory learns everything from the quorum.
    fresh = cluster.add_broker(104, timeout=20.0)
    deadline = time.monotonic() + 10.0
    while True:
        after = all_topics(fresh)
        if {k: v for k, v in after.items() if k in before} == before:
            break
        assert time.monotonic() < deadline, \
            f"metadata changed across the quorum restart: before {before}, after {after}"
        time.sleep(0.1)
    for b in cluster.brokers[:3]:
        assert {k: v for k, v in all_topics(b).items() if k in before} == before
    codes, acked = admin_create(cluster, [("after-restart", 2, 3)])
    assert codes == {"after-restart": ERR_NONE}
    wait_topic_everywhere(cluster, "after-restart", 2, acked, timeout=10.0)


# ---- broker failure ------------------------------------------------------------

def test_dead_broker_is_fenced_and_leadership_moves(cluster, record_property):
    cluster.start(controllers=3, brokers=3,
                  controller_config={"broker.session.timeout.ms": SESSION_TIMEOUT_MS},
                  broker_config={"broker.heartbeat.interval.ms": 500})
    codes, acked = admin_create(cluster, [("replicated", 6, 3)])
    assert codes == {"replicated": ERR_NONE}
    wait_topic_everywhere(cluster, "replicated", 6, acked, timeout=10.0)
    before = {p["partition_index"]: p
              for p in topic_metadata(cluster.brokers[0], "replicated")["partitions"]}
    victim = cluster.node(before[0]["leader_id"])
    led = [i for i, p in before.items() if p["leader_id"] == victim.node_id]
    survivors = [b for b in cluster.brokers if b is not victim]

    cluster.kill9(victim)
    killed = time.monotonic()
    limit = SESSION_TIMEOUT_MS / 1000 + FENCING_SLACK_S
    problems = None
    while True:
        problems = []
        for b in survivors:
            try:
                if victim.node_id in listed_brokers(b):
                    problems.append(f"broker {b.node_id} still lists {victim.node_id}")
                t = topic_metadata(b, "replicated")
            except (OSError, EOFError, TimeoutError, gregor.ProtocolError) as e:
                problems.append(f"broker {b.node_id}: {e!r}")
                continue
            for p in (t or {}).get("partitions", []):
                old = before[p["partition_index"]]
                where = f"broker {b.node_id}, partition {p['partition_index']}: {p}"
                if p["leader_id"] == victim.node_id or p["leader_id"] < 0:
                    problems.append(f"no new leader ({where})")
                elif p["leader_id"] not in old["isr_nodes"]:
                    problems.append(f"leader outside the old ISR {old['isr_nodes']} ({where})")
                if p["partition_index"] in led and p["leader_epoch"] <= old["leader_epoch"]:
                    problems.append(f"leader epoch not above {old['leader_epoch']} ({where})")
                if victim.node_id in p["isr_nodes"]:
                    problems.append(f"dead broker still in the ISR ({where})")
                if victim.node_id in p["replica_nodes"] and \
                        victim.node_id not in p["offline_replicas"]:
                    problems.append(f"dead broker not listed offline ({where})")
            if t is None or len(t["partitions"]) != 6:
                problems.append(f"broker {b.node_id}: topic entry {t}")
        if not problems:
            break
        if time.monotonic() - killed > limit:
            pytest.fail(f"{limit:.1f}s after kill -9 of broker {victim.node_id} "
                        f"(leader of {led}):\n" + "\n".join(problems))
        time.sleep(0.02)
    fenced = time.monotonic() - killed
    report(record_property, "broker_fencing_and_election_s", fenced)

    cluster.restart(victim, timeout=20.0)
    cluster.wait_brokers_listed([101, 102, 103], timeout=10.0)
    deadline = time.monotonic() + 10.0
    while True:
        offline = [p for b in cluster.brokers
                   for p in topic_metadata(b, "replicated")["partitions"]
                   if victim.node_id in p["offline_replicas"]]
        if not offline:
            break
        assert time.monotonic() < deadline, \
            f"broker {victim.node_id} is back but still listed offline: {offline}"
        time.sleep(0.05)


# ---- bad input -----------------------------------------------------------------

BAD_NAMES = [".", "..", "a" * 250, "a/b"]


def test_create_topics_bad_input_gets_kafka_errors(cluster):
    cluster.start(controllers=3, brokers=3)
    codes, acked = admin_create(cluster, [("existing", 1, 3)])
    assert codes == {"existing": ERR_NONE}
    wait_topic_everywhere(cluster, "existing", 1, acked, timeout=10.0)

    expected = {name: ERR_INVALID_TOPIC_EXCEPTION for name in BAD_NAMES}
    expected.update({"zero-partitions": ERR_INVALID_PARTITIONS,
                     "existing": ERR_TOPIC_ALREADY_EXISTS,
                     "rf-above-brokers": ERR_INVALID_REPLICATION_FACTOR})
    shapes = {"zero-partitions": (0, 1), "rf-above-brokers": (1, 4)}

    # librdkafka, one topic per request so one answer cannot mask another.
    for name, want in expected.items():
        p, rf = shapes.get(name, (1, 1))
        got, _ = admin_create(cluster, [(name, p, rf)])
        assert got == {name: want}, f"AdminClient create {name[:20]!r} ({p}, {rf})"

    # Raw CreateTopics v7 (and the oldest flexible, v5), to a broker and to the
    # active controller: negative counts too, which librdkafka refuses to send.
    raw_expected = dict(expected)
    raw_expected["negative-partitions"] = ERR_INVALID_PARTITIONS
    shapes["negative-partitions"] = (-5, 1)
    active, _ = cluster.wait_active_controller()
    for node in (cluster.brokers[1], active):
        for version in (7, 5):
            with node.connect(timeout=10.0) as c:
                resp = c.create_topics(
                    [(n, *shapes.get(n, (1, 1))) for n in raw_expected], version=version)
            got = {t["name"]: t["error_code"] for t in resp["topics"]}
            assert got == raw_expected, f"{node.role} {node.node_id}, CreateTopics v{version}"
            for t in resp["topics"]:
                assert t["error_message"], f"no error message for {t['name'][:20]!r}: {t}"
                if version >= 7:
                    assert t["topic_id"] == bytes(16), t

    # Still healthy: every node up, every broker listed, a valid create works,
    # and no bad name was created.
    assert all(n.alive() for n in cluster.controllers + cluster.brokers)
    for b in cluster.brokers:
        assert listed_brokers(b) == [101, 102, 103]
    codes, acked = admin_create(cluster, [("valid-after-errors", 3, 3)])
    assert codes == {"valid-after-errors": ERR_NONE}
    wait_topic_everywhere(cluster, "valid-after-errors", 3, acked, timeout=10.0)
    names = set(all_topics(cluster.brokers[0]))
    assert names & set(raw_expected) == {"existing"}, names
