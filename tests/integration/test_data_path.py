"""The data path on single-replica partitions: Produce, Fetch and
ListOffsets with real clients (kcat, confluent-kafka, kafka-python) and raw
requests, against one controller and one broker.

The acceptance scale: kcat round-trips 100,000 keyed records with headers per
codec; confluent-kafka 200,000 over 6 partitions (acks=all, by-time lookups,
seeking back); kafka-python null values and empty keys; and no acknowledged
record is lost when the broker is killed with SIGKILL mid-production. Tests
that only add topics of their own share one cluster (`shared`), the ones that
stop or kill the broker start their own (`single`).
"""

import struct
import subprocess
import time

import pytest
from confluent_kafka import Consumer, Producer, TopicPartition
from confluent_kafka.admin import AdminClient

import gregor
from gregor import bad_crc, crc32c, produce_request, raw_produce, record_batch

ERR_NONE = 0
ERR_CORRUPT_MESSAGE = 2
ERR_INVALID_REQUIRED_ACKS = 21
ERR_UNSUPPORTED_VERSION = 35
ERR_UNKNOWN_TOPIC_OR_PARTITION = 3
ERR_MESSAGE_TOO_LARGE = 10
ERR_UNSUPPORTED_FOR_MESSAGE_FORMAT = 43

CODECS = {"none": 0, "gzip": 1, "snappy": 2, "lz4": 3, "zstd": 4}


# ---- helpers ----


def batch_codecs(cluster, topic, partition=0):
    """The codec of every batch in the partition's segment files, from disk."""
    d = cluster.brokers[0].data_dir / f"{topic}-{partition}"
    codecs = []
    for seg in sorted(d.glob("*.log")):
        data = seg.read_bytes()
        pos = 0
        while pos + 61 <= len(data):
            (length,) = struct.unpack_from(">i", data, pos + 8)
            (attributes,) = struct.unpack_from(">h", data, pos + 21)
            codecs.append(attributes & 7)
            pos += 12 + length
    return codecs


# ---- record batches for raw produce requests (see gregor.py) ----

def test_crc32c_known_answer():
    assert crc32c(b"123456789") == 0xE3069283


def xxh32_short(data, seed=0):
    """XXH32 of fewer than 16 bytes (all an LZ4 frame descriptor needs)."""
    assert len(data) < 16
    p1, p2, p3, p4, p5 = 2654435761, 2246822519, 3266489917, 668265263, 374761393
    m = 0xFFFFFFFF

    def rotl(x, r):
        return ((x << r) | (x >> (32 - r))) & m

    h = (seed + p5 + len(data)) & m
    i = 0
    while i + 4 <= len(data):
        h = (rotl((h + int.from_bytes(data[i:i + 4], "little") * p3) & m, 17) * p4) & m
        i += 4
    while i < len(data):
        h = (rotl((h + data[i] * p5) & m, 11) * p1) & m
        i += 1
    h ^= h >> 15
    h = (h * p2) & m
    h ^= h >> 13
    h = (h * p3) & m
    return h ^ (h >> 16)


def test_xxh32_known_answers():
    assert xxh32_short(b"") == 0x02CC5D05
    assert xxh32_short(b"a") == 0x550D7456
    assert xxh32_short(b"abc") == 0x32D153FF


def lz4_frame_stored(data):
    """An LZ4 frame holding data in uncompressed blocks (valid LZ4, no compressor needed)."""
    descriptor = bytes([0x60, 0x40])  # version 1, independent blocks; 64 KiB blocks
    out = bytearray(struct.pack("<I", 0x184D2204) + descriptor)
    out.append((xxh32_short(descriptor) >> 8) & 0xFF)
    for i in range(0, len(data), 65536):
        block = data[i:i + 65536]
        out += struct.pack("<I", 0x80000000 | len(block)) + block
    return bytes(out + struct.pack("<I", 0))




# ---- kcat, every codec ----

def first_difference(got, expect):
    """A short account of where two long lists part, for assertion messages."""
    for i, (g, e) in enumerate(zip(got, expect)):
        if g != e:
            return f"item {i}: got {g!r}, expected {e!r}"
    return f"{len(got)} items, expected {len(expect)}"


