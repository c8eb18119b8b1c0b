"""FindCoordinator: the coordinator of a group or transactional id is the
leader of partition hash(key) mod N of the internal topic, which is created
on first use with the internal topic's settings (partition count from
offsets.topic.num.partitions / transaction.state.log.num.partitions,
replication factor capped at the live broker count, compacted), and flagged
internal in Metadata.  Raw protocol, every version.
"""

import json
import time

import pytest

import gregor
from gregor import ERR_COORDINATOR_NOT_AVAILABLE, ERR_INVALID_REQUEST, ERR_NONE

OFFSETS = "__consumer_offsets"
TXN = "__transaction_state"
GROUP_PARTITIONS = 6
TXN_PARTITIONS = 4


@pytest.fixture(scope="module")
def two_brokers(tmp_path_factory):
    """1 controller, 2 brokers; replication factors left at Kafka's 3, so
    both internal topics must be capped at 2."""
    c = gregor.Cluster(tmp_path_factory.mktemp("findcoord"))
    try:
        c.start(controllers=1, brokers=2, broker_config={
            "offsets.topic.num.partitions": GROUP_PARTITIONS,
            "transaction.state.log.num.partitions": TXN_PARTITIONS})
        yield c
    finally:
        c.stop_all()


def topic_md(cluster, name):
    md = cluster.metadata(cluster.brokers[0], topics=[name])
    return next(t for t in md["topics"] if t["name"] == name)


def leaders(cluster, name):
    return {p["partition_index"]: p["leader_id"] for p in topic_md(cluster, name)["partitions"]}


def wait_found(conn, keys, key_type, version=6, timeout=20.0):
    """FindCoordinator until every key has a coordinator."""
    deadline = time.monotonic() + timeout
    while True:
        got = conn.find_coordinator(keys, key_type, version)
        if all(c["error_code"] == ERR_NONE for c in got):
            return got
        assert time.monotonic() < deadline, f"no coordinator for {keys}: {got}"
        time.sleep(0.1)


def endpoint(cluster, node_id):
    b = cluster.node(node_id)
    return b.host, b.port


def configs(cluster, topic):
    r = cluster.gregorctl("config", "describe", "--topic", topic, "--json", timeout=30)
    return {c["name"]: c["value"] for c in json.loads(r.stdout)["configs"]}


def test_group_coordinator_created_on_first_use(two_brokers):
    c = two_brokers
    with c.brokers[0].connect() as conn:
        # Nothing has asked for the topic yet: it does not exist, and the first
        # answer is COORDINATOR_NOT_AVAILABLE with Kafka's "no node".
        assert topic_md(c, OFFSETS)["error_code"] == gregor.ERR_UNKNOWN_TOPIC_OR_PARTITION
        first = conn.find_coordinator("g-first", 0, version=3)[0]
        assert first["error_code"] == ERR_COORDINATOR_NOT_AVAILABLE
        assert (first["node_id"], first["host"], first["port"]) == (-1, "", -1)

        found = wait_found(conn, ["g-first"], 0, version=3)[0]

    t = topic_md(c, OFFSETS)
    assert t["is_internal"] is True
    assert len(t["partitions"]) == GROUP_PARTITIONS
    # offsets.topic.replication.factor 3, capped at the 2 live brokers.
    assert all(len(p["replica_nodes"]) == 2 for p in t["partitions"])
    assert any("replication factor 2" in b.log_text() and OFFSETS in b.log_text()
               for b in c.brokers)
    cfg = configs(c, OFFSETS)
    assert cfg["cleanup.policy"] == "compact"
    assert cfg["compression.type"] == "producer"
    assert cfg["segment.bytes"] == "104857600"

    want = leaders(c, OFFSETS)[gregor.coordinator_partition("g-first", GROUP_PARTITIONS)]
    assert found["node_id"] == want
    assert (found["host"], found["port"]) == endpoint(c, want)


@pytest.mark.parametrize("version", [0, 1, 2, 3])
def test_single_key_versions(two_brokers, version):
    c = two_brokers
    keys = ["alpha", "beta", "gamma", "delta", "", "gr\u00fcppe-\U0001F600"]
    with c.brokers[1].connect() as conn:
        wait_found(conn, ["warm"], 0)
        lead = leaders(c, OFFSETS)
        seen = set()
        for k in keys:
            got = conn.find_coordinator(k, 0, version)[0]
            assert got["error_code"] == ERR_NONE, (k, got)
            want = lead[gregor.coordinator_partition(k, GROUP_PARTITIONS)]
            assert got["node_id"] == want, k
            assert (got["host"], got["port"]) == endpoint(c, want)
            if version >= 1:
                assert got["error_message"] is None
            seen.add(gregor.coordinator_partition(k, GROUP_PARTITIONS))
        assert len(seen) > 1  # the keys really spread over partitions


