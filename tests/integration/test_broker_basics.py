"""A single broker answers real Kafka clients: kcat, librdkafka
(confluent-kafka), kafka-python, and exact ApiVersions/Metadata bytes."""

import re

import pytest

import gregor
from gregor import (API_API_VERSIONS, API_METADATA, API_VERSIONS_MAX, ERR_NONE,
                    ERR_UNKNOWN_TOPIC_OR_PARTITION, ERR_UNSUPPORTED_VERSION, METADATA_MAX)

BROKER_LINE = re.compile(r"^\s*broker (-?\d+) at (\S+):(\d+)", re.MULTILINE)


def kcat_brokers(bootstrap):
    """Runs kcat -L; returns [(id, host, port)] of the brokers it lists."""
    r = gregor.kcat_list(bootstrap)
    assert r.returncode == 0, f"kcat -L failed ({r.returncode}):\n{r.stdout}\n{r.stderr}"
    return [(int(i), h, int(p)) for i, h, p in BROKER_LINE.findall(r.stdout)], r.stdout


def assert_supported_apis(apis):
    """The broker's ApiVersions list: well formed, and covering what it promises."""
    for key, (lo, hi) in apis.items():
        assert 0 <= lo <= hi, f"api {key}: bad version range {lo}-{hi}"
    assert API_API_VERSIONS in apis, f"ApiVersions (18) missing from {apis}"
    lo, hi = apis[API_API_VERSIONS]
    assert lo == 0 and hi >= API_VERSIONS_MAX, \
        f"ApiVersions range {lo}-{hi}, want 0-{API_VERSIONS_MAX}"
    assert API_METADATA in apis, f"Metadata (3) missing from {apis}"
    lo, hi = apis[API_METADATA]
    assert lo == 0 and hi >= METADATA_MAX, f"Metadata range {lo}-{hi}, want 0-{METADATA_MAX}"


# ---- kcat ----------------------------------------------------------------

def test_kcat_lists_the_broker(cluster):
    # A non-default id, so an id that does not come from the config shows.
    broker = cluster.broker(node_id=42)
    brokers, out = kcat_brokers(broker.bootstrap)
    assert brokers == [(42, "127.0.0.1", broker.port)], out
    assert re.search(r"^\s*1 brokers:", out, re.MULTILINE), out


# ---- client libraries ----------------------------------------------------

def test_confluent_admin_list_topics(broker):
    from confluent_kafka.admin import AdminClient
    admin = AdminClient({"bootstrap.servers": broker.bootstrap, "socket.timeout.ms": 5000})
    try:
        md = admin.list_topics(timeout=5)
    finally:
        del admin
    assert list(md.brokers) == [broker.node_id]
    b = md.brokers[broker.node_id]
    assert (b.id, b.host, b.port) == (broker.node_id, "127.0.0.1", broker.port)
    assert isinstance(md.cluster_id, str) and md.cluster_id, f"cluster id {md.cluster_id!r}"
    assert md.controller_id == broker.node_id
    assert md.topics == {}


def test_kafka_python_describe_cluster(broker):
    from kafka.admin import KafkaAdminClient
    admin = KafkaAdminClient(bootstrap_servers=broker.bootstrap, request_timeout_ms=5000,
                             api_version_auto_timeout_ms=5000)
    try:
        cluster = admin.describe_cluster()
    finally:
        admin.close()
    brokers = [(b["node_id"], b["host"], b["port"]) for b in cluster["brokers"]]
    assert brokers == [(broker.node_id, "127.0.0.1", broker.port)], cluster
    assert isinstance(cluster["cluster_id"], str) and cluster["cluster_id"], cluster
    assert cluster["controller_id"] == broker.node_id, cluster

    # The raw protocol sees the same cluster id.
    with broker.connect() as c:
        assert c.metadata(version=12)["cluster_id"] == cluster["cluster_id"]


# ---- ApiVersions, byte by byte -------------------------------------------

@pytest.mark.parametrize("version", [0, 1, 2, 3, 4])
def test_api_versions(broker, version):
    with broker.connect() as c:
        c.next_correlation_id = 0x1234567 + version
        resp = c.api_versions(version=version, client_id=f"gregor-tests-v{version}",
                              software_name="gregor-integration", software_version="0.1-test")
        assert resp["correlation_id"] == 0x1234567 + version
        assert resp["error_code"] == ERR_NONE
        assert_supported_apis(resp["apis"])
        if version >= 1:
            assert resp["throttle_time_ms"] == 0

        # The same connection keeps working, and the list does not depend on
        # the version asked for.
        again = c.api_versions(version=0)
        assert again["correlation_id"] == 0x1234567 + version + 1
        assert again["apis"] == resp["apis"]