@pytest.mark.parametrize("codec", list(CODECS))
def test_kcat_round_trip_with_codec(shared, codec):
    """100,000 keyed records with headers through kcat's producer and back
    through its consumer: same keys, values, headers and order, nothing
    more, in batches of the codec asked for."""
    topic = f"kcat-{codec}"
    shared.create_topic(topic, 1, 1)
    n = 100_000
    records = [(f"key-{i}", f"value-{i}-{'x' * (i * 7919 % 101)}") for i in range(n)]
    lines = "".join(f"{k}\t{v}\n" for k, v in records)
    p = subprocess.run(["kcat", "-b", shared.bootstrap, "-P", "-t", topic, "-K", "\t",
                        "-z", codec, "-H", "h1=one", "-H", f"codec={codec}", "-H", "empty=",
                        "-X", "linger.ms=20"],
                       input=lines.encode(), capture_output=True, timeout=60)
    assert p.returncode == 0, p.stderr.decode()
    c = subprocess.run(["kcat", "-b", shared.bootstrap, "-C", "-t", topic, "-o", "beginning",
                        "-e", "-f", "%k|%s|%h|%p|%o\n"], capture_output=True, timeout=60)
    assert c.returncode == 0, c.stderr.decode()
    got = c.stdout.decode().splitlines()
    expect = [f"{k}|{v}|h1=one,codec={codec},empty=|0|{i}" for i, (k, v) in enumerate(records)]
    assert got == expect, first_difference(got, expect)
    codecs = batch_codecs(shared, topic)
    assert codecs, "no batches on disk"
    assert set(codecs) == {CODECS[codec]}, f"batches on disk have codecs {set(codecs)}"
    assert len(codecs) < n // 10  # batched, not one record per batch


# ---- confluent-kafka ----

def produce_all(prod, items):
    """Produces every (args, kwargs) in items, waiting out a full local queue."""
    for i, (args, kwargs) in enumerate(items):
        while True:
            try:
                prod.produce(*args, **kwargs)
                break
            except BufferError:
                prod.poll(0.05)
        if i % 1000 == 0:
            prod.poll(0)


def consume_exactly(cons, n, timeout=60):
    """Consumes until n messages have come (failing on an error or after
    timeout), then returns them: [(partition, offset, key, value, timestamp)]."""
    got = []
    deadline = time.monotonic() + timeout
    while len(got) < n:
        assert time.monotonic() < deadline, f"{len(got)} of {n} messages after {timeout} s"
        for m in cons.consume(10000, 0.5):
            assert not m.error(), m.error()
            got.append((m.partition(), m.offset(), m.key(), m.value(), m.timestamp()))
    return got


