"""gregorctl's group commands against a KRaft cluster (1 controller, 1
broker): list (merged over brokers, state filter), describe (members, client
ids, hosts, assignment, committed offset, log end offset, lag),
reset-offsets (every mode, dry run versus --execute, refused for an active
group) and delete (NON_EMPTY_GROUP while members remain).  Text for people
and --json for scripts, exit statuses and Kafka error names.
"""

import json
import time

import pytest
from confluent_kafka import Consumer, Producer, TopicPartition

import gregor
from test_gregorctl import as_json, ok

TOPIC = "events"
PARTITIONS = 2
PER_PARTITION = 50


@pytest.fixture(scope="module")
def kraft(tmp_path_factory):
    c = gregor.Cluster(tmp_path_factory.mktemp("ctlgroups"))
    try:
        c.start(controllers=1, brokers=1, broker_config={
            "group.initial.rebalance.delay.ms": 200, "offsets.topic.num.partitions": 3})
        c.create_topic(TOPIC, PARTITIONS)
        p = Producer({"bootstrap.servers": c.bootstrap})
        for i in range(PARTITIONS * PER_PARTITION):
            p.produce(TOPIC, value=str(i).encode(), partition=i % PARTITIONS)
        assert p.flush(30) == 0
        yield c
    finally:
        c.stop_all()


def commit_only(cluster, group, offsets):
    """Commits {partition: offset} for group without joining it (an Empty group)."""
    cons = Consumer({"bootstrap.servers": cluster.bootstrap, "group.id": group,
                     "enable.auto.commit": False})
    try:
        cons.commit(offsets=[TopicPartition(TOPIC, p, o) for p, o in offsets.items()],
                    asynchronous=False)
    finally:
        cons.close()


def committed(cluster, group):
    d = as_json(cluster.gregorctl("group", "describe", group, "--json"))
    return {o["partition"]: o["committed_offset"] for o in d["offsets"]}


@pytest.fixture
def live_member(kraft):
    """A subscribed consumer (client id 'ctl-member') that has its assignment."""
    cons = Consumer({"bootstrap.servers": kraft.bootstrap, "group.id": "live",
                     "client.id": "ctl-member", "enable.auto.commit": False,
                     "auto.offset.reset": "earliest"})
    cons.subscribe([TOPIC])
    deadline = time.monotonic() + 30
    while not cons.assignment():
        assert time.monotonic() < deadline, "no assignment"
        cons.poll(0.2)
    yield cons
    cons.close()


def test_describe_and_list(kraft, live_member):
    commit_only(kraft, "idle", {0: 10, 1: 20})
    live_member.commit(offsets=[TopicPartition(TOPIC, 0, 5)], asynchronous=False)

    d = as_json(kraft.gregorctl("group", "describe", "live", "--json"))
    assert d["group"] == "live" and d["state"] == "Stable"
    assert d["protocol_type"] == "consumer" and d["protocol"]
    assert len(d["members"]) == 1
    m = d["members"][0]
    assert m["client_id"] == "ctl-member" and m["host"]
    assert m["assignment"] == [{"topic": TOPIC, "partitions": list(range(PARTITIONS))}]
    offs = {o["partition"]: o for o in d["offsets"]}
    assert offs[0]["committed_offset"] == 5
    assert offs[0]["log_end_offset"] == PER_PARTITION
    assert offs[0]["lag"] == PER_PARTITION - 5
    assert offs[0]["member_id"] == m["member_id"]
    assert offs[1]["committed_offset"] is None and offs[1]["lag"] is None

    text = ok(kraft.gregorctl("group", "describe", "live")).stdout
    assert "State: Stable" in text and "ctl-member" in text
    rows = [ln.split() for ln in text.splitlines()]
    assert ["TOPIC", "PARTITION", "CURRENT-OFFSET", "LOG-END-OFFSET", "LAG", "CONSUMER-ID"] in rows
    assert [TOPIC, "0", "5", str(PER_PARTITION), str(PER_PARTITION - 5), m["member_id"]] in rows
    assert [TOPIC, "1", "-", str(PER_PARTITION), "-", m["member_id"]] in rows

    listed = as_json(kraft.gregorctl("group", "list", "--json"))["groups"]
    states = {g["group"]: g["state"] for g in listed}
    assert states["live"] == "Stable" and states["idle"] == "Empty"
    only_empty = as_json(kraft.gregorctl("group", "list", "--state", "empty", "--json"))["groups"]
    assert "idle" in [g["group"] for g in only_empty]
    assert all(g["state"] == "Empty" for g in only_empty)
    table = ok(kraft.gregorctl("group", "list")).stdout.splitlines()
    assert table[0].split() == ["GROUP", "STATE", "PROTOCOL-TYPE"]

    r = kraft.gregorctl("group", "describe", "no-such-group", check=False)
    assert r.returncode == 1 and "GROUP_ID_NOT_FOUND" in r.stderr


