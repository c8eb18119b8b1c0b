"""The log APIs with raw requests: DeleteRecords (with ListOffsets, Fetch
and a confluent-kafka consumer seeing the new log start offset),
DescribeLogDirs (every partition, sizes as on disk, an offline directory)
and OffsetForLeaderEpoch (answers across leader epochs, fenced and unknown
epochs), plus the errors for partitions led elsewhere or unknown.
"""

import time

from confluent_kafka import Consumer, TopicPartition

import gregor
from test_gregorctl import as_json, ok
from gregor import fetch_v4, gregorctl, parse_fetch_v4, raw_produce, record_batch

ERR_NONE = 0
ERR_OFFSET_OUT_OF_RANGE = 1
ERR_UNKNOWN_TOPIC_OR_PARTITION = 3
ERR_NOT_LEADER_OR_FOLLOWER = 6
ERR_INVALID_TOPIC_EXCEPTION = 17
ERR_POLICY_VIOLATION = 44
ERR_KAFKA_STORAGE_ERROR = 56
ERR_FENCED_LEADER_EPOCH = 74
ERR_UNKNOWN_LEADER_EPOCH = 75
API_FETCH = 1

# The versions served: Kafka 4.0's ranges.
VERSIONS = {gregor.API_DELETE_RECORDS: (0, 2), gregor.API_OFFSET_FOR_LEADER_EPOCH: (2, 4),
            gregor.API_DESCRIBE_LOG_DIRS: (1, 4)}


def produce(broker, topic, partition, n, tries=100):
    """Appends one batch of n records (retrying while leadership settles);
    returns its base offset."""
    batch = record_batch([(None, f"v{i}".encode()) for i in range(n)])
    for _ in range(tries):
        p = raw_produce(broker, 7, -1, {topic: {partition: batch}})[topic][partition]
        if p["error_code"] == ERR_NONE:
            return p["base_offset"]
        time.sleep(0.05)
    raise AssertionError(f"produce to {topic}-{partition}: error {p['error_code']}")


def watermarks(cluster, topic, partition):
    """(earliest, latest) by ListOffsets, as confluent-kafka asks them."""
    cons = Consumer({"bootstrap.servers": cluster.bootstrap, "group.id": "unused"})
    try:
        return cons.get_watermark_offsets(TopicPartition(topic, partition), timeout=10)
    finally:
        cons.close()


def raw_fetch(broker, topic, partition, offset):
    with broker.connect() as c:
        c.send(gregor.encode_request(API_FETCH, 4, 3, fetch_v4(topic, partition, offset, 0)))
        _, parts = parse_fetch_v4(c.recv_frame())
    return parts[0]


def leader(cluster, broker, topic, partition=0):
    md = cluster.metadata(broker, topics=[topic])
    p = [p for t in md["topics"] if t["name"] == topic for p in t["partitions"]
         if p["partition_index"] == partition][0]
    return p["leader_id"], p["leader_epoch"]


def test_versions_and_malformed_requests(single):
    """The advertised ranges are the served ones: a version outside them, or
    a body cut short, closes the connection (Kafka's answer to a request it
    cannot parse) and the broker keeps serving."""
    b = single.brokers[0]
    with b.connect() as c:
        apis = c.api_versions()["apis"]
    for key, rng in VERSIONS.items():
        assert apis[key] == rng
    whole = gregor.delete_records_request(2, 1, {"t": {0: 1}})
    bad = [gregor.describe_log_dirs_request(0, 1),
           gregor.offset_for_leader_epoch_request(1, 1, {"t": [(0, -1, 0)]}),
           gregor.delete_records_request(3, 1, {"t": {0: 1}}),
           gregor.frame(whole[4:-6])]  # the body ends before the timeout
    for request in bad:
        with b.connect() as c:
            c.send(request)
            closed, data = c.wait_closed()
        assert closed and data == b""
    with b.connect() as c:
        assert c.describe_log_dirs(version=1)["results"][0]["error_code"] == ERR_NONE