def test_confluent_kafka_200k_six_partitions_times_and_seek(shared):
    """200,000 records with explicit, distinct timestamps over 6 partitions:
    all acknowledged at contiguous offsets, consumed back exactly once in
    order per partition with their timestamps; offsets_for_times finds the
    first record at or after a time (within batches too); seeking back
    re-reads the same records."""
    from confluent_kafka import TIMESTAMP_CREATE_TIME

    topic, parts, n = "ck", 6, 200_000
    per = [len(range(p, n, parts)) for p in range(parts)]  # 33,334 or 33,333
    shared.create_topic(topic, parts, 1)
    # Record i goes to partition i % 6 at offset i // 6 with time base + i, so
    # the k-th record of partition p has time base + 6k + p. Recent times:
    # nothing is old enough for retention to touch.
    base = int(time.time() * 1000) - 600_000
    key = lambda i: f"k{i}".encode()
    value = lambda i: f"v{i}-{'y' * (i % 37)}".encode()
    delivered = {}
    errors = []

    def on_delivery(err, msg):
        if err:
            errors.append(err)
        else:
            delivered[(msg.partition(), msg.offset())] = int(msg.key()[1:])

    prod = Producer({"bootstrap.servers": shared.bootstrap, "acks": "all", "linger.ms": 5,
                     "enable.idempotence": False})
    produce_all(prod, (((topic,), {"key": key(i), "value": value(i), "partition": i % parts,
                                   "timestamp": base + i, "on_delivery": on_delivery})
                       for i in range(n)))
    assert prod.flush(60) == 0
    assert not errors, errors[:5]
    assert len(delivered) == n
    for p in range(parts):
        assert [delivered.get((p, k)) for k in range(per[p] + 1)] == \
            [parts * k + p for k in range(per[p])] + [None]

    cons = Consumer({"bootstrap.servers": shared.bootstrap, "group.id": "unused",
                     "enable.auto.commit": False, "fetch.wait.max.ms": 100})
    try:
        cons.assign([TopicPartition(topic, p, 0) for p in range(parts)])
        got = consume_exactly(cons, n)

        def expected(p, first=0):
            return [(p, k, key(parts * k + p), value(parts * k + p),
                     (TIMESTAMP_CREATE_TIME, base + parts * k + p)) for k in range(first, per[p])]

        for p in range(parts):
            mine = [m for m in got if m[0] == p]
            assert mine == expected(p), first_difference(mine, expected(p))
        # Nothing more arrives (no duplicates): a further poll is empty.
        assert [m for m in cons.consume(1000, 0.5) if not m.error()] == []
        for p in range(parts):
            lo, hi = cons.get_watermark_offsets(TopicPartition(topic, p), timeout=10)
            assert (lo, hi) == (0, per[p])

        # By time: the first record whose time is at or after the one asked,
        # also inside a batch (the batches hold many records each).
        assert len(batch_codecs(shared, topic, 4)) < per[4] // 10
        def offsets_at(ts_of):
            tps = [TopicPartition(topic, p, ts_of(p)) for p in range(parts)]
            return sorted((t.partition, t.offset) for t in cons.offsets_for_times(tps, timeout=10))

        for k in (0, 1, 2, 999, 12_345, 33_332):
            exact = offsets_at(lambda p: base + parts * k + p)
            between = offsets_at(lambda p: base + parts * k + p - 3)  # after record k - 1's
            assert exact == between == [(p, k) for p in range(parts)], (k, exact, between)
        assert offsets_at(lambda p: base - 10**6) == [(p, 0) for p in range(parts)]
        assert offsets_at(lambda p: base + n) == [(p, -1) for p in range(parts)]  # none: the end
        assert offsets_at(lambda p: -2) == [(p, 0) for p in range(parts)]  # earliest
        last = lambda p: base + parts * (per[p] - 1) + p  # each partition's last record's time
        assert offsets_at(lambda p: last(p) - 2) == [(p, per[p] - 1) for p in range(parts)]
        assert offsets_at(lambda p: last(p) + 1) == [(p, -1) for p in range(parts)]
        assert offsets_at(lambda p: -1) == [(p, per[p]) for p in range(parts)]  # latest

        # Seek back: partition 4 to where a time says, partition 1 to the start.
        (at,) = [t.offset for t in cons.offsets_for_times(
            [TopicPartition(topic, 4, base + parts * 20_000 + 4 - 1)], timeout=10)]
        assert at == 20_000
        cons.seek(TopicPartition(topic, 4, at))
        cons.seek(TopicPartition(topic, 1, 0))
        again = consume_exactly(cons, (per[4] - at) + per[1])
        assert [m for m in again if m[0] == 4] == expected(4, at)
        assert [m for m in again if m[0] == 1] == expected(1)
        assert [m for m in cons.consume(1000, 0.5) if not m.error()] == []
    finally:
        cons.close()


def test_fetch_long_poll_sees_new_data(shared):
    topic = "poll"
    shared.create_topic(topic, 1, 1)
    cons = Consumer({"bootstrap.servers": shared.bootstrap, "group.id": "unused",
                     "enable.auto.commit": False, "fetch.wait.max.ms": 500})
    try:
        cons.assign([TopicPartition(topic, 0, 0)])
        assert [m for m in cons.consume(10, 1.0) if not m.error()] == []
        prod = Producer({"bootstrap.servers": shared.bootstrap})
        prod.produce(topic, value=b"late", partition=0)
        assert prod.flush(10) == 0
        started = time.monotonic()
        got = []
        while not got and time.monotonic() - started < 10:
            got = [m for m in cons.consume(10, 0.5) if not m.error()]
        assert [m.value() for m in got] == [b"late"]
    finally:
        cons.close()


# ---- kafka-python ----

