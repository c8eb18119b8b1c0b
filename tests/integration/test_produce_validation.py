"""Produce validation and live topic configs, with raw Produce and Fetch
requests against one controller and one broker.

A bad partition of a Produce request gets its own error and nothing is
appended to it, while the good partitions of the same request succeed.
Topic configs changed through the controller apply to the live logs at
once: max.message.bytes, message.timestamp.type, compression.type,
cleanup.policy, segment.bytes and retention.ms.
"""

import gzip
import subprocess
import time

import pytest
from confluent_kafka import Consumer, TopicPartition

import gregor
from gregor import (bad_crc, batch_headers, eventually, fetch_v4, parse_fetch_v4, raw_produce,
                    record_batch)

ERR_NONE = 0
ERR_CORRUPT_MESSAGE = 2
ERR_MESSAGE_TOO_LARGE = 10
ERR_RECORD_LIST_TOO_LARGE = 18
ERR_INVALID_TIMESTAMP = 32
ERR_INVALID_RECORD = 87
CODEC_GZIP, CODEC_ZSTD = 1, 4
LOG_APPEND_TIME = 0x08


@pytest.fixture
def single(cluster):
    # Retention checked often, so that a shorter retention.ms shows quickly.
    cluster.start(controllers=1, brokers=1,
                  broker_config={"log.retention.check.interval.ms": 200})
    return cluster


def alter(cluster, topic, **configs):
    """IncrementalAlterConfigs SET through gregorctl (keys with _ for .)."""
    pairs = [f"{k.replace('_', '.')}={v}" for k, v in configs.items()]
    cluster.gregorctl("config", "set", "--topic", topic, *pairs, timeout=30)




def produce_one(broker, topic, batch, partition=0):
    return raw_produce(broker, 8, 1, {topic: {partition: batch}})[topic][partition]


def fetch(broker, topic, partition=0, offset=0, check=True):
    with broker.connect() as c:
        c.send(gregor.encode_request(gregor.API_FETCH, 4, 5, fetch_v4(topic, partition, offset, 0)))
        cid, parts = parse_fetch_v4(c.recv_frame())
    assert cid == 5 and (parts[0]["error_code"] == ERR_NONE or not check)
    return parts[0]


def now_ms():
    return int(time.time() * 1000)


def one(k=b"k", v=b"v", **kw):
    return record_batch([(k, v)], base_ts=now_ms(), **kw)


def segment_files(cluster, topic, partition=0):
    return sorted((cluster.brokers[0].data_dir / f"{topic}-{partition}").glob("*.log"))


# ---- one request, good and bad partitions ----