def test_delete_records(single):
    b = single.brokers[0]
    single.create_topics([("dr", 2, 1), ("__transaction_state", 1, 1)])
    single.create_topic("compacted", config={"cleanup.policy": "compact"})
    for _ in range(2):
        produce(b, "dr", 0, 10)  # offsets 0-19 in two batches
    with b.connect() as c:
        r = c.delete_records({"dr": {0: 5}})["topics"]["dr"][0]
        assert (r["error_code"], r["low_watermark"]) == (ERR_NONE, 5)
        # Below the log start: nothing moves, the low watermark is still 5.
        r = c.delete_records({"dr": {0: 3}}, version=0)["topics"]["dr"][0]
        assert (r["error_code"], r["low_watermark"]) == (ERR_NONE, 5)
        # Above the high watermark, or negative other than -1: out of range.
        got = c.delete_records({"dr": {0: 21, 1: -2}}, version=1)["topics"]["dr"]
        assert got[0]["error_code"] == ERR_OFFSET_OUT_OF_RANGE
        assert got[0]["low_watermark"] == -1
        assert got[1]["error_code"] == ERR_OFFSET_OUT_OF_RANGE
        # -1 on an empty partition: its high watermark, 0.
        r = c.delete_records({"dr": {1: -1}})["topics"]["dr"][1]
        assert (r["error_code"], r["low_watermark"]) == (ERR_NONE, 0)
        got = c.delete_records({"nope": {0: 1}, "dr": {9: 1}, "compacted": {0: 0},
                                "__transaction_state": {0: 0}})["topics"]
        assert got["nope"][0]["error_code"] == ERR_UNKNOWN_TOPIC_OR_PARTITION
        assert got["dr"][9]["error_code"] == ERR_UNKNOWN_TOPIC_OR_PARTITION
        assert got["compacted"][0]["error_code"] == ERR_POLICY_VIOLATION
        assert got["__transaction_state"][0]["error_code"] == ERR_INVALID_TOPIC_EXCEPTION
    assert watermarks(single, "dr", 0) == (5, 20)
    # Fetch below the log start offset is out of range; at it, records from 5.
    assert raw_fetch(b, "dr", 0, 4)["error_code"] == ERR_OFFSET_OUT_OF_RANGE
    at = raw_fetch(b, "dr", 0, 5)
    assert at["error_code"] == ERR_NONE and at["records"]
    # A consumer placed below the log start is out of range, resets to the
    # earliest offset (ListOffsets) and reads from 5.
    cons = Consumer({"bootstrap.servers": single.bootstrap, "group.id": "dr",
                     "auto.offset.reset": "earliest", "enable.auto.commit": False})
    try:
        cons.assign([TopicPartition("dr", 0, 2)])
        got = []
        deadline = time.monotonic() + 15
        while len(got) < 15 and time.monotonic() < deadline:
            got += [m.offset() for m in cons.consume(100, 0.5) if not m.error()]
        assert got == list(range(5, 20))
    finally:
        cons.close()
    with b.connect() as c:
        r = c.delete_records({"dr": {0: -1}})["topics"]["dr"][0]  # up to the HW
        assert (r["error_code"], r["low_watermark"]) == (ERR_NONE, 20)
    assert watermarks(single, "dr", 0) == (20, 20)


def test_describe_log_dirs(cluster):
    # Relative directories (the broker runs in its work directory); the
    # second does not exist: offline.
    cluster.start(controllers=1, brokers=1, broker_config={"log.dirs": "data,offline"})
    b = cluster.brokers[0]
    cluster.create_topics([("ld", 3, 1), ("other", 1, 1)])

    def describe(topics=None, version=4):
        with b.connect() as c:
            resp = c.describe_log_dirs(topics, version)
        if version >= 3:
            assert resp["error_code"] == ERR_NONE
        assert [r["log_dir"] for r in resp["results"]] == [
            str(b.data_dir), str(b.workdir / "offline")]
        online, offline = resp["results"]
        assert online["error_code"] == ERR_NONE
        assert (offline["error_code"], offline["topics"]) == (ERR_KAFKA_STORAGE_ERROR, {})
        if version >= 4:
            assert online["total_bytes"] >= online["usable_bytes"] > 0
            assert offline["total_bytes"] == offline["usable_bytes"] == -1
        return online["topics"]

    for version in range(1, 5):
        topics = describe(version=version)
        assert {t: sorted(ps) for t, ps in topics.items()} == {"ld": [0, 1, 2], "other": [0]}
        for ps in topics.values():
            for p in ps.values():
                assert (p["partition_size"], p["offset_lag"], p["is_future_key"]) == (0, 0, False)
    produce(b, "ld", 1, 50)
    produce(b, "ld", 1, 50)
    topics = describe()
    on_disk = sum(f.stat().st_size for f in (b.data_dir / "ld-1").glob("*.log"))
    assert on_disk > 0
    assert topics["ld"][1]["partition_size"] == on_disk
    assert topics["ld"][0]["partition_size"] == 0
    assert topics["ld"][1]["offset_lag"] == 0
    # Only the partitions asked for; unknown ones are left out.
    assert {t: sorted(ps) for t, ps in describe({"ld": [1, 7], "nope": [0]}).items()} == \
        {"ld": [1]}
    assert describe({}) == {}

    # gregorctl log-dirs describe: kafka-log-dirs.sh's JSON, and a table.
    got = as_json(gregorctl("--json", "log-dirs", "describe", bootstrap=b.bootstrap))
    assert got["version"] == 1 and [x["broker"] for x in got["brokers"]] == [b.node_id]
    online, offline = got["brokers"][0]["logDirs"]
    assert (online["logDir"], online["error"]) == (str(b.data_dir), None)
    assert (offline["error"], offline["partitions"]) == ("KAFKA_STORAGE_ERROR", [])
    sizes = {p["partition"]: p["size"] for p in online["partitions"]}
    assert sizes == {"ld-0": 0, "ld-1": on_disk, "ld-2": 0, "other-0": 0}
    assert all(p["offsetLag"] == 0 and p["isFuture"] is False for p in online["partitions"])
    text = ok(gregorctl("log-dirs", "describe", "--topic", "ld", "--broker", str(b.node_id),
                        bootstrap=b.bootstrap)).stdout.splitlines()
    assert text[0].split() == ["BROKER", "LOG-DIR", "ERROR", "PARTITION", "SIZE", "OFFSET-LAG",
                               "FUTURE"]
    rows = [line.split() for line in text[1:]]
    assert [r[3] for r in rows] == ["ld-0", "ld-1", "ld-2", "-"]
    assert rows[1] == [str(b.node_id), str(b.data_dir), "-", "ld-1", str(on_disk), "0", "false"]
    assert rows[3][1:3] == [str(b.workdir / "offline"), "KAFKA_STORAGE_ERROR"]
    r = gregorctl("log-dirs", "describe", "--broker", "7", bootstrap=b.bootstrap)
    assert r.returncode == 1 and "broker 7 is not in the cluster" in r.stderr