def test_kafka_python_round_trip_null_value_and_empty_key(shared):
    """kafka-python's producer and consumer: null values, empty and null
    keys, headers and a large value, over two partitions, come back as sent
    and in order."""
    from kafka import KafkaConsumer, KafkaProducer
    from kafka import TopicPartition as KTP

    topic = "kp"
    shared.create_topic(topic, 2, 1)

    def record(i):
        v = None if i % 7 == 0 else b"v" * 20000 if i == 500 else f"value {i}".encode()
        # (kafka-python refuses a record with neither key nor value)
        k = b"" if i % 5 == 0 else None if i % 11 == 0 and v else f"k{i}".encode()
        h = [("n", str(i).encode()), ("empty", b"")] if i % 3 == 0 else []
        return k, v, h

    n = 2000
    prod = KafkaProducer(bootstrap_servers=shared.bootstrap, acks="all", linger_ms=5,
                         compression_type="gzip")
    futures = []
    for i in range(n):
        k, v, h = record(i)
        futures.append(prod.send(topic, key=k, value=v, headers=h, partition=i % 2))
    placed = [(f.get(timeout=15).partition, f.get(timeout=15).offset) for f in futures]
    prod.close()
    assert placed == [(i % 2, i // 2) for i in range(n)]
    cons = KafkaConsumer(bootstrap_servers=shared.bootstrap, enable_auto_commit=False,
                         consumer_timeout_ms=5000)
    try:
        tps = [KTP(topic, 0), KTP(topic, 1)]
        cons.assign(tps)
        cons.seek_to_beginning(*tps)
        got = []
        for m in cons:
            got.append((m.partition, m.offset, m.key, m.value, list(m.headers)))
            if len(got) == n:
                break
        for p in (0, 1):
            assert [g for g in got if g[0] == p] == \
                [(p, i // 2, *record(i)) for i in range(p, n, 2)]
        assert cons.end_offsets(tps) == {tps[0]: n // 2, tps[1]: n // 2}
        assert cons.beginning_offsets(tps) == {tps[0]: 0, tps[1]: 0}
    finally:
        cons.close()


# ---- raw requests ----

def test_bad_crc_refused_for_one_partition_only(shared):
    topic = "crc"
    shared.create_topic(topic, 2, 1)
    good = record_batch([(b"a", b"1"), (b"b", b"2")])
    bad = bytearray(record_batch([(b"c", b"3")]))
    bad[-1] ^= 0xFF  # a flipped bit after the CRC was computed
    resp = raw_produce(shared.brokers[0], 7, -1, {topic: {0: good, 1: bytes(bad)}})
    assert resp[topic][0]["error_code"] == ERR_NONE
    assert resp[topic][0]["base_offset"] == 0
    assert resp[topic][1]["error_code"] == ERR_CORRUPT_MESSAGE
    # The good one is readable, the bad one left nothing behind.
    cons = Consumer({"bootstrap.servers": shared.bootstrap, "group.id": "unused"})
    try:
        assert cons.get_watermark_offsets(TopicPartition(topic, 0), timeout=10) == (0, 2)
        assert cons.get_watermark_offsets(TopicPartition(topic, 1), timeout=10) == (0, 0)
    finally:
        cons.close()
    # The same good batch again gets the next offsets.
    resp = raw_produce(shared.brokers[0], 7, 1, {topic: {0: good}})
    assert resp[topic][0]["error_code"] == ERR_NONE
    assert resp[topic][0]["base_offset"] == 2


def test_produce_errors(shared):
    topic = "old"
    shared.create_topic(topic, 1, 1)
    batch = record_batch([(b"k", b"v")])
    for version in (0, 1, 2):
        resp = raw_produce(shared.brokers[0], version, 1, {topic: {0: batch}})
        assert resp[topic][0]["error_code"] == ERR_UNSUPPORTED_VERSION
    resp = raw_produce(shared.brokers[0], 7, 2, {topic: {0: batch}})
    assert resp[topic][0]["error_code"] == ERR_INVALID_REQUIRED_ACKS
    resp = raw_produce(shared.brokers[0], 7, 1, {"nosuch": {0: batch}, topic: {7: batch}})
    assert resp["nosuch"][0]["error_code"] == ERR_UNKNOWN_TOPIC_OR_PARTITION
    assert resp[topic][7]["error_code"] == ERR_UNKNOWN_TOPIC_OR_PARTITION
    big = record_batch([(b"k", b"x" * 1_100_000)])  # over max.message.bytes (1048588)
    resp = raw_produce(shared.brokers[0], 7, 1, {topic: {0: big}})
    assert resp[topic][0]["error_code"] == ERR_MESSAGE_TOO_LARGE
    idempotent = record_batch([(b"k", b"v")], producer_id=5)
    resp = raw_produce(shared.brokers[0], 7, 1, {topic: {0: idempotent}})
    assert resp[topic][0]["error_code"] == ERR_UNSUPPORTED_FOR_MESSAGE_FORMAT
    resp = raw_produce(shared.brokers[0], 7, 1, {topic: {0: batch}})
    assert resp[topic][0]["error_code"] == ERR_NONE
    assert resp[topic][0]["base_offset"] == 0
    # acks=0: no answer on success; a failure closes the connection.
    with shared.brokers[0].connect() as c:
        c.send(produce_request(7, 8, 0, {topic: {0: batch}}))
        c.send(gregor.metadata_request(12, 9, [topic]))
        assert gregor.parse_metadata_response(c.recv_frame(), 12)["correlation_id"] == 9
        c.send(produce_request(7, 10, 0, {topic: {0: bad_crc(batch)}}))
        closed, data = c.wait_closed()
        assert closed and not data
    resp = raw_produce(shared.brokers[0], 7, 1, {topic: {0: batch}})
    assert resp[topic][0]["base_offset"] == 2  # the acks=0 one was appended, the bad one not


def test_raw_lz4_batch(shared):
    topic = "lz4raw"
    shared.create_topic(topic, 1, 1)
    records = [(f"k{i}".encode(), f"value {i} ".encode() * 50) for i in range(300)]
    batch = record_batch(records, codec=CODECS["lz4"], compress=lz4_frame_stored)
    resp = raw_produce(shared.brokers[0], 7, 1, {topic: {0: batch}})
    assert resp[topic][0]["error_code"] == ERR_NONE
    assert batch_codecs(shared, topic) == [CODECS["lz4"]]
    c = subprocess.run(["kcat", "-b", shared.bootstrap, "-C", "-t", topic, "-o", "beginning",
                        "-e", "-f", "%k|%s|%o\n"], capture_output=True, timeout=60)
    assert c.returncode == 0, c.stderr.decode()
    assert c.stdout.decode().splitlines() == [
        f"{k.decode()}|{v.decode()}|{i}" for i, (k, v) in enumerate(records)]
    # A frame cut short is refused, and nothing is appended.
    cut = record_batch(records[:5], codec=CODECS["lz4"], compress=lambda b: lz4_frame_stored(b)[:-9])
    resp = raw_produce(shared.brokers[0], 7, 1, {topic: {0: cut}})
    assert resp[topic][0]["error_code"] == ERR_CORRUPT_MESSAGE
    resp = raw_produce(shared.brokers[0], 7, 1, {topic: {0: record_batch([(b"x", b"y")])}})
    assert resp[topic][0]["base_offset"] == 300


def wait_watermarks(cluster, topic, parts, timeout=20):
    """The (low, high) watermarks of every partition, once the broker serves them."""
    cons = Consumer({"bootstrap.servers": cluster.bootstrap, "group.id": "unused"})
    deadline = time.monotonic() + timeout
    try:
        while True:
            try:
                return [cons.get_watermark_offsets(TopicPartition(topic, p), timeout=2)
                        for p in range(parts)]
            except Exception:
                assert time.monotonic() < deadline, "partitions not served"
                time.sleep(0.1)
    finally:
        cons.close()


def test_acknowledged_records_survive_kill9_mid_production(single):
    """kill -9 the broker while an acks=all producer has requests in flight,
    restart it on the same data, let the producer finish: every record the
    producer was told is written is there, at the offset it was told; the
    log is contiguous; only records unacknowledged at the kill may appear
    twice (a retry of a write whose answer the kill cut off)."""
    topic, parts, n = "durable", 2, 60_000
    first_acks = 1000  # the kill comes once this many are acknowledged
    down_for = 10_000  # records handed to the producer while the broker is down
    single.create_topic(topic, parts, 1)
    acked = {}  # record index -> (partition, offset)
    failed = {}  # record index -> error

    def on_delivery(err, msg):
        i = int(msg.value())
        if err:
            failed[i] = err
        else:
            acked[i] = (msg.partition(), msg.offset())

    prod = Producer({"bootstrap.servers": single.bootstrap, "acks": "all", "linger.ms": 5,
                     "enable.idempotence": False, "message.timeout.ms": 60000,
                     "retry.backoff.ms": 100, "reconnect.backoff.max.ms": 500})
    broker = single.brokers[0]
    acked_before_kill = None
    killed_at = None  # records handed to the producer before the kill
    for i in range(n):
        if killed_at is None and (len(acked) >= first_acks or i == n // 2):
            # A slow broker may not have answered yet: wait for the first
            # acknowledgements, then kill at once, with the rest in flight.
            deadline = time.monotonic() + 30
            while len(acked) < first_acks:
                assert time.monotonic() < deadline, f"{len(acked)} acknowledged in 30 s"
                prod.poll(0.005)
            single.kill9(broker)
            acked_before_kill, killed_at = set(acked), i
        if killed_at is not None and i == killed_at + down_for:
            single.restart(broker)
        produce_all(prod, [((topic,), {"value": str(i).encode(), "partition": i % parts,
                                       "on_delivery": on_delivery})])
        if i % 100 == 0:
            prod.poll(0)  # acknowledgements keep coming in while producing
    assert prod.flush(90) == 0
    assert len(acked) + len(failed) == n
    assert len(acked_before_kill) < killed_at, "the kill did not come mid-production"

    marks = wait_watermarks(single, topic, parts)
    assert all(lo == 0 for lo, _ in marks), marks
    cons = Consumer({"bootstrap.servers": single.bootstrap, "group.id": "unused",
                     "enable.auto.commit": False, "fetch.wait.max.ms": 100})
    try:
        cons.assign([TopicPartition(topic, p, 0) for p in range(parts)])
        got = consume_exactly(cons, sum(hi for _, hi in marks))
        assert [m for m in cons.consume(1000, 0.5) if not m.error()] == []
    finally:
        cons.close()
    log = {(p, o): int(v) for p, o, _, v, _ in got}
    for p in range(parts):  # contiguous: every offset below the high watermark, once
        assert sorted(o for q, o in log if q == p) == list(range(marks[p][1]))
    lost = {i: at for i, at in acked.items() if log.get(at) != i}
    assert not lost, f"{len(lost)} acknowledged records lost or moved: {list(lost.items())[:5]}"
    assert all(i % parts == p for (p, _), i in log.items())
    assert set(log.values()) <= set(range(n))

    copies = {}
    for i in log.values():
        copies[i] = copies.get(i, 0) + 1
    duplicated = {i for i, c in copies.items() if c > 1}
    retried = set(range(killed_at)) - acked_before_kill  # in flight or queued at the kill
    assert duplicated <= retried, f"duplicates no retry explains: {sorted(duplicated - retried)}"
    unacked_kept = [i for i in failed if i in copies]
    print(f"kill -9 mid-production: {n} sent, {len(acked)} acknowledged "
          f"({len(acked_before_kill)} of the first {killed_at} before the kill), "
          f"{len(failed)} failed "
          f"({len(unacked_kept)} of those in the log anyway), {len(log)} records in the log, "
          f"{len(duplicated)} duplicated by retries, 0 acknowledged lost")


def test_deleted_topic_files_are_removed(shared):
    topic = "doomed"
    shared.create_topic(topic, 2, 1)
    prod = Producer({"bootstrap.servers": shared.bootstrap})
    for i in range(10):
        prod.produce(topic, value=b"x", partition=i % 2)
    assert prod.flush(15) == 0
    dirs = [shared.brokers[0].data_dir / f"{topic}-{p}" for p in range(2)]
    assert all(d.is_dir() for d in dirs)
    admin = AdminClient({"bootstrap.servers": shared.bootstrap})
    for f in admin.delete_topics([topic], operation_timeout=15).values():
        f.result(15)
    deadline = time.monotonic() + 15
    while any(d.exists() for d in dirs):
        assert time.monotonic() < deadline, "partition directories still there"
        time.sleep(0.05)
    # Recreated under the same name, it starts empty.
    shared.create_topic(topic, 2, 1)
    cons = Consumer({"bootstrap.servers": shared.bootstrap, "group.id": "unused"})
    try:
        assert cons.get_watermark_offsets(TopicPartition(topic, 0), timeout=10) == (0, 0)
    finally:
        cons.close()