@pytest.mark.parametrize("mode,args,want", [
    ("earliest", ["--to-earliest"], {0: 0, 1: 0}),
    ("latest", ["--to-latest"], {0: PER_PARTITION, 1: PER_PARTITION}),
    ("offset", ["--to-offset", "30"], {0: 30, 1: 30}),
    ("offset-clamped", ["--to-offset", "100000"], {0: PER_PARTITION, 1: PER_PARTITION}),
    ("shift", ["--shift-by", "-7"], {0: 3, 1: 13}),
    ("shift-clamped", ["--shift-by", "1000"], {0: PER_PARTITION, 1: PER_PARTITION}),
    ("future", ["--to-datetime", "2999-01-01T00:00:00Z"], {0: PER_PARTITION, 1: PER_PARTITION}),
    ("past", ["--to-datetime", "2000-01-01T00:00:00.000+01:00"], {0: 0, 1: 0}),
])
def test_reset_offsets(kraft, mode, args, want):
    group = f"reset-{mode}"
    commit_only(kraft, group, {0: 10, 1: 20})
    plan = as_json(kraft.gregorctl("group", "reset-offsets", group, "--topic", TOPIC, *args,
                             "--json"))
    assert plan["executed"] is False
    assert {p["partition"]: (p["current_offset"], p["new_offset"]) for p in plan["partitions"]} \
        == {0: (10, want[0]), 1: (20, want[1])}
    assert committed(kraft, group) == {0: 10, 1: 20}  # a dry run changes nothing

    text = ok(kraft.gregorctl("group", "reset-offsets", group, "--topic", TOPIC, *args,
                        "--execute")).stdout
    assert [group, TOPIC, "0", "10", str(want[0])] in [ln.split() for ln in text.splitlines()]
    assert committed(kraft, group) == want


def test_reset_refused_for_active_group(kraft, live_member):
    r = kraft.gregorctl("group", "reset-offsets", "live", "--topic", TOPIC, "--to-earliest",
                  "--execute", check=False)
    assert r.returncode == 1
    assert "inactive" in r.stderr and "Stable" in r.stderr
    # The dry run still shows the plan, with a warning.
    r = ok(kraft.gregorctl("group", "reset-offsets", "live", "--topic", TOPIC, "--to-earliest"))
    assert "Warning" in r.stderr and "NEW-OFFSET" in r.stdout


def test_reset_errors(kraft):
    r = kraft.gregorctl("group", "reset-offsets", "nothing-committed", "--topic", TOPIC,
                  "--shift-by", "1", check=False)
    assert r.returncode == 1 and "no committed offset" in r.stderr
    r = kraft.gregorctl("group", "reset-offsets", "g", "--topic", "no-such-topic",
                  "--to-earliest", check=False)
    assert r.returncode == 1 and "UNKNOWN_TOPIC_OR_PARTITION" in r.stderr
    for bad in (["--to-earliest"], ["--topic", TOPIC], ["--topic", TOPIC, "--to-earliest",
                                                        "--to-latest"],
                ["--topic", TOPIC, "--to-datetime", "yesterday"],
                ["--topic", TOPIC, "--to-offset", "-3"]):
        r = kraft.gregorctl("group", "reset-offsets", "g", *bad, check=False)
        assert r.returncode == 2, bad
    assert kraft.gregorctl("group", "list", "--state", "Sleeping", check=False).returncode == 2


def test_delete(kraft, live_member):
    commit_only(kraft, "doomed", {0: 1})
    r = kraft.gregorctl("group", "delete", "live", "doomed", "--json", check=False)
    assert r.returncode == 1
    got = {g["group"]: g["error"] for g in json.loads(r.stdout)["groups"]}
    assert got == {"live": "NON_EMPTY_GROUP", "doomed": None}
    assert "NON_EMPTY_GROUP" in r.stderr
    r = kraft.gregorctl("group", "describe", "doomed", check=False)
    assert r.returncode == 1 and "GROUP_ID_NOT_FOUND" in r.stderr

    r = kraft.gregorctl("group", "delete", "never-existed", check=False)
    assert r.returncode == 1 and "GROUP_ID_NOT_FOUND" in r.stderr
