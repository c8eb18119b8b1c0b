"""gregorctl, the admin CLI, against a KRaft cluster of 1 controller and 1 broker.

Every command goes to the broker, which serves Metadata and DescribeCluster
itself and forwards the admin APIs to the active controller.  The tests check
both the text for people and the --json for scripts (parsed, and checked
against what the broker's own Metadata says), the exit statuses and the
Kafka error names the tool prints.
"""

import json

import pytest

import gregor
from gregor import eventually, gregorctl


def ok(r):
    assert r.returncode == 0, f"exit {r.returncode}\nstdout:\n{r.stdout}\nstderr:\n{r.stderr}"
    return r


def as_json(r):
    ok(r)
    return json.loads(r.stdout)


def topic_names(run):
    return ok(run("topic", "list")).stdout.split()


@pytest.fixture
def kraft(cluster):
    """1 controller + 1 broker; a function that runs gregorctl against the broker."""
    cluster.start(controllers=1, brokers=1)
    bootstrap = cluster.brokers[0].bootstrap

    def run(*args, **kw):
        return gregorctl(*args, bootstrap=bootstrap, **kw)
    run.cluster = cluster
    return run


# ---- no cluster needed ----

def test_help_and_usage_errors():
    r = ok(gregorctl("--help"))
    for words in ("topic create", "topic list", "topic describe", "topic delete",
                  "topic add-partitions", "config describe", "config set", "config delete",
                  "cluster describe", "quorum describe"):
        assert words in r.stdout
    r = ok(gregorctl("topic", "create", "--help"))
    assert "--partitions" in r.stdout and "--if-not-exists" in r.stdout

    for args in (["frobnicate"], ["topic", "frob"], ["topic", "list", "--no-such-flag"],
                 ["topic", "create"], ["topic", "list", "--all"],
                 ["config", "describe"], ["config", "describe", "--topic", "a", "--broker", "1"],
                 ["config", "set", "--topic", "a", "novalue"],
                 ["topic", "add-partitions", "t"], ["topic", "create", "t", "-p", "zero"]):
        r = gregorctl(*args, bootstrap="127.0.0.1:9")
        assert r.returncode == 2, f"{args}: exit {r.returncode}: {r.stderr}"
        assert "usage:" in r.stderr and r.stdout == "", args


def test_unreachable_broker():
    port = gregor.free_port()
    r = gregorctl("topic", "list", bootstrap=f"127.0.0.1:{port}")
    assert r.returncode == 1
    assert f"Error: cannot reach 127.0.0.1:{port}: " in r.stderr
    assert "refused" in r.stderr.lower()


# ---- against a cluster ----

def test_topic_lifecycle(kraft):
    r = ok(kraft("topic", "create", "orders", "-p", "3", "-r", "1",
                 "-c", "retention.ms=3600000", "-c", "cleanup.policy=compact"))
    assert r.stdout.strip() == "Created topic orders."
    ok(kraft("topic", "create", "audit"))

    assert eventually(lambda: topic_names(kraft) == ["audit", "orders"]), topic_names(kraft)
    assert as_json(kraft("topic", "list", "--json")) == {"topics": ["audit", "orders"]}

    # Text: a header line and a line per partition.
    text = ok(kraft("topic", "describe", "orders")).stdout.splitlines()
    assert text[0].startswith("Topic: orders\tTopicId: ")
    assert "PartitionCount: 3" in text[0] and "ReplicationFactor: 1" in text[0]
    assert "retention.ms=3600000" in text[0] and "cleanup.policy=compact" in text[0]
    assert len(text) == 4
    for i, line in enumerate(text[1:]):
        assert f"Partition: {i}\t" in line and "Leader: 101" in line and "Isr: 101" in line

    # JSON agrees with the broker's own Metadata.
    d = as_json(kraft("topic", "describe", "orders", "--json"))
    (t,) = d["topics"]
    assert t["name"] == "orders" and t["partition_count"] == 3
    assert t["replication_factor"] == 1
    assert t["configs"] == {"cleanup.policy": "compact", "retention.ms": "3600000"}
    assert [p["partition"] for p in t["partitions"]] == [0, 1, 2]
    for p in t["partitions"]:
        assert p["leader"] == 101 and p["replicas"] == [101] and p["isr"] == [101]
        assert p["leader_epoch"] >= 0 and p["offline"] == []
    md = kraft.cluster.metadata(kraft.cluster.brokers[0], topics=["orders"])
    assert len(md["topics"]) == 1 and len(md["topics"][0]["partitions"]) == 3
    assert t["topic_id"] != "AAAAAAAAAAAAAAAAAAAAAA"

    # Every topic when none is named.
    names = [x["name"] for x in as_json(kraft("topic", "describe", "--json"))["topics"]]
    assert names == ["audit", "orders"]

    r = ok(kraft("topic", "add-partitions", "orders", "-p", "5"))
    assert eventually(lambda: as_json(kraft("topic", "describe", "orders", "--json"))
                      ["topics"][0]["partition_count"] == 5)

    assert ok(kraft("topic", "delete", "audit")).stdout.strip() == "Deleted topic audit."
    assert eventually(lambda: topic_names(kraft) == ["orders"]), topic_names(kraft)
    r = kraft("topic", "delete", "audit")
    assert r.returncode == 1 and "UNKNOWN_TOPIC_OR_PARTITION" in r.stderr