@pytest.mark.parametrize("version", [4, 5, 6])
def test_batched_group_and_transaction_keys(two_brokers, version):
    c = two_brokers
    cases = [(["g1", "g2", "g3", "consumers-of-orders"], 0, OFFSETS, GROUP_PARTITIONS),
             (["tx-a", "tx-b", "tx-c"], 1, TXN, TXN_PARTITIONS)]
    with c.brokers[0].connect() as conn:
        for keys, key_type, topic, partitions in cases:
            got = wait_found(conn, keys, key_type, version)
            assert [x["key"] for x in got] == keys
            lead = leaders(c, topic)
            for x in got:
                want = lead[gregor.coordinator_partition(x["key"], partitions)]
                assert (x["node_id"], x["host"], x["port"]) == (want, *endpoint(c, want))

        assert conn.find_coordinator([], 0, version) == []


def test_transaction_topic_settings(two_brokers):
    c = two_brokers
    with c.brokers[0].connect() as conn:
        wait_found(conn, ["tx-settings"], 1)
    t = topic_md(c, TXN)
    assert t["is_internal"] is True
    assert len(t["partitions"]) == TXN_PARTITIONS
    assert all(len(p["replica_nodes"]) == 2 for p in t["partitions"])
    cfg = configs(c, TXN)
    assert cfg["cleanup.policy"] == "compact"
    assert cfg["compression.type"] == "uncompressed"
    assert cfg["unclean.leader.election.enable"] == "false"
    assert cfg["min.insync.replicas"] == "2"
    assert cfg["segment.bytes"] == "104857600"


def test_bad_key_type(two_brokers):
    c = two_brokers
    with c.brokers[0].connect() as conn:
        for version in (1, 2, 3):
            got = conn.find_coordinator("g", 7, version)[0]
            assert got["error_code"] == ERR_INVALID_REQUEST
            assert got["node_id"] == -1
        got = conn.find_coordinator(["a", "b"], 9, 5)
        assert [(x["key"], x["error_code"]) for x in got] == \
            [("a", ERR_INVALID_REQUEST), ("b", ERR_INVALID_REQUEST)]
        # The connection stays usable.
        assert conn.find_coordinator(["a"], 0, 5)[0]["key"] == "a"


def test_ordinary_topics_not_internal(two_brokers):
    c = two_brokers
    with c.brokers[0].connect() as conn:
        conn.create_topics([("__not_internal", 1, 1)])
    deadline = time.monotonic() + 10
    while topic_md(c, "__not_internal")["error_code"] != ERR_NONE:
        assert time.monotonic() < deadline
        time.sleep(0.05)
    assert topic_md(c, "__not_internal")["is_internal"] is False


def test_metadata_auto_create_uses_internal_settings(cluster):
    """A client's Metadata with auto-creation must not create
    __consumer_offsets with the ordinary defaults."""
    cluster.start(controllers=1, brokers=1,
                  broker_config={"offsets.topic.num.partitions": 3})
    b = cluster.brokers[0]
    deadline = time.monotonic() + 15
    with b.connect() as conn:
        while True:
            md = conn.metadata(topics=[OFFSETS], allow_auto_topic_creation=True)
            t = md["topics"][0]
            if t["error_code"] == ERR_NONE and all(p["leader_id"] >= 0 for p in t["partitions"]):
                break
            assert time.monotonic() < deadline, t
            time.sleep(0.1)
    assert t["is_internal"] is True and len(t["partitions"]) == 3
    assert configs(cluster, OFFSETS)["cleanup.policy"] == "compact"


def test_advertised(two_brokers):
    with two_brokers.brokers[0].connect() as conn:
        apis = conn.api_versions(3)["apis"]
    assert apis[gregor.API_FIND_COORDINATOR] == (0, 6)


def test_hostile_bodies_close_only_their_connection(two_brokers):
    b = two_brokers.brokers[0]
    bodies = [
        (4, gregor.Writer().int8(0).uvarint(0x7FFFFFFF).bytes()),  # a count beyond the frame
        (4, gregor.Writer().int8(0).uvarint(3).uvarint(200).raw(b"ab").bytes()),  # short string
        (2, gregor.Writer().int16(50).raw(b"short").bytes()),  # v2 key cut short
        (0, b""),  # no key at all
    ]
    for version, body in bodies:
        with b.connect() as conn:
            conn.send(gregor.encode_request(gregor.API_FIND_COORDINATOR, version, 9, body,
                                            flexible=version >= 3))
            closed, data = conn.wait_closed()
            assert closed and not data, f"v{version} {body.hex()} was answered: {data.hex()}"
    with b.connect() as conn:
        assert conn.find_coordinator(["still-here"], 0, 4)[0]["key"] == "still-here"