def test_each_bad_partition_gets_its_error(single):
    topic = "mixed"
    single.create_topic(topic, partitions=9)
    b = single.brokers[0]
    now = now_ms()
    good = record_batch([(b"a", b"1"), (b"b", b"2")], base_ts=now)
    huge_len = bytearray(good)
    huge_len[8:12] = (0x7FFFFFF0).to_bytes(4, "big")  # claims ~2 GiB
    neg_len = bytearray(good)
    neg_len[8:12] = (-5).to_bytes(4, "big", signed=True)
    future = record_batch([(b"k", b"0"), (b"k", b"1"), (b"k", b"2")],
                          timestamps=[now, now + 2 * 3600_000, now + 3 * 3600_000])
    resp = raw_produce(b, 8, 1, {topic: {
        0: good,
        1: bad_crc(good),                                          # CRC
        2: good[:-5],                                              # truncated
        3: record_batch([(b"a", b"1")], base_ts=now, magic=1),      # magic 1
        4: record_batch([(b"a", b"1"), (b"b", b"2")], base_ts=now, count=3),
        5: bytes(huge_len),
        6: bytes(neg_len),
        7: future,                                                  # after.max.ms: 1 h
        8: good + good,                                             # two batches
    }})[topic]
    assert resp[0]["error_code"] == ERR_NONE and resp[0]["base_offset"] == 0
    assert resp[1]["error_code"] == ERR_CORRUPT_MESSAGE
    # Kafka's produce request validation reads no whole batch from a
    # truncated one, and refuses magic 0/1 batches, as INVALID_RECORD.
    assert resp[2]["error_code"] == ERR_INVALID_RECORD
    assert resp[3]["error_code"] == ERR_INVALID_RECORD
    assert resp[3]["error_message"] == ("Produce requests with version 8 are only allowed to "
                                        "contain record batches with magic version 2")
    assert resp[4]["error_code"] == ERR_INVALID_RECORD
    # A length reaching past the request is no whole batch either; one
    # below the minimum record overhead is corrupt.
    assert resp[5]["error_code"] == ERR_INVALID_RECORD
    assert resp[6]["error_code"] == ERR_CORRUPT_MESSAGE
    assert resp[7]["error_code"] == ERR_INVALID_TIMESTAMP
    assert resp[7]["error_message"] == \
        "One or more records have been rejected due to invalid timestamp"
    assert [i for i, _ in resp[7]["record_errors"]] == [1, 2]
    for (i, msg) in resp[7]["record_errors"]:
        assert msg.startswith(f"Timestamp {now + (i + 1) * 3600_000} of message with offset {i} "
                              "is out of range. The timestamp should be within ["), msg
    assert resp[8]["error_code"] == ERR_INVALID_RECORD
    for p in range(1, 9):
        assert resp[p]["base_offset"] == -1
        assert (resp[p]["record_errors"] == []) == (p != 7)

    # Nothing reached the refused partitions: a good batch lands at offset 0
    # on each of them, and after the first one on partition 0.
    again = raw_produce(b, 8, 1, {topic: {p: good for p in range(9)}})[topic]
    assert again[0]["base_offset"] == 2
    assert all(again[p]["error_code"] == ERR_NONE and again[p]["base_offset"] == 0
               for p in range(1, 9)), again
    assert b.alive()


def test_timestamp_bounds_follow_the_topic(single):
    topic = "ts"
    single.create_topic(topic, config={"message.timestamp.before.max.ms": "60000"})
    b = single.brokers[0]
    now = now_ms()
    old = record_batch([(b"k", b"0"), (b"k", b"1")], timestamps=[now - 3_600_000, now])
    r = produce_one(b, topic, old)
    assert r["error_code"] == ERR_INVALID_TIMESTAMP and [i for i, _ in r["record_errors"]] == [0]
    alter(single, topic, message_timestamp_before_max_ms=7_200_000)
    r = eventually(lambda: (lambda r: r if r["error_code"] == ERR_NONE else None)(
        produce_one(b, topic, record_batch([(b"k", b"0"), (b"k", b"1")],
                                           timestamps=[now_ms() - 3_600_000, now_ms()]))),
        what="the new before.max.ms")
    assert r["base_offset"] == 0


# ---- live topic configs ----

def test_max_message_bytes_and_timestamp_type_change_live(single):
    topic = "live"
    single.create_topic(topic)
    b = single.brokers[0]
    batch = one(v=b"x" * 2000)
    assert produce_one(b, topic, batch)["error_code"] == ERR_NONE

    alter(single, topic, max_message_bytes=1000)
    eventually(lambda: produce_one(b, topic, batch)["error_code"] == ERR_MESSAGE_TOO_LARGE,
               what="the lower max.message.bytes")
    small = produce_one(b, topic, one())  # small ones still go in
    assert small["error_code"] == ERR_NONE and small["base_offset"] >= 1

    alter(single, topic, message_timestamp_type="LogAppendTime")

    def stamped():
        before = now_ms()
        r = produce_one(b, topic, record_batch([(b"k", b"v")], base_ts=1_000))
        return (r, before) if r["log_append_time"] != -1 else None
    r, before = eventually(stamped, what="LogAppendTime")
    assert r["error_code"] == ERR_NONE and before <= r["log_append_time"] <= now_ms()
    # The stored batch says LogAppendTime, with the broker's time as its max.
    part = fetch(b, topic, offset=r["base_offset"])
    heads = [h for h in batch_headers(part["records"]) if h[0] == r["base_offset"]]
    assert heads and heads[0][2] & LOG_APPEND_TIME and heads[0][3] == r["log_append_time"]