def test_offset_for_leader_epoch_across_epochs(single):
    b = single.brokers[0]
    single.create_topic("ep", 1, 1)
    produce(b, "ep", 0, 4)  # offsets 0-3
    _, e0 = leader(single, b, "ep")
    with b.connect() as c:
        got = c.offset_for_leader_epoch({"ep": [(0, e0, e0)]})["topics"]["ep"][0]
        assert (got["error_code"], got["leader_epoch"], got["end_offset"]) == (ERR_NONE, e0, 4)
        r = c.delete_records({"ep": {0: 2}})["topics"]["ep"][0]
        assert (r["error_code"], r["low_watermark"]) == (ERR_NONE, 2)

    # A restart moves leadership away and back: a new leader epoch.
    single.restart(b)
    deadline = time.monotonic() + 15
    while True:
        lid, e1 = leader(single, b, "ep")
        if lid == b.node_id and e1 > e0:
            break
        assert time.monotonic() < deadline, f"no new leader epoch (leader {lid}, epoch {e1})"
        time.sleep(0.05)

    def ask(parts, version=4, replica_id=-1):
        with b.connect() as c:
            got = c.offset_for_leader_epoch({"ep": parts}, version, replica_id)["topics"]["ep"]
        return [(got[p]["error_code"], got[p]["leader_epoch"], got[p]["end_offset"])
                for p, _, _ in parts]

    # The new epoch has no records yet: it starts at the log end, 4.
    assert ask([(0, e1, e1)]) == [(ERR_NONE, e1, 4)]
    assert ask([(0, -1, e0)]) == [(ERR_NONE, e0, 4)]
    assert produce(b, "ep", 0, 3) == 4  # offsets 4-6 under e1
    for version in (2, 3, 4):
        assert ask([(0, e1, e1)], version, replica_id=b.node_id) == [(ERR_NONE, e1, 7)]
        assert ask([(0, e1, e0)], version) == [(ERR_NONE, e0, 4)]
    if e1 - e0 > 1:  # an epoch in between, unknown here: the floor epoch
        assert ask([(0, -1, e0 + 1)]) == [(ERR_NONE, e0, 4)]
    assert ask([(0, -1, e1 + 1)]) == [(ERR_NONE, -1, -1)]  # newer than all
    assert ask([(0, -1, -1)]) == [(ERR_NONE, -1, -1)]
    assert ask([(0, e0, e0)]) == [(ERR_FENCED_LEADER_EPOCH, -1, -1)]
    assert ask([(0, e1 + 1, e1)]) == [(ERR_UNKNOWN_LEADER_EPOCH, -1, -1)]
    assert ask([(3, -1, e1)]) == [(ERR_UNKNOWN_TOPIC_OR_PARTITION, -1, -1)]
    # The log start offset set before the restart survived it.
    assert watermarks(single, "ep", 0) == (2, 7)


def test_partitions_led_elsewhere(cluster):
    cluster.start(controllers=1, brokers=2)
    b1, b2 = cluster.brokers
    cluster.create_topic("split", assignment=[[b1.node_id], [b2.node_id]])
    with b1.connect() as c:
        d = c.delete_records({"split": {0: 0, 1: 0}})["topics"]["split"]
        assert d[0]["error_code"] == ERR_NONE
        assert d[1]["error_code"] == ERR_NOT_LEADER_OR_FOLLOWER
        o = c.offset_for_leader_epoch({"split": [(0, -1, 0), (1, -1, 0)]})["topics"]["split"]
        assert o[0]["error_code"] == ERR_NONE
        assert o[1]["error_code"] == ERR_NOT_LEADER_OR_FOLLOWER
        dirs = c.describe_log_dirs()["results"]
    assert len(dirs) == 1
    assert {t: sorted(ps) for t, ps in dirs[0]["topics"].items()} == {"split": [0]}