def test_api_versions_v3_without_client_id(broker):
    """A null client id in header v2 is legal."""
    with broker.connect() as c:
        c.send(gregor.api_versions_request(3, 77, client_id=None))
        resp = gregor.parse_api_versions_response(c.recv_frame(), 3)
    assert resp["correlation_id"] == 77 and resp["error_code"] == ERR_NONE
    assert_supported_apis(resp["apis"])


def test_api_versions_unsupported_version(broker):
    with broker.connect() as c:
        reference = c.api_versions(version=0)["apis"]
        # A newer client sends a flexible header and body; the broker answers
        # in a v0 body so any client can read the error and the list.
        c.send(gregor.api_versions_request(99, 0x7EADBEEF))
        resp = gregor.parse_api_versions_response(c.recv_frame(), 0)
        assert resp["correlation_id"] == 0x7EADBEEF
        assert resp["error_code"] == ERR_UNSUPPORTED_VERSION
        # As Kafka does, the list holds only ApiVersions' own range: clients
        # (KIP-511) read it to pick the version to retry with.
        apis = resp["apis"]
        assert apis == {API_API_VERSIONS: reference[API_API_VERSIONS]}, apis
        lo, hi = apis[API_API_VERSIONS]
        assert lo == 0 and hi >= API_VERSIONS_MAX, apis
        # The connection stays usable: the client retries with a version it
        # now knows the broker supports.
        assert c.api_versions(version=3)["error_code"] == ERR_NONE


def test_pipelined_requests_answered_in_order(broker):
    """Kafka answers a connection's requests in the order they were sent."""
    with broker.connect() as c:
        reqs = []
        for i in range(20):
            cid = 1000 + i
            if i % 3 == 0:
                reqs.append((cid, "m", gregor.metadata_request(1 + i % 12, cid), 1 + i % 12))
            else:
                v = i % 5
                reqs.append((cid, "a", gregor.api_versions_request(v, cid), v))
        c.send(b"".join(r[2] for r in reqs))
        for cid, kind, _, v in reqs:
            payload = c.recv_frame()
            if kind == "m":
                resp = gregor.parse_metadata_response(payload, v)
            else:
                resp = gregor.parse_api_versions_response(payload, v)
                assert resp["error_code"] == ERR_NONE
            assert resp["correlation_id"] == cid


# ---- Metadata ------------------------------------------------------------

def test_metadata_every_version(broker):
    cluster_ids = set()
    with broker.connect() as c:
        for v in range(0, METADATA_MAX + 1):
            md = c.metadata(version=v)
            brokers = [(b["node_id"], b["host"], b["port"]) for b in md["brokers"]]
            assert brokers == [(broker.node_id, "127.0.0.1", broker.port)], f"v{v}: {md}"
            assert md["topics"] == [], f"v{v}: {md}"
            if v >= 1:
                assert md["controller_id"] == broker.node_id, f"v{v}: {md}"
            if v >= 2:
                assert md["cluster_id"], f"v{v}: {md}"
                cluster_ids.add(md["cluster_id"])
    assert len(cluster_ids) == 1, cluster_ids


NO_SUCH_TOPIC = "gregor-no-such-topic"


def test_metadata_unknown_topic(cluster):
    # Kafka auto-creates topics named in Metadata v1-v3 when the broker allows
    # it; turn that off so the answer stays "unknown topic" whatever the
    # broker learns to do later.
    broker = cluster.broker(overrides={"auto.create.topics.enable": "false"})
    with broker.connect() as c:
        for v in range(1, METADATA_MAX + 1):
            md = c.metadata(version=v, topics=[NO_SUCH_TOPIC])
            assert len(md["topics"]) == 1, f"v{v}: {md}"
            t = md["topics"][0]
            assert t["name"] == NO_SUCH_TOPIC, f"v{v}: {t}"
            assert t["error_code"] == ERR_UNKNOWN_TOPIC_OR_PARTITION, f"v{v}: {t}"
            assert t["partitions"] == [], f"v{v}: {t}"
            assert len(md["brokers"]) == 1, f"v{v}: {md}"

    from confluent_kafka import KafkaError
    from confluent_kafka.admin import AdminClient
    admin = AdminClient({"bootstrap.servers": broker.bootstrap})
    try:
        md = admin.list_topics(topic=NO_SUCH_TOPIC, timeout=5)
    finally:
        del admin
    assert NO_SUCH_TOPIC in md.topics, md.topics
    err = md.topics[NO_SUCH_TOPIC].error
    assert err is not None and err.code() == KafkaError.UNKNOWN_TOPIC_OR_PART, err