def test_compression_type_recompresses(single):
    topic = "recompress"
    single.create_topic(topic)
    b = single.brokers[0]
    values = [f"value-{i}-".encode() * 20 for i in range(50)]
    records = [(f"key-{i}".encode(), v) for i, v in enumerate(values)]
    plain = record_batch(records, base_ts=now_ms())
    r = produce_one(b, topic, plain)
    assert r["error_code"] == ERR_NONE and r["base_offset"] == 0

    alter(single, topic, compression_type="gzip")
    eventually(lambda: produce_one(b, topic, plain)["base_offset"] > 0 and
               batch_headers(fetch(b, topic)["records"])[-1][1] == CODEC_GZIP,
               what="a gzip batch")
    alter(single, topic, compression_type="zstd")
    gz = record_batch(records, base_ts=now_ms(), codec=CODEC_GZIP, compress=gzip.compress)
    eventually(lambda: produce_one(b, topic, gz)["error_code"] == ERR_NONE and
               batch_headers(fetch(b, topic)["records"])[-1][1] == CODEC_ZSTD,
               what="a zstd batch")
    heads = batch_headers(fetch(b, topic)["records"])
    assert heads[0][1] == 0  # the one produced before stays as it was
    assert {h[4] for h in heads} == {50}

    # Clients read the re-encoded batches as the records sent.
    end = heads[-1][0] + 50
    c = Consumer({"bootstrap.servers": single.bootstrap, "group.id": "unused",
                  "enable.auto.commit": False})
    try:
        c.assign([TopicPartition(topic, 0, 0)])
        got = []
        deadline = time.monotonic() + 20
        while len(got) < end and time.monotonic() < deadline:
            got += [m for m in c.consume(500, 1.0) if not m.error()]
    finally:
        c.close()
    assert len(got) == end
    assert all((m.key(), m.value()) == records[m.offset() % 50] for m in got)
    k = subprocess.run(["kcat", "-b", single.bootstrap, "-C", "-t", topic, "-o", "beginning",
                        "-e", "-f", "%k=%s\n"], capture_output=True, timeout=60)
    assert k.returncode == 0, k.stderr.decode()
    lines = k.stdout.decode().splitlines()
    assert len(lines) == end and lines[-1] == f"key-49={values[49].decode()}"


def test_compacted_topic_needs_keys(single):
    topic = "keys"
    single.create_topic(topic)
    b = single.brokers[0]
    nokey = record_batch([(b"k", b"v"), (None, b"v")], base_ts=now_ms())
    assert produce_one(b, topic, nokey)["error_code"] == ERR_NONE
    alter(single, topic, cleanup_policy="compact")
    r = eventually(lambda: (lambda r: r if r["error_code"] != ERR_NONE else None)(
        produce_one(b, topic, nokey)), what="cleanup.policy=compact")
    assert r["error_code"] == ERR_INVALID_RECORD
    assert r["record_errors"] == [(1, f"Compacted topic cannot accept message without key in "
                                      f"topic partition {topic}-0.")]
    assert "1 record errors" in r["error_message"]