def test_config_set_describe_delete(kraft):
    ok(kraft("topic", "create", "cfg", "-p", "1", "-r", "1"))
    assert eventually(lambda: "cfg" in topic_names(kraft))

    d = as_json(kraft("config", "describe", "--topic", "cfg", "--json"))
    assert d["resource_type"] == "topic" and d["resource_name"] == "cfg"
    assert d["configs"] == []  # nothing overridden yet

    ok(kraft("config", "set", "--topic", "cfg", "retention.ms=60000",
             "max.message.bytes=2000000"))
    d = as_json(kraft("config", "describe", "--topic", "cfg", "--json"))
    got = {c["name"]: (c["value"], c["source"]) for c in d["configs"]}
    assert got == {"max.message.bytes": ("2000000", "DYNAMIC_TOPIC_CONFIG"),
                   "retention.ms": ("60000", "DYNAMIC_TOPIC_CONFIG")}

    table = ok(kraft("config", "describe", "--topic", "cfg")).stdout.splitlines()
    assert table[0].split() == ["KEY", "VALUE", "SOURCE"]
    assert ["retention.ms", "60000", "DYNAMIC_TOPIC_CONFIG"] in [ln.split() for ln in table]

    # --all adds the defaults.
    d = as_json(kraft("config", "describe", "--topic", "cfg", "--all", "--json"))
    every = {c["name"]: c for c in d["configs"]}
    assert every["retention.ms"]["value"] == "60000"
    assert every["cleanup.policy"]["source"] == "DEFAULT_CONFIG"

    ok(kraft("config", "delete", "--topic", "cfg", "retention.ms"))
    d = as_json(kraft("config", "describe", "--topic", "cfg", "--json"))
    assert [c["name"] for c in d["configs"]] == ["max.message.bytes"]

    r = kraft("config", "set", "--topic", "cfg", "no.such.config=1")
    assert r.returncode == 1 and "INVALID_CONFIG" in r.stderr
    r = kraft("config", "describe", "--topic", "no-such-topic")
    assert r.returncode == 1 and "UNKNOWN_TOPIC_OR_PARTITION" in r.stderr


def test_cluster_describe(kraft):
    d = as_json(kraft("cluster", "describe", "--json"))
    assert d["cluster_id"]
    assert [b["id"] for b in d["brokers"]] == [101]
    b = kraft.cluster.brokers[0]
    assert d["brokers"][0]["host"] == b.host and d["brokers"][0]["port"] == b.port
    text = ok(kraft("cluster", "describe")).stdout
    assert f"ClusterId: {d['cluster_id']}" in text
    assert any(ln.split()[:3] == ["101", b.host, str(b.port)] for ln in text.splitlines())


def test_quorum_describe(kraft):
    d = as_json(kraft("quorum", "describe", "--json"))
    voters = [v["node_id"] for v in d["voters"]]
    assert voters == [c.node_id for c in kraft.cluster.controllers]
    assert d["leader_id"] in voters
    assert d["leader_epoch"] >= 1 and d["high_watermark"] > 0
    for v in d["voters"] + d["observers"]:
        assert v["lag"] == max(0, d["high_watermark"] - v["log_end_offset"])
    assert 101 in [o["node_id"] for o in d["observers"]]  # the broker follows the log
    text = ok(kraft("quorum", "describe")).stdout
    assert f"LeaderId: {d['leader_id']}" in text and "HighWatermark:" in text


def test_create_errors(kraft):
    ok(kraft("topic", "create", "dup"))
    r = kraft("topic", "create", "dup")
    assert r.returncode == 1 and r.stdout == ""
    assert r.stderr.startswith("Error: TOPIC_ALREADY_EXISTS: ")
    assert "dup" in r.stderr
    ok(kraft("topic", "create", "dup", "--if-not-exists"))

    r = kraft("topic", "create", "wide", "-r", "3")
    assert r.returncode == 1 and "INVALID_REPLICATION_FACTOR" in r.stderr

    r = kraft("topic", "create", "badcfg", "-c", "no.such.config=1")
    assert r.returncode == 1 and "INVALID_CONFIG" in r.stderr

    ok(kraft("topic", "create", "dry", "--validate-only"))
    ok(kraft("topic", "create", "real"))
    assert eventually(lambda: "real" in topic_names(kraft))
    assert "dry" not in topic_names(kraft)