# ---- listeners -----------------------------------------------------------

def test_two_listeners(cluster):
    broker = cluster.broker(listener_names=("PLAINTEXT", "INTERNAL"))
    p1, p2 = broker.ports["PLAINTEXT"], broker.ports["INTERNAL"]
    assert p1 != p2
    for name, port in (("PLAINTEXT", p1), ("INTERNAL", p2)):
        with broker.connect(name) as c:
            resp = c.api_versions(version=3)
            assert resp["error_code"] == ERR_NONE
            assert_supported_apis(resp["apis"])
            md = c.metadata(version=12)
        # Kafka answers Metadata with the endpoints of the listener the
        # request came in on, so internal clients stay on the internal network.
        hosts = [(b["node_id"], b["host"], b["port"]) for b in md["brokers"]]
        assert hosts == [(broker.node_id, "127.0.0.1", port)], f"via {name}: {md}"
        brokers, out = kcat_brokers(broker.address(name))
        assert brokers == [(broker.node_id, "127.0.0.1", port)], f"via {name}:\n{out}"


# ---- configuration -------------------------------------------------------

def test_non_numeric_node_id_is_refused(cluster):
    node = cluster.add(gregor.Broker, overrides={"node.id": "abc"})
    node.expect_exit = True
    node.launch()
    rc = node.wait_exit(5)
    assert rc is not None, "broker still running 5 s after being given node.id=abc"
    assert rc != 0
    assert "node.id" in node.log_text(), node.log_tail()


def test_missing_node_id_is_refused(cluster):
    node = cluster.add(gregor.Broker, write_node_id=False)
    node.expect_exit = True
    node.launch()
    rc = node.wait_exit(5)
    assert rc is not None, "broker still running 5 s after being started without node.id"
    assert rc != 0
    assert "node.id" in node.log_text(), node.log_tail()


def test_unknown_keys_are_warned_about(cluster):
    broker = cluster.broker(config={"gregor.test.unknown.file.key": "1"},
                            overrides={"gregor.test.unknown.override.key": "2"})
    with broker.connect() as c:
        assert c.api_versions(version=3)["error_code"] == ERR_NONE
    log = broker.log_text()
    assert "gregor.test.unknown.file.key" in log, broker.log_tail()
    assert "gregor.test.unknown.override.key" in log, broker.log_tail()



# ---- restart -------------------------------------------------------------

def test_restart_keeps_port_and_cluster_id(broker):
    with broker.connect() as c:
        before = c.metadata(version=12)["cluster_id"]
        # An established client connection at shutdown must not keep the
        # port from being bound again.
        broker.stop()
        assert c.wait_closed(timeout=5)[0], "client connection not closed by the shutdown"
    assert not broker.needed_sigkill, "broker ignored SIGTERM for 10 s"
    port = broker.port
    broker.start()
    assert broker.port == port
    with broker.connect() as c:
        md = c.metadata(version=12)
    # The cluster id lives with the data (meta.properties in log.dirs).
    assert md["cluster_id"] == before
    assert [(b["node_id"], b["port"]) for b in md["brokers"]] == [(broker.node_id, port)]


# ---- where configuration comes from --------------------------------------

def test_config_from_environment(cluster):
    """GREGOR_<KEY> variables configure a node (node.id -> GREGOR_NODE_ID)."""
    broker = cluster.broker(node_id=7, write_node_id=False, env={"GREGOR_NODE_ID": "7"})
    with broker.connect() as c:
        assert [b["node_id"] for b in c.metadata(version=12)["brokers"]] == [7]


def test_config_precedence(cluster):
    """Environment, then the config file, then --override: each wins over the
    one before."""
    env = {"GREGOR_NODE_ID": "7"}
    from_override = cluster.broker(node_id=9, config={"node.id": "8"},
                                   overrides={"node.id": "9"}, env=env)
    from_file = cluster.broker(node_id=8, config={"node.id": "8"}, env=env)
    for broker in (from_override, from_file):
        with broker.connect() as c:
            ids = [b["node_id"] for b in c.metadata(version=12)["brokers"]]
        assert ids == [broker.node_id]