def test_segment_bytes_and_retention_apply_live(single):
    topic = "roll"
    single.create_topic(topic)
    b = single.brokers[0]
    alter(single, topic, segment_bytes=1048576)
    # Old CreateTime timestamps (no lower bound by default): retention will
    # see these segments as expired once retention.ms is short.
    big = [(b"k", b"x" * 600_000)]

    def rolled():
        produce_one(b, topic, record_batch(big, base_ts=now_ms() - 600_000))
        return len(segment_files(single, topic)) >= 3
    eventually(rolled, what="segment.bytes rolls")
    # A batch larger than a segment: RECORD_LIST_TOO_LARGE, once
    # max.message.bytes lets it past the size check.
    huge = record_batch([(b"k", b"y" * 1_100_000)], base_ts=now_ms())
    assert produce_one(b, topic, huge)["error_code"] == ERR_MESSAGE_TOO_LARGE
    alter(single, topic, max_message_bytes=2_000_000)
    eventually(lambda: produce_one(b, topic, huge)["error_code"] == ERR_RECORD_LIST_TOO_LARGE,
               what="RECORD_LIST_TOO_LARGE")

    first = produce_one(b, topic, one())
    assert first["error_code"] == ERR_NONE and first["log_start_offset"] == 0
    alter(single, topic, retention_ms=1000)
    r = eventually(lambda: (lambda r: r if r["log_start_offset"] > 0 else None)(
        produce_one(b, topic, one())), what="retention to delete old segments")
    assert r["log_start_offset"] <= r["base_offset"]
    assert len(segment_files(single, topic)) < 3 or \
        int(segment_files(single, topic)[0].stem) == r["log_start_offset"]


# ---- high watermark checkpoint ----

def test_high_watermark_checkpoint(cluster):
    cluster.start(controllers=1, brokers=1,
                  broker_config={"replica.high.watermark.checkpoint.interval.ms": 100})
    topic = "hwc"
    cluster.create_topic(topic)
    b = cluster.brokers[0]
    path = b.data_dir / f"{topic}-0" / "replication-offset-checkpoint"
    r = produce_one(b, topic, record_batch([(b"k", b"1"), (b"k", b"2"), (b"k", b"3")],
                                           base_ts=now_ms()))
    assert r["error_code"] == ERR_NONE
    # Kafka's text format: version, count, "topic partition offset".
    eventually(lambda: path.exists() and path.read_text() == f"0\n1\n{topic} 0 3\n",
               what="the periodic checkpoint")
    cluster.kill9(b)
    cluster.restart(b)
    assert path.read_text() == f"0\n1\n{topic} 0 3\n"
    part = eventually(lambda: (lambda p: p if p["high_watermark"] == 3 else None)(
        fetch(b, topic, check=False)), what="the partition back")
    assert [h[4] for h in batch_headers(part["records"])] == [3]
    assert produce_one(b, topic, one())["base_offset"] == 3
    b.stop()  # a clean close writes the last one
    assert path.read_text() == f"0\n1\n{topic} 0 4\n"


# ---- internal topics ----

ERR_INVALID_TOPIC_EXCEPTION = 17


def test_clients_cannot_write_consumer_offsets(single):
    """As Kafka: a client's Produce to __consumer_offsets is refused with
    INVALID_TOPIC_EXCEPTION and nothing reaches the log, whose records the
    group coordinator loads as the groups' state."""
    topic = "__consumer_offsets"
    broker = single.brokers[0]
    with broker.connect() as c:
        eventually(lambda: any(x["error_code"] == ERR_NONE
                               for x in c.find_coordinator(["g"], 0, 4)),
                   what="__consumer_offsets")

    def led():
        md = single.metadata(broker, topics=[topic])
        t = [t for t in md["topics"] if t["name"] == topic]
        return t and t[0]["partitions"] and all(p["leader_id"] >= 0 for p in t[0]["partitions"])
    eventually(led, what="leaders of __consumer_offsets")
    before = fetch(broker, topic)["high_watermark"]
    got = produce_one(broker, topic, one(k=b"\0\1\0\1g\0\1t\0\0\0\0", v=b"junk"))
    assert got["error_code"] == ERR_INVALID_TOPIC_EXCEPTION
    assert fetch(broker, topic)["high_watermark"] == before
