"""Helpers for Gregor's integration tests.

Two halves:

* Process management.  A ``Node`` is one Gregor server process (a broker now,
  controllers later) with its own free loopback ports, its own directory (data,
  config file, log file) and a lifecycle the test controls: ``start()`` returns
  only once every listener accepts connections and answers an ApiVersions round
  trip; ``stop()`` sends SIGTERM to that node's pid, waits, and falls back to
  SIGKILL.  Nothing here ever signals a process it did not start itself.

* A tiny raw Kafka protocol client (struct based) for tests that need exact
  bytes on the wire: request framing with header v1/v2, response framing,
  parsers for ApiVersions (v0-v4), Metadata (v0-v12) and Fetch v4 responses,
  record batches, and the records of __consumer_offsets.  The parsers
  are strict: every field is bounds-checked and a response must be consumed
  exactly, so a broker that writes one byte too many or too few fails the test.
"""

import gzip
import os
import re
import resource
import signal
import socket
import struct
import subprocess
import time
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]

# Kafka API keys and error codes used by the tests.
API_FETCH = 1
API_METADATA = 3
API_FIND_COORDINATOR = 10
API_API_VERSIONS = 18
API_CREATE_TOPICS = 19
API_DESCRIBE_QUORUM = 55
API_DELETE_RECORDS = 21
API_OFFSET_FOR_LEADER_EPOCH = 23
API_DESCRIBE_LOG_DIRS = 35
ERR_NONE = 0
ERR_OFFSET_OUT_OF_RANGE = 1
ERR_UNKNOWN_TOPIC_OR_PARTITION = 3
ERR_LEADER_NOT_AVAILABLE = 5
ERR_NOT_LEADER_OR_FOLLOWER = 6
ERR_COORDINATOR_NOT_AVAILABLE = 15
ERR_INVALID_TOPIC_EXCEPTION = 17
ERR_UNSUPPORTED_VERSION = 35
ERR_INVALID_REQUEST = 42
ERR_TOPIC_ALREADY_EXISTS = 36
ERR_FETCH_SESSION_ID_NOT_FOUND = 70
ERR_INVALID_FETCH_SESSION_EPOCH = 71
ERR_UNKNOWN_TOPIC_ID = 100
ERR_FETCH_SESSION_TOPIC_ID_ERROR = 106
ERR_INVALID_PARTITIONS = 37
ERR_INVALID_REPLICATION_FACTOR = 38

# The metadata quorum's topic-partition, as DescribeQuorum names it.
METADATA_TOPIC = "__cluster_metadata"

# Versions the broker promises to serve.
API_VERSIONS_MAX = 4
METADATA_MAX = 12


def bin_dir():
    """Directory holding the Gregor binaries (GREGOR_BIN, else <repo>/bin)."""
    return Path(os.environ.get("GREGOR_BIN") or (REPO_ROOT / "bin"))


# --------------------------------------------------------------------------
# Free ports
# --------------------------------------------------------------------------

_handed_out = set()


def free_port(host="127.0.0.1"):
    """A loopback port that was free a moment ago.

    Another process may still take it before the node binds it; Node.start()
    retries with fresh ports when that happens.  Ports already handed out in
    this run are never handed out again, so nodes of one cluster never collide
    with each other.
    """
    for _ in range(100):
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        try:
            s.bind((host, 0))
            port = s.getsockname()[1]
        finally:
            s.close()
        if port not in _handed_out:
            _handed_out.add(port)
            return port
    raise RuntimeError("could not find a free port")


# --------------------------------------------------------------------------
# Wire encoding
# --------------------------------------------------------------------------

class ProtocolError(Exception):
    """A response that does not follow the Kafka protocol."""


class Writer:
    def __init__(self):
        self.parts = []

    def raw(self, b):
        self.parts.append(bytes(b))
        return self

    def int8(self, v):
        return self.raw(struct.pack(">b", v))

    def bool(self, v):
        return self.int8(1 if v else 0)

    def int16(self, v):
        return self.raw(struct.pack(">h", v))

    def int32(self, v):
        return self.raw(struct.pack(">i", v))

    def int64(self, v):
        return self.raw(struct.pack(">q", v))

    def uvarint(self, v):
        out = bytearray()
        while True:
            b = v & 0x7F
            v >>= 7
            if v:
                out.append(b | 0x80)
            else:
                out.append(b)
                return self.raw(out)

    def string(self, s):
        b = s.encode()
        return self.int16(len(b)).raw(b)

    def nullable_string(self, s):
        if s is None:
            return self.int16(-1)
        return self.string(s)

    def compact_string(self, s):
        b = s.encode()
        return self.uvarint(len(b) + 1).raw(b)

    def compact_nullable_string(self, s):
        if s is None:
            return self.uvarint(0)
        return self.compact_string(s)

    def uuid(self, b=bytes(16)):
        assert len(b) == 16
        return self.raw(b)

    def empty_tagged_fields(self):
        return self.uvarint(0)

    def count(self, n, flexible):
        """An array's length: a compact uvarint (n + 1) in flexible
        versions, else an int32."""
        return self.uvarint(n + 1) if flexible else self.int32(n)

    def bytes(self):
        return b"".join(self.parts)


class Reader:
    """Bounds-checked reader over one response frame."""

    def __init__(self, data):
        self.data = bytes(data)
        self.pos = 0

    def remaining(self):
        return len(self.data) - self.pos

    def take(self, n):
        if n < 0 or self.pos + n > len(self.data):
            raise ProtocolError(
                f"need {n} bytes at offset {self.pos}, frame has {len(self.data)}")
        b = self.data[self.pos:self.pos + n]
        self.pos += n
        return b

    def _unpack(self, fmt, n):
        return struct.unpack(fmt, self.take(n))[0]

    def int8(self):
        return self._unpack(">b", 1)

    def bool(self):
        v = self.int8()
        if v not in (0, 1):
            raise ProtocolError(f"boolean byte {v} at offset {self.pos - 1}")
        return bool(v)

    def int16(self):
        return self._unpack(">h", 2)

    def int32(self):
        return self._unpack(">i", 4)

    def int64(self):
        return self._unpack(">q", 8)

    def uvarint(self, max_bytes=5):
        shift = 0
        v = 0
        while True:
            b = self.take(1)[0]
            v |= (b & 0x7F) << shift
            if not b & 0x80:
                return v
            shift += 7
            if shift >= 7 * max_bytes:
                raise ProtocolError(f"unsigned varint longer than {max_bytes} bytes")

    def varint(self):
        """Zig-zag varint (record batches): at most 5 bytes."""
        v = self.uvarint()
        return (v >> 1) ^ -(v & 1)

    def varlong(self):
        """Zig-zag varlong (record batches): at most 10 bytes."""
        v = self.uvarint(10)
        return (v >> 1) ^ -(v & 1)

    def uuid(self):
        return self.take(16)

    def string(self):
        n = self.int16()
        if n < 0:
            raise ProtocolError("null in a non-nullable string")
        return self.take(n).decode()

    def nullable_string(self):
        n = self.int16()
        if n == -1:
            return None
        if n < 0:
            raise ProtocolError(f"string length {n}")
        return self.take(n).decode()

    def compact_string(self):
        n = self.uvarint()
        if n == 0:
            raise ProtocolError("null in a non-nullable compact string")
        return self.take(n - 1).decode()

    def compact_nullable_string(self):
        n = self.uvarint()
        if n == 0:
            return None
        return self.take(n - 1).decode()

    def array(self, item):
        n = self.int32()
        if n < 0:
            raise ProtocolError(f"array count {n} in a non-nullable array")
        if n > self.remaining():
            raise ProtocolError(f"array count {n} exceeds the {self.remaining()} bytes left")
        return [item() for _ in range(n)]

    def compact_array(self, item):
        n = self.uvarint()
        if n == 0:
            raise ProtocolError("null in a non-nullable compact array")
        if n - 1 > self.remaining():
            raise ProtocolError(f"array count {n - 1} exceeds the {self.remaining()} bytes left")
        return [item() for _ in range(n - 1)]

    def tagged_fields(self):
        """Reads a tagged-field section; returns {tag: raw bytes}."""
        fields = {}
        last = -1
        for _ in range(self.uvarint()):
            tag = self.uvarint()
            if tag <= last:
                raise ProtocolError(f"tagged field {tag} out of order")
            last = tag
            fields[tag] = self.take(self.uvarint())
        return fields

    def expect_end(self, what):
        if self.remaining():
            raise ProtocolError(
                f"{what}: {self.remaining()} unexpected trailing bytes at offset {self.pos}: "
                f"{self.data[self.pos:self.pos + 32].hex()}")


def frame(payload):
    """Prefixes a payload with its int32 size."""
    return struct.pack(">i", len(payload)) + payload


def request_header(api_key, api_version, correlation_id, client_id="gregor-tests",
                   flexible=False):
    """Request header v1 (or v2 when flexible: v1 plus an empty tag section)."""
    w = Writer().int16(api_key).int16(api_version).int32(correlation_id)
    w.nullable_string(client_id)
    if flexible:
        w.empty_tagged_fields()
    return w.bytes()


def encode_request(api_key, api_version, correlation_id, body=b"", client_id="gregor-tests",
                   flexible=False):
    return frame(request_header(api_key, api_version, correlation_id, client_id, flexible) + body)


# --------------------------------------------------------------------------
# Record batches (magic 2), Produce v3-v8 and Fetch v4, for raw requests
# --------------------------------------------------------------------------

API_PRODUCE = 0
API_FETCH = 1


def _crc32c_table():
    table = []
    for i in range(256):
        c = i
        for _ in range(8):
            c = (c >> 1) ^ 0x82F63B78 if c & 1 else c >> 1
        table.append(c)
    return table


_CRC_TABLE = _crc32c_table()


def crc32c(data):
    c = 0xFFFFFFFF
    for b in data:
        c = _CRC_TABLE[(c ^ b) & 0xFF] ^ (c >> 8)
    return c ^ 0xFFFFFFFF


def varint(v):
    """A zigzag varint, as record fields are written."""
    return Writer().uvarint((v << 1) ^ (v >> 63)).bytes()


def record_batch(records, base_ts=1_700_000_000_000, codec=0, compress=None, producer_id=-1,
                 timestamps=None, count=None, magic=2, attributes=0):
    """A record batch of [(key, value)] (bytes or None). Records are
    compressed with compress(bytes) when given (codec names the attribute's
    codec); timestamps gives each record's own; count overrides the record
    count field and magic the magic byte (to build broken batches)."""
    if timestamps is not None:
        base_ts = timestamps[0]
    ts = timestamps or [base_ts] * len(records)
    body = bytearray()
    for i, (k, v) in enumerate(records):
        r = bytearray(b"\x00")  # attributes
        r += varint(ts[i] - base_ts) + varint(i)
        r += varint(-1) if k is None else varint(len(k)) + k
        r += varint(-1) if v is None else varint(len(v)) + v
        r += varint(0)  # headers
        body += varint(len(r)) + r
    body = compress(bytes(body)) if compress else bytes(body)
    seq = -1 if producer_id < 0 else 0
    n = len(records) if count is None else count
    after_crc = struct.pack(">hiqqqhii", codec | attributes, len(records) - 1, base_ts, max(ts),
                            producer_id, 0 if producer_id >= 0 else -1, seq, n) + body
    crc = crc32c(after_crc)
    rest = struct.pack(">ibI", -1, magic, crc) + after_crc  # leader epoch, magic, crc
    return struct.pack(">qi", 0, len(rest)) + rest


def bad_crc(batch):
    b = bytearray(batch)
    b[-1] ^= 0xFF  # a flipped bit after the CRC was computed
    return bytes(b)


def batch_headers(records):
    """(base offset, codec, attributes, max timestamp, record count) of every
    whole batch in a records field."""
    out, pos = [], 0
    while pos + 61 <= len(records):
        base, length = struct.unpack_from(">qi", records, pos)
        if pos + 12 + length > len(records):
            break
        attributes, = struct.unpack_from(">h", records, pos + 21)
        max_ts, = struct.unpack_from(">q", records, pos + 35)
        count, = struct.unpack_from(">i", records, pos + 57)
        out.append((base, attributes & 7, attributes, max_ts, count))
        pos += 12 + length
    return out


def produce_request(version, cid, acks, topics, timeout_ms=10000):
    """Produce v3-v8 (non-flexible) or v0-v2; topics: {name: {partition: records bytes}}."""
    w = Writer()
    if version >= 3:
        w.nullable_string(None)
    w.int16(acks).int32(timeout_ms)
    w.int32(len(topics))
    for name, parts in topics.items():
        w.string(name)
        w.int32(len(parts))
        for index, records in parts.items():
            w.int32(index).int32(len(records)).raw(records)
    return encode_request(API_PRODUCE, version, cid, w.bytes())


def raw_produce(broker, version, acks, topics):
    """One Produce round trip to broker: topics {name: {partition: records}}
    -> {name: {partition: answer}}."""
    with broker.connect() as c:
        c.send(produce_request(version, 7, acks, topics))
        resp = parse_produce_response(c.recv_frame(), version)
    assert resp["correlation_id"] == 7
    return resp["topics"]


def parse_produce_response(payload, version):
    r = Reader(payload)
    out = {"correlation_id": r.int32(), "topics": {}}

    def record_error():
        return (r.int32(), r.nullable_string())

    def partition():
        p = {"index": r.int32(), "error_code": r.int16(), "base_offset": r.int64()}
        if version >= 2:
            p["log_append_time"] = r.int64()
        if version >= 5:
            p["log_start_offset"] = r.int64()
        if version >= 8:
            p["record_errors"] = r.array(record_error)
            p["error_message"] = r.nullable_string()
        return p

    def topic():
        name = r.string()
        out["topics"][name] = {p["index"]: p for p in r.array(partition)}

    r.array(topic)
    if version >= 1:
        r.int32()  # throttle time
    r.expect_end("Produce response")
    return out


def api_versions_request(version, correlation_id, client_id="gregor-tests",
                         software_name="gregor-tests", software_version="1.0"):
    """A complete ApiVersions request frame.  v3 and later use header v2 and
    carry the client software name and version."""
    if version >= 3:
        body = (Writer().compact_string(software_name).compact_string(software_version)
                .empty_tagged_fields().bytes())
        return encode_request(API_API_VERSIONS, version, correlation_id, body, client_id,
                              flexible=True)
    return encode_request(API_API_VERSIONS, version, correlation_id, b"", client_id)


def parse_api_versions_response(payload, version):
    """Parses an ApiVersions response frame payload (the header is always v0).

    Returns a dict: correlation_id, error_code, apis ({key: (min, max)}),
    api_list (the entries in wire order), throttle_time_ms (v1+), tagged (v3+).
    """
    r = Reader(payload)
    out = {"correlation_id": r.int32(), "error_code": r.int16()}
    if version >= 3:
        def entry():
            e = (r.int16(), r.int16(), r.int16())
            r.tagged_fields()
            return e
        entries = r.compact_array(entry)
    else:
        entries = r.array(lambda: (r.int16(), r.int16(), r.int16()))
    if version >= 1:
        out["throttle_time_ms"] = r.int32()
    if version >= 3:
        out["tagged"] = r.tagged_fields()
    r.expect_end(f"ApiVersions v{version} response")
    out["api_list"] = entries
    out["apis"] = {k: (lo, hi) for k, lo, hi in entries}
    if len(out["apis"]) != len(entries):
        raise ProtocolError(f"ApiVersions lists an API key twice: {entries}")
    return out


# --------------------------------------------------------------------------
# Metadata
# --------------------------------------------------------------------------

def metadata_body(version, topics=None, allow_auto_topic_creation=False):
    """Metadata request body.  topics=None asks for all topics (v0 has no null
    array; an empty one means all there)."""
    flexible = version >= 9
    w = Writer()
    if topics is None and version >= 1:
        if flexible:
            w.uvarint(0)
        else:
            w.int32(-1)
    else:
        topics = topics or []
        if flexible:
            w.uvarint(len(topics) + 1)
            for t in topics:
                if version >= 10:
                    w.uuid()
                    w.compact_nullable_string(t)
                else:
                    w.compact_string(t)
                w.empty_tagged_fields()
        else:
            w.int32(len(topics))
            for t in topics:
                w.string(t)
    if version >= 4:
        w.bool(allow_auto_topic_creation)
    if 8 <= version <= 10:
        w.bool(False)  # include_cluster_authorized_operations
    if version >= 8:
        w.bool(False)  # include_topic_authorized_operations
    if flexible:
        w.empty_tagged_fields()
    return w.bytes()


def metadata_request(version, correlation_id, topics=None, allow_auto_topic_creation=False,
                     client_id="gregor-tests"):
    return encode_request(API_METADATA, version, correlation_id,
                          metadata_body(version, topics, allow_auto_topic_creation),
                          client_id, flexible=version >= 9)


def parse_metadata_response(payload, version):
    """Parses a Metadata response frame payload of the given version (header v1
    with a tag section from v9 on).  Returns a dict with correlation_id,
    throttle_time_ms, brokers [{node_id, host, port, rack}], cluster_id,
    controller_id and topics [{error_code, name, topic_id, is_internal,
    partitions}]."""
    flexible = version >= 9
    r = Reader(payload)
    out = {"correlation_id": r.int32()}
    if flexible:
        r.tagged_fields()

    string = r.compact_string if flexible else r.string
    nstring = r.compact_nullable_string if flexible else r.nullable_string

    def array(item):
        return r.compact_array(item) if flexible else r.array(item)

    def tags():
        if flexible:
            r.tagged_fields()

    if version >= 3:
        out["throttle_time_ms"] = r.int32()

    def broker():
        b = {"node_id": r.int32(), "host": string(), "port": r.int32(), "rack": None}
        if version >= 1:
            b["rack"] = nstring()
        tags()
        return b
    out["brokers"] = array(broker)
    out["cluster_id"] = nstring() if version >= 2 else None
    out["controller_id"] = r.int32() if version >= 1 else None

    def int32s():
        return array(r.int32)

    def partition():
        p = {"error_code": r.int16(), "partition_index": r.int32(), "leader_id": r.int32()}
        if version >= 7:
            p["leader_epoch"] = r.int32()
        p["replica_nodes"] = int32s()
        p["isr_nodes"] = int32s()
        if version >= 5:
            p["offline_replicas"] = int32s()
        tags()
        return p

    def topic():
        t = {"error_code": r.int16()}
        t["name"] = nstring() if version >= 12 else string()
        if version >= 10:
            t["topic_id"] = r.uuid()
        t["is_internal"] = r.bool() if version >= 1 else False
        t["partitions"] = array(partition)
        if version >= 8:
            t["topic_authorized_operations"] = r.int32()
        tags()
        return t
    out["topics"] = array(topic)
    if 8 <= version <= 10:
        out["cluster_authorized_operations"] = r.int32()
    tags()
    r.expect_end(f"Metadata v{version} response")
    return out


# --------------------------------------------------------------------------
# Fetch (v7+: with fetch sessions)
# --------------------------------------------------------------------------

def fetch_request(version, correlation_id, topics, session_id=0, session_epoch=-1,
                  forgotten=(), max_wait_ms=0, min_bytes=1, max_bytes=1 << 20,
                  replica_id=-1):
    """A complete Fetch request frame, v7 to v16 (flexible from v12; topics by
    id from v13).  topics: [(topic, [(partition, fetch_offset,
    partition_max_bytes)])] where topic is a name before v13 and a 16-byte id
    from v13; forgotten: [(topic, [partitions])] likewise."""
    assert 7 <= version <= 16
    flexible = version >= 12
    w = Writer()
    string = w.compact_string if flexible else w.string

    def count(n):
        w.count(n, flexible)

    def tags():
        if flexible:
            w.empty_tagged_fields()

    def topic(t):
        if version >= 13:
            w.uuid(t)
        else:
            string(t)

    if version < 15:
        w.int32(replica_id)
    w.int32(max_wait_ms).int32(min_bytes).int32(max_bytes).int8(0)
    w.int32(session_id).int32(session_epoch)
    count(len(topics))
    for t, parts in topics:
        topic(t)
        count(len(parts))
        for index, offset, part_max in parts:
            w.int32(index)
            if version >= 9:
                w.int32(-1)  # current leader epoch: not checked
            w.int64(offset)
            if version >= 12:
                w.int32(-1)  # last fetched epoch
            w.int64(-1)  # log start offset (followers)
            w.int32(part_max)
            tags()
        tags()
    count(len(forgotten))
    for t, parts in forgotten:
        topic(t)
        count(len(parts))
        for index in parts:
            w.int32(index)
        tags()
    if version >= 11:
        string("")  # rack id
    if flexible:
        if version >= 15 and replica_id >= 0:
            state = Writer().int32(replica_id).int64(-1).empty_tagged_fields().bytes()
            w.uvarint(1).uvarint(1).uvarint(len(state)).raw(state)  # tag 1: ReplicaState
        else:
            w.empty_tagged_fields()
    return encode_request(API_FETCH, version, correlation_id, w.bytes(), flexible=flexible)


def parse_fetch_response(payload, version):
    """Parses a Fetch response (v7 to v16).  Returns a dict with
    correlation_id, error_code, session_id and partitions: a flat list of
    {topic, partition, error_code, high_watermark, last_stable_offset,
    log_start_offset, records} in response order, topic being the name
    before v13 and the id from v13."""
    flexible = version >= 12
    r = Reader(payload)
    out = {"correlation_id": r.int32()}
    if flexible:
        r.tagged_fields()

    def array(item):
        return r.compact_array(item) if flexible else r.array(item)

    def tags():
        if flexible:
            r.tagged_fields()

    out["throttle_time_ms"] = r.int32()
    out["error_code"] = r.int16()
    out["session_id"] = r.int32()
    parts = []

    def aborted():
        r.int64()
        r.int64()
        tags()

    def records():
        if flexible:
            n = r.uvarint() - 1
        else:
            n = r.int32()
        return r.take(n) if n > 0 else b""

    def partition(topic):
        p = {"topic": topic, "partition": r.int32(), "error_code": r.int16(),
             "high_watermark": r.int64(), "last_stable_offset": r.int64(),
             "log_start_offset": r.int64()}
        if flexible:
            n = r.uvarint() - 1
        else:
            n = r.int32()
        for _ in range(max(n, 0)):
            aborted()
        if version >= 11:
            r.int32()  # preferred read replica
        p["records"] = records()
        tags()
        parts.append(p)

    def topic():
        name = r.uuid() if version >= 13 else (r.compact_string() if flexible else r.string())
        array(lambda: partition(name))
        tags()

    array(topic)
    tags()
    r.expect_end(f"Fetch v{version} response")
    out["partitions"] = parts
    return out


# --------------------------------------------------------------------------
# CreateTopics
# --------------------------------------------------------------------------

def create_topics_request(version, correlation_id, topics, timeout_ms=30000,
                          validate_only=False, client_id="gregor-tests"):
    """A CreateTopics request (v2-v7) frame.  topics: [(name, partitions,
    replication_factor)], [(name, partitions, replication_factor,
    {config: value})] or [(name, partitions, replication_factor, {config:
    value}, assignment)], where assignment lists each partition's replica
    ids (partitions and replication_factor are then -1)."""
    flexible = version >= 5
    w = Writer()
    string = w.compact_string if flexible else w.string

    def count(n):
        w.count(n, flexible)

    count(len(topics))
    for name, partitions, rf, *rest in topics:
        configs = (rest[0] if rest else None) or {}
        assignment = rest[1] if len(rest) > 1 else None
        string(name)
        w.int32(partitions).int16(rf)
        count(len(assignment or []))
        for index, replicas in enumerate(assignment or []):
            w.int32(index)
            count(len(replicas))
            for r in replicas:
                w.int32(r)
            if flexible:
                w.empty_tagged_fields()
        count(len(configs))
        for key, value in configs.items():
            string(key)
            (w.compact_nullable_string if flexible else w.nullable_string)(value)
            if flexible:
                w.empty_tagged_fields()
        if flexible:
            w.empty_tagged_fields()
    w.int32(timeout_ms)
    if version >= 1:
        w.bool(validate_only)
    if flexible:
        w.empty_tagged_fields()
    return encode_request(API_CREATE_TOPICS, version, correlation_id, w.bytes(), client_id,
                          flexible=flexible)


def parse_create_topics_response(payload, version):
    """Parses a CreateTopics response (v2-v7).  Returns correlation_id,
    throttle_time_ms and topics [{name, topic_id (v7), error_code,
    error_message, num_partitions (v5), replication_factor (v5)}]."""
    flexible = version >= 5
    r = Reader(payload)
    out = {"correlation_id": r.int32()}
    if flexible:
        r.tagged_fields()
    out["throttle_time_ms"] = r.int32()
    string = r.compact_string if flexible else r.string
    nstring = r.compact_nullable_string if flexible else r.nullable_string

    def config():
        c = {"name": string(), "value": nstring(), "read_only": r.bool(),
             "config_source": r.int8(), "is_sensitive": r.bool()}
        r.tagged_fields()
        return c

    def topic():
        t = {"name": string()}
        if version >= 7:
            t["topic_id"] = r.uuid()
        t["error_code"] = r.int16()
        t["error_message"] = nstring()
        if version >= 5:
            t["num_partitions"] = r.int32()
            t["replication_factor"] = r.int16()
            n = r.uvarint()
            if n > r.remaining() + 1:
                raise ProtocolError(f"config count {n - 1} exceeds the frame")
            t["configs"] = None if n == 0 else [config() for _ in range(n - 1)]
            t["tagged"] = r.tagged_fields()
        return t
    out["topics"] = r.compact_array(topic) if flexible else r.array(topic)
    if flexible:
        r.tagged_fields()
    r.expect_end(f"CreateTopics v{version} response")
    return out


# --------------------------------------------------------------------------
# DescribeQuorum
# --------------------------------------------------------------------------

def describe_quorum_request(version, correlation_id, client_id="gregor-tests"):
    """DescribeQuorum (v0-v2, always flexible) for __cluster_metadata-0."""
    w = Writer().uvarint(2).compact_string(METADATA_TOPIC)
    w.uvarint(2).int32(0).empty_tagged_fields()  # one partition: 0
    w.empty_tagged_fields()  # topic
    w.empty_tagged_fields()  # request
    return encode_request(API_DESCRIBE_QUORUM, version, correlation_id, w.bytes(), client_id,
                          flexible=True)


def parse_describe_quorum_response(payload, version):
    """Parses a DescribeQuorum response.  Returns correlation_id, error_code
    and, for the metadata partition, partition: {error_code, leader_id,
    leader_epoch, high_watermark, voters, observers}, where voters and
    observers are lists of {replica_id, log_end_offset, ...}."""
    r = Reader(payload)
    out = {"correlation_id": r.int32()}
    r.tagged_fields()
    out["error_code"] = r.int16()
    if version >= 2:
        out["error_message"] = r.compact_nullable_string()

    def replica():
        s = {"replica_id": r.int32()}
        if version >= 2:
            s["replica_directory_id"] = r.uuid()
        s["log_end_offset"] = r.int64()
        if version >= 1:
            s["last_fetch_timestamp"] = r.int64()
            s["last_caught_up_timestamp"] = r.int64()
        r.tagged_fields()
        return s

    def partition():
        p = {"partition_index": r.int32(), "error_code": r.int16()}
        if version >= 2:
            p["error_message"] = r.compact_nullable_string()
        p["leader_id"] = r.int32()
        p["leader_epoch"] = r.int32()
        p["high_watermark"] = r.int64()
        p["voters"] = r.compact_array(replica)
        p["observers"] = r.compact_array(replica)
        r.tagged_fields()
        return p

    def topic():
        t = {"name": r.compact_string(), "partitions": r.compact_array(partition)}
        r.tagged_fields()
        return t
    out["topics"] = r.compact_array(topic)
    if version >= 2:
        def listener():
            lst = {"name": r.compact_string(), "host": r.compact_string(),
                   "port": struct.unpack(">H", r.take(2))[0]}
            r.tagged_fields()
            return lst

        def node():
            n = {"node_id": r.int32(), "listeners": r.compact_array(listener)}
            r.tagged_fields()
            return n
        out["nodes"] = r.compact_array(node)
    r.tagged_fields()
    r.expect_end(f"DescribeQuorum v{version} response")
    out["partition"] = None
    for t in out["topics"]:
        for p in t["partitions"]:
            if t["name"] == METADATA_TOPIC and p["partition_index"] == 0:
                out["partition"] = p
    return out


# --------------------------------------------------------------------------
# FindCoordinator
# --------------------------------------------------------------------------

def java_string_hash(s):
    """Java's String.hashCode (over UTF-16 code units), as a signed int32."""
    h = 0
    units = s.encode("utf-16-be")
    for i in range(0, len(units), 2):
        h = (31 * h + int.from_bytes(units[i:i + 2], "big")) & 0xFFFFFFFF
    return h - (1 << 32) if h >= 1 << 31 else h


def coordinator_partition(key, partitions):
    """Kafka's abs(key.hashCode()) % partitions (abs(MIN_VALUE) is 0)."""
    h = java_string_hash(key)
    return (0 if h == -(1 << 31) else abs(h)) % partitions


def find_coordinator_request(version, correlation_id, keys, key_type=0,
                             client_id="gregor-tests"):
    """FindCoordinator v0-v6: one key up to v3 (keys[0]), a batch from v4."""
    flexible = version >= 3
    w = Writer()
    if version <= 3:
        (w.compact_string if flexible else w.string)(keys[0])
    if version >= 1:
        w.int8(key_type)
    if version >= 4:
        w.uvarint(len(keys) + 1)
        for k in keys:
            w.compact_string(k)
    if flexible:
        w.empty_tagged_fields()
    return encode_request(API_FIND_COORDINATOR, version, correlation_id, w.bytes(), client_id,
                          flexible=flexible)


def parse_find_coordinator_response(payload, version):
    """Returns correlation_id and coordinators: [{key, node_id, host, port,
    error_code, error_message}] (one entry, key None, up to v3)."""
    flexible = version >= 3
    r = Reader(payload)
    out = {"correlation_id": r.int32()}
    if flexible:
        r.tagged_fields()
    string = r.compact_string if flexible else r.string
    nstring = r.compact_nullable_string if flexible else r.nullable_string
    if version >= 1:
        out["throttle_time_ms"] = r.int32()
    if version <= 3:
        c = {"key": None, "error_code": r.int16(), "error_message": None}
        if version >= 1:
            c["error_message"] = nstring()
        c.update(node_id=r.int32(), host=string(), port=r.int32())
        out["coordinators"] = [c]
    else:
        def coordinator():
            c = {"key": r.compact_string(), "node_id": r.int32(), "host": r.compact_string(),
                 "port": r.int32(), "error_code": r.int16(),
                 "error_message": r.compact_nullable_string()}
            r.tagged_fields()
            return c
        out["coordinators"] = r.compact_array(coordinator)
    if flexible:
        r.tagged_fields()
    r.expect_end(f"FindCoordinator v{version} response")
    return out


# --------------------------------------------------------------------------
# The log APIs: DeleteRecords, DescribeLogDirs, OffsetForLeaderEpoch
# --------------------------------------------------------------------------

class _Codec:
    """Picks the compact or classic spelling of strings and arrays for one
    message version, over a Writer or a Reader."""

    def __init__(self, io, flexible):
        self.io = io
        self.flexible = flexible

    def string(self, v=None):
        io = self.io
        if isinstance(io, Writer):
            return io.compact_string(v) if self.flexible else io.string(v)
        return io.compact_string() if self.flexible else io.string()

    def count(self, n):
        """Writes an array count (None: a null array)."""
        if self.flexible:
            self.io.uvarint(0 if n is None else n + 1)
        else:
            self.io.int32(-1 if n is None else n)

    def array(self, item):
        return self.io.compact_array(item) if self.flexible else self.io.array(item)

    def tags(self):
        if self.flexible:
            if isinstance(self.io, Writer):
                self.io.empty_tagged_fields()
            else:
                self.io.tagged_fields()


def _read_topics(c, partition):
    """Reads an array of (name, partitions, tags) topics into {name:
    {partition: fields}}; a topic or partition listed twice is an error."""
    def topic():
        name = c.string()
        parts = c.array(partition)
        c.tags()
        by_index = {p["partition"]: p for p in parts}
        if len(by_index) != len(parts):
            raise ProtocolError(f"topic {name} lists a partition twice")
        return name, by_index
    topics = c.array(topic)
    if len(dict(topics)) != len(topics):
        raise ProtocolError(f"a topic is listed twice: {[t for t, _ in topics]}")
    return dict(topics)


def delete_records_request(version, correlation_id, topics, timeout_ms=10000,
                           client_id="gregor-tests"):
    """DeleteRecords (v0-v2); topics: {name: {partition: offset}}."""
    flexible = version >= 2
    w = Writer()
    c = _Codec(w, flexible)
    c.count(len(topics))
    for name, parts in topics.items():
        c.string(name)
        c.count(len(parts))
        for index, offset in parts.items():
            w.int32(index).int64(offset)
            c.tags()
        c.tags()
    w.int32(timeout_ms)
    c.tags()
    return encode_request(API_DELETE_RECORDS, version, correlation_id, w.bytes(), client_id,
                          flexible=flexible)


def parse_delete_records_response(payload, version):
    """Returns correlation_id, throttle_time_ms and topics {name: {partition:
    {low_watermark, error_code}}}."""
    r = Reader(payload)
    c = _Codec(r, version >= 2)
    out = {"correlation_id": r.int32()}
    c.tags()
    out["throttle_time_ms"] = r.int32()

    def partition():
        p = {"partition": r.int32(), "low_watermark": r.int64(), "error_code": r.int16()}
        c.tags()
        return p

    out["topics"] = _read_topics(c, partition)
    c.tags()
    r.expect_end(f"DeleteRecords v{version} response")
    return out


def describe_log_dirs_request(version, correlation_id, topics=None, client_id="gregor-tests"):
    """DescribeLogDirs (v1-v4); topics: None for all, else {name: [partitions]}."""
    flexible = version >= 2
    w = Writer()
    c = _Codec(w, flexible)
    c.count(None if topics is None else len(topics))
    for name, parts in (topics or {}).items():
        c.string(name)
        c.count(len(parts))
        for index in parts:
            w.int32(index)
        c.tags()
    c.tags()
    return encode_request(API_DESCRIBE_LOG_DIRS, version, correlation_id, w.bytes(), client_id,
                          flexible=flexible)


def parse_describe_log_dirs_response(payload, version):
    """Returns correlation_id, throttle_time_ms, error_code (v3+) and results
    [{error_code, log_dir, topics {name: {partition: {partition_size,
    offset_lag, is_future_key}}}, total_bytes, usable_bytes (v4+)}]."""
    r = Reader(payload)
    c = _Codec(r, version >= 2)
    out = {"correlation_id": r.int32()}
    c.tags()
    out["throttle_time_ms"] = r.int32()
    if version >= 3:
        out["error_code"] = r.int16()

    def partition():
        p = {"partition": r.int32(), "partition_size": r.int64(), "offset_lag": r.int64(),
             "is_future_key": r.bool()}
        c.tags()
        return p

    def result():
        res = {"error_code": r.int16(), "log_dir": c.string()}
        res["topics"] = _read_topics(c, partition)
        if version >= 4:
            res["total_bytes"] = r.int64()
            res["usable_bytes"] = r.int64()
        c.tags()
        return res
    out["results"] = c.array(result)
    c.tags()
    r.expect_end(f"DescribeLogDirs v{version} response")
    return out


def offset_for_leader_epoch_request(version, correlation_id, topics, replica_id=-1,
                                    client_id="gregor-tests"):
    """OffsetForLeaderEpoch (v2-v4); topics: {name: [(partition,
    current_leader_epoch, leader_epoch)]}; replica_id is sent from v3."""
    flexible = version >= 4
    w = Writer()
    c = _Codec(w, flexible)
    if version >= 3:
        w.int32(replica_id)
    c.count(len(topics))
    for name, parts in topics.items():
        c.string(name)
        c.count(len(parts))
        for index, current, epoch in parts:
            w.int32(index).int32(current).int32(epoch)
            c.tags()
        c.tags()
    c.tags()
    return encode_request(API_OFFSET_FOR_LEADER_EPOCH, version, correlation_id, w.bytes(),
                          client_id, flexible=flexible)


def parse_offset_for_leader_epoch_response(payload, version):
    """Returns correlation_id, throttle_time_ms and topics {name: {partition:
    {error_code, leader_epoch, end_offset}}}."""
    r = Reader(payload)
    c = _Codec(r, version >= 4)
    out = {"correlation_id": r.int32()}
    c.tags()
    out["throttle_time_ms"] = r.int32()

    def partition():
        p = {"error_code": r.int16(), "partition": r.int32(), "leader_epoch": r.int32(),
             "end_offset": r.int64()}
        c.tags()
        return p

    out["topics"] = _read_topics(c, partition)
    c.tags()
    r.expect_end(f"OffsetForLeaderEpoch v{version} response")
    return out


# --------------------------------------------------------------------------
# Connections
# --------------------------------------------------------------------------

def recv_exact(sock, n, deadline):
    """Reads exactly n bytes or raises (EOFError on a clean close,
    TimeoutError at the deadline)."""
    buf = bytearray()
    while len(buf) < n:
        left = deadline - time.monotonic()
        if left <= 0:
            raise TimeoutError(f"timed out with {len(buf)} of {n} bytes read")
        sock.settimeout(left)
        try:
            chunk = sock.recv(n - len(buf))
        except socket.timeout:
            raise TimeoutError(f"timed out with {len(buf)} of {n} bytes read") from None
        if not chunk:
            raise EOFError(f"connection closed with {len(buf)} of {n} bytes read")
        buf += chunk
    return bytes(buf)


def recv_frame(sock, timeout=5.0, max_size=64 << 20):
    """Reads one size-prefixed response frame; returns its payload."""
    deadline = time.monotonic() + timeout
    (size,) = struct.unpack(">i", recv_exact(sock, 4, deadline))
    if size < 4 or size > max_size:
        raise ProtocolError(f"response frame size {size}")
    return recv_exact(sock, size, deadline)


def wait_closed(sock, timeout=5.0):
    """Waits for the peer to close the connection.

    Returns (closed, data): closed is True when the peer closed or reset the
    connection before the timeout; data is whatever it sent first.
    """
    deadline = time.monotonic() + timeout
    data = bytearray()
    while True:
        left = deadline - time.monotonic()
        if left <= 0:
            return False, bytes(data)
        sock.settimeout(left)
        try:
            chunk = sock.recv(65536)
        except socket.timeout:
            return False, bytes(data)
        except (ConnectionResetError, ConnectionAbortedError, BrokenPipeError):
            return True, bytes(data)
        if not chunk:
            return True, bytes(data)
        data += chunk


class KafkaConnection:
    """One blocking connection speaking raw Kafka frames."""

    def __init__(self, host, port, timeout=5.0):
        self.timeout = timeout
        self.sock = socket.create_connection((host, port), timeout=timeout)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.next_correlation_id = 1

    def close(self):
        self.sock.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def send(self, data):
        self.sock.settimeout(self.timeout)
        self.sock.sendall(data)

    def recv_frame(self, timeout=None):
        return recv_frame(self.sock, self.timeout if timeout is None else timeout)

    def _correlation_id(self):
        cid = self.next_correlation_id
        self.next_correlation_id += 1
        return cid

    def _round_trip(self, request, correlation_id, parse, version):
        self.send(request)
        resp = parse(self.recv_frame(), version)
        if resp["correlation_id"] != correlation_id:
            raise ProtocolError(
                f"correlation id {resp['correlation_id']} in the answer to {correlation_id}")
        return resp

    def api_versions(self, version=3, parse_as=None, **kw):
        """Sends ApiVersions vN and parses the answer as v`parse_as` (default N)."""
        cid = self._correlation_id()
        return self._round_trip(api_versions_request(version, cid, **kw), cid,
                                parse_api_versions_response,
                                version if parse_as is None else parse_as)

    def metadata(self, version=12, topics=None, allow_auto_topic_creation=False):
        cid = self._correlation_id()
        return self._round_trip(metadata_request(version, cid, topics, allow_auto_topic_creation),
                                cid, parse_metadata_response, version)

    def create_topics(self, topics, version=7, timeout_ms=30000, validate_only=False):
        """topics: [(name, num_partitions, replication_factor)]."""
        cid = self._correlation_id()
        return self._round_trip(
            create_topics_request(version, cid, topics, timeout_ms, validate_only),
            cid, parse_create_topics_response, version)

    def fetch(self, version, topics, **kw):
        """One Fetch round trip (see fetch_request for the arguments)."""
        cid = self._correlation_id()
        return self._round_trip(fetch_request(version, cid, topics, **kw), cid,
                                parse_fetch_response, version)

    def describe_quorum(self, version=1):
        cid = self._correlation_id()
        return self._round_trip(describe_quorum_request(version, cid), cid,
                                parse_describe_quorum_response, version)

    def find_coordinator(self, keys, key_type=0, version=6):
        """keys: a list (v4+) or one key; returns the list of coordinators."""
        keys = [keys] if isinstance(keys, str) else list(keys)
        cid = self._correlation_id()
        return self._round_trip(find_coordinator_request(version, cid, keys, key_type), cid,
                                parse_find_coordinator_response, version)["coordinators"]

    def delete_records(self, topics, version=2, timeout_ms=10000):
        """topics: {name: {partition: offset}}."""
        cid = self._correlation_id()
        return self._round_trip(delete_records_request(version, cid, topics, timeout_ms), cid,
                                parse_delete_records_response, version)

    def describe_log_dirs(self, topics=None, version=4):
        """topics: None for all, else {name: [partitions]}."""
        cid = self._correlation_id()
        return self._round_trip(describe_log_dirs_request(version, cid, topics), cid,
                                parse_describe_log_dirs_response, version)

    def offset_for_leader_epoch(self, topics, version=4, replica_id=-1):
        """topics: {name: [(partition, current_leader_epoch, leader_epoch)]}."""
        cid = self._correlation_id()
        return self._round_trip(
            offset_for_leader_epoch_request(version, cid, topics, replica_id), cid,
            parse_offset_for_leader_epoch_response, version)

    def wait_closed(self, timeout=5.0):
        return wait_closed(self.sock, timeout)


# --------------------------------------------------------------------------
# Fetch, record batches and the records of __consumer_offsets
# --------------------------------------------------------------------------

CONSUMER_OFFSETS = "__consumer_offsets"


def fetch_v4(topic, partition, offset, max_wait_ms, min_bytes=1, max_bytes=1 << 20):
    """A Fetch v4 request body (a consumer, read_uncommitted) for one partition."""
    w = Writer()
    w.int32(-1)  # replica id: a consumer
    w.int32(max_wait_ms)
    w.int32(min_bytes)
    w.int32(max_bytes)
    w.int8(0)  # read_uncommitted
    w.int32(1)
    w.string(topic)
    w.int32(1)
    w.int32(partition)
    w.int64(offset)
    w.int32(max_bytes)
    return w.bytes()


def parse_fetch_v4(payload):
    """(correlation id, [{partition, error_code, high_watermark, records}])."""
    r = Reader(payload)
    correlation_id = r.int32()
    r.int32()  # throttle time
    parts = []
    for _ in range(r.int32()):
        r.string()
        for _ in range(r.int32()):
            index, err, hw = r.int32(), r.int16(), r.int64()
            r.int64()  # last stable offset
            n = r.int32()
            for _ in range(max(n, 0)):
                r.int64()
                r.int64()
            size = r.int32()
            records = r.take(size) if size > 0 else b""
            parts.append({"partition": index, "error_code": err, "high_watermark": hw,
                          "records": records})
    r.expect_end("Fetch v4 response")
    return correlation_id, parts


def _parse_record(r, base_offset, base_timestamp):
    rec = Reader(r.take(r.varint()))
    rec.int8()  # attributes (unused)
    timestamp = base_timestamp + rec.varlong()
    offset = base_offset + rec.varint()
    n = rec.varint()
    key = None if n < 0 else rec.take(n)
    n = rec.varint()
    value = None if n < 0 else rec.take(n)
    headers = []
    for _ in range(rec.varint()):
        hkey = rec.take(rec.varint())
        n = rec.varint()
        headers.append((hkey, None if n < 0 else rec.take(n)))
    rec.expect_end(f"record at offset {offset}")
    return {"offset": offset, "timestamp": timestamp, "key": key, "value": value,
            "headers": headers}


def record_batches(data):
    """The record batches (magic 2) in data: a Fetch response's records or a
    segment file.  Each is a dict of its header fields plus "records" (offset,
    timestamp, key, value, headers).  A last batch cut short, as a Fetch
    may end, is left out.  Uncompressed and gzip batches are read; the CRC is
    not checked (the broker checks it)."""
    data = bytes(data)
    batches = []
    pos = 0
    while len(data) - pos >= 61:
        (length,) = struct.unpack_from(">i", data, pos + 8)
        if length < 49:
            raise ProtocolError(f"batch length {length} at byte {pos}")
        end = pos + 12 + length
        if end > len(data):
            break
        r = Reader(data[pos:end])
        b = {"base_offset": r.int64(), "length": r.int32(), "partition_leader_epoch": r.int32(),
             "magic": r.int8()}
        if b["magic"] != 2:
            raise ProtocolError(f"magic {b['magic']} at byte {pos}")
        (b["crc"],) = struct.unpack(">I", r.take(4))
        b.update(attributes=r.int16(), last_offset_delta=r.int32(), base_timestamp=r.int64(),
                 max_timestamp=r.int64(), producer_id=r.int64(), producer_epoch=r.int16(),
                 base_sequence=r.int32(), record_count=r.int32())
        body = r.take(r.remaining())
        codec = b["attributes"] & 7
        if codec == 1:
            body = gzip.decompress(body)
        elif codec != 0:
            raise ProtocolError(f"batch at offset {b['base_offset']}: codec {codec} "
                                "is not read here (only none and gzip)")
        rr = Reader(body)
        b["records"] = [_parse_record(rr, b["base_offset"], b["base_timestamp"])
                        for _ in range(b["record_count"])]
        rr.expect_end(f"records of the batch at offset {b['base_offset']}")
        batches.append(b)
        pos = end
    return batches


def fetch_batches(broker, topic, partition, start=0, end=None, timeout=5.0):
    """Every batch of a partition (led by broker) from offset `start` up to
    `end` (default: the high watermark of the first answer), by raw Fetch v4."""
    batches = []
    offset = start
    with broker.connect(timeout=timeout) as c:
        while end is None or offset < end:
            cid = c._correlation_id()
            c.send(encode_request(API_FETCH, 4, cid, fetch_v4(topic, partition, offset, 0)))
            got_cid, parts = parse_fetch_v4(c.recv_frame())
            if got_cid != cid or len(parts) != 1:
                raise ProtocolError(f"Fetch answer {got_cid} {parts!r} to request {cid}")
            p = parts[0]
            if p["error_code"] != ERR_NONE:
                raise ProtocolError(f"Fetch {topic}-{partition} at {offset}: "
                                    f"error {p['error_code']}")
            if end is None:
                end = p["high_watermark"]
            got = record_batches(p["records"])
            if not got:
                if offset < end:
                    raise ProtocolError(f"Fetch {topic}-{partition} at {offset} below the "
                                        f"high watermark {end} returned no batch")
                break
            batches += got
            offset = got[-1]["base_offset"] + got[-1]["last_offset_delta"] + 1
    return batches


def _coordinator_reader(r, flexible):
    """Readers for the field types of the coordinator records in one
    version's spelling (compact from the flexible versions on)."""
    def read_bytes():
        n = r.uvarint() - 1 if flexible else r.int32()
        if n < 0:
            raise ProtocolError("null in a non-nullable bytes field")
        return r.take(n)

    def array(item):
        return r.compact_array(item) if flexible else r.array(item)

    return {
        "string": r.compact_string if flexible else r.string,
        "nullable_string": r.compact_nullable_string if flexible else r.nullable_string,
        "bytes": read_bytes,
        "array": array,
        "tags": r.tagged_fields if flexible else (lambda: {}),
    }


def _offset_commit_value(r, version, out):
    if not 0 <= version <= 4:
        raise ProtocolError(f"OffsetCommitValue version {version}")
    f = _coordinator_reader(r, version >= 4)
    out["offset"] = r.int64()
    out["leader_epoch"] = r.int32() if version >= 3 else -1
    out["metadata"] = f["string"]()
    out["commit_timestamp"] = r.int64()
    out["expire_timestamp"] = r.int64() if version == 1 else -1
    f["tags"]()


def _group_metadata_value(r, version, out):
    if not 0 <= version <= 4:
        raise ProtocolError(f"GroupMetadataValue version {version}")
    f = _coordinator_reader(r, version >= 4)

    def member():
        m = {"member_id": f["string"]()}
        m["group_instance_id"] = f["nullable_string"]() if version >= 3 else None
        m["client_id"] = f["string"]()
        m["client_host"] = f["string"]()
        m["rebalance_timeout"] = r.int32() if version >= 1 else -1
        m["session_timeout"] = r.int32()
        m["subscription"] = f["bytes"]()
        m["assignment"] = f["bytes"]()
        f["tags"]()
        return m

    out["protocol_type"] = f["string"]()
    out["generation"] = r.int32()
    out["protocol"] = f["nullable_string"]()
    out["leader"] = f["nullable_string"]()
    out["current_state_timestamp"] = r.int64() if version >= 2 else -1
    out["members"] = f["array"](member)
    f["tags"]()


def decode_consumer_offsets_record(key, value):
    """One record of __consumer_offsets, decoded strictly by Kafka's schemas:
    {"type": "offset", "group", "topic", "partition", "offset",
    "leader_epoch", "metadata", "commit_timestamp", "expire_timestamp"} or
    {"type": "group", "group", "protocol_type", "generation", "protocol",
    "leader", "current_state_timestamp", "members": [...]}, each with
    "key_version", "tombstone" and (unless a tombstone) "value_version".
    Other key versions (the consumer protocol's records) give
    {"type": "other", "key_version"}.  Raises ProtocolError on any byte out
    of place, trailing bytes included."""
    if key is None:
        raise ProtocolError("a __consumer_offsets record without a key")
    r = Reader(key)
    kv = r.int16()
    if kv in (0, 1):
        out = {"type": "offset", "key_version": kv, "group": r.string(), "topic": r.string(),
               "partition": r.int32()}
    elif kv == 2:
        out = {"type": "group", "key_version": kv, "group": r.string()}
    else:
        return {"type": "other", "key_version": kv}
    r.expect_end(f"key version {kv}")
    out["tombstone"] = value is None
    if value is None:
        return out
    r = Reader(value)
    out["value_version"] = r.int16()
    if out["type"] == "offset":
        _offset_commit_value(r, out["value_version"], out)
    else:
        _group_metadata_value(r, out["value_version"], out)
    r.expect_end(f"{out['type']} value version {out['value_version']}")
    return out


def consumer_offsets_records(broker, partition, topic=CONSUMER_OFFSETS, start=0, timeout=5.0):
    """The records of one partition of __consumer_offsets (led by broker), up
    to its high watermark, decoded: dicts of decode_consumer_offsets_record
    plus "log_offset" and "log_timestamp" (the record's own) and "batch"
    (the header fields of its batch)."""
    out = []
    for b in fetch_batches(broker, topic, partition, start, timeout=timeout):
        header = {k: v for k, v in b.items() if k != "records"}
        for rec in b["records"]:
            d = decode_consumer_offsets_record(rec["key"], rec["value"])
            d.update(log_offset=rec["offset"], log_timestamp=rec["timestamp"], batch=header)
            out.append(d)
    return out


# --------------------------------------------------------------------------
# Processes
# --------------------------------------------------------------------------

class NodeStartError(Exception):
    pass


def _die_with_parent():
    """Runs in the child before exec: if the test runner dies, the kernel kills
    the node too, so an aborted run never leaves servers behind."""
    try:
        import ctypes
        libc = ctypes.CDLL(None, use_errno=True)
        PR_SET_PDEATHSIG = 1
        libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
    except Exception:
        pass


class Node:
    """One Gregor server process.

    listener_names: listener names, each given its own free loopback port at
    start.  config: key/values written to the node's config file.  overrides:
    key/values passed as --override flags.  extra_args: appended verbatim.
    env: extra environment variables.
    """

    binary = None           # set by subclasses
    role = "node"

    def __init__(self, workdir, node_id, listener_names=("PLAINTEXT",), config=None,
                 overrides=None, extra_args=(), env=None, host="127.0.0.1",
                 log_level="info", write_node_id=True):
        self.workdir = Path(workdir)
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.node_id = node_id
        self.host = host
        self.listener_names = tuple(listener_names)
        self.config = dict(config or {})
        self.overrides = dict(overrides or {})
        self.extra_args = list(extra_args)
        self.env = dict(env or {})
        self.log_level = log_level
        self.write_node_id = write_node_id
        self.ports = {}
        self.proc = None
        self.log_path = self.workdir / "node.log"
        self.config_path = self.workdir / "node.properties"
        self.data_dir = self.workdir / "data"
        self.returncode = None
        self.died_unexpectedly = False
        self.expect_exit = False
        self.needed_sigkill = False

    # ---- addresses ----
    @property
    def port(self):
        return self.ports[self.listener_names[0]]

    @property
    def bootstrap(self):
        return f"{self.host}:{self.port}"

    def address(self, listener):
        return f"{self.host}:{self.ports[listener]}"

    @property
    def pid(self):
        return self.proc.pid if self.proc else None

    # ---- configuration ----
    def base_config(self):
        """Config-file keys every node of this kind gets."""
        listeners = ",".join(f"{n}://{self.host}:{self.ports[n]}" for n in self.listener_names)
        cfg = {
            "listeners": listeners,
            "log.dirs": str(self.data_dir),
            "log.level": self.log_level,
        }
        if self.write_node_id:
            cfg["node.id"] = str(self.node_id)
        if any(n != "PLAINTEXT" for n in self.listener_names):
            cfg["listener.security.protocol.map"] = ",".join(
                f"{n}:PLAINTEXT" for n in self.listener_names)
        return cfg

    def command(self):
        cfg = self.base_config()
        cfg.update(self.config)
        with open(self.config_path, "w") as f:
            f.write(f"# {self.role} {self.node_id}, written by the integration tests\n")
            for k, v in cfg.items():
                f.write(f"{k}={v}\n")
        cmd = [str(bin_dir() / self.binary), "--config", str(self.config_path)]
        for k, v in self.overrides.items():
            cmd += ["--override", f"{k}={v}"]
        return cmd + self.extra_args

    def environment(self):
        """The node's environment: the runner's, minus GREGOR_* variables (the
        servers read configuration from those, and a node's configuration is
        exactly what the test gives it), plus the test's own `env`."""
        env = {k: v for k, v in os.environ.items() if not k.startswith("GREGOR_")}
        env.update(self.env)
        return env

    # ---- lifecycle ----
    def assign_ports(self):
        """Picks a free port per listener.  Called by the first start; call it
        earlier when other nodes' configuration must name this node's ports.
        A restart keeps the ports, as a real restarted server would."""
        self.ports = {n: free_port(self.host) for n in self.listener_names}
        return self.ports

    def launch(self, fresh_ports=False):
        """Starts the process without waiting for it to become ready."""
        exe = bin_dir() / self.binary
        if not exe.exists():
            raise NodeStartError(f"{exe} does not exist (build it, or set GREGOR_BIN)")
        if fresh_ports or not self.ports:
            self.assign_ports()
        self.data_dir.mkdir(exist_ok=True)
        cmd = self.command()
        self.returncode = None
        self.died_unexpectedly = False
        self.needed_sigkill = False
        log = open(self.log_path, "ab")
        try:
            log.write(f"--- starting: {' '.join(cmd)}\n".encode())
            log.flush()
            self.proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=log, stderr=log,
                                         cwd=self.workdir, env=self.environment(),
                                         preexec_fn=_die_with_parent)
        finally:
            log.close()
        return self.proc

    def start(self, timeout=10.0, attempts=3):
        """Starts the node and waits until it serves every listener.  If the
        node could not bind a port (another process took it since it was
        picked), it is retried on fresh ports."""
        for attempt in range(attempts):
            self.launch(fresh_ports=attempt > 0)
            try:
                self.wait_ready(timeout)
                return self
            except NodeStartError:
                exited = self.proc.poll() is not None
                if exited and attempt + 1 < attempts and self._lost_port_race():
                    continue  # someone took our port between probe and bind
                if exited:
                    self.returncode = self.proc.returncode  # reported by the raise
                self.stop()
                raise
        raise AssertionError("unreachable")

    def _lost_port_race(self):
        tail = self.log_tail(20).lower()
        return "address already in use" in tail or "eaddrinuse" in tail

    def wait_ready(self, timeout=10.0):
        deadline = time.monotonic() + timeout
        pending = list(self.listener_names)
        last_error = None
        while pending:
            rc = self.proc.poll()
            if rc is not None:
                raise NodeStartError(
                    f"{self.role} {self.node_id} exited with status {rc} while starting\n"
                    + self.log_tail())
            if time.monotonic() > deadline:
                raise NodeStartError(
                    f"{self.role} {self.node_id} not ready on {pending} after {timeout:.0f}s "
                    f"(last error: {last_error!r})\n" + self.log_tail())
            name = pending[0]
            try:
                with KafkaConnection(self.host, self.ports[name], timeout=2.0) as c:
                    resp = c.api_versions(version=0)
                if resp["error_code"] != ERR_NONE:
                    raise ProtocolError(f"ApiVersions error {resp['error_code']}")
                pending.pop(0)
            except (OSError, EOFError, TimeoutError, ProtocolError) as e:
                last_error = e
                time.sleep(0.05)

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    def stop(self, timeout=10.0):
        """SIGTERM, wait, then SIGKILL; always by this node's own pid.
        Returns the exit status (negative: killed by that signal)."""
        if self.proc is None:
            return self.returncode
        if self.proc.poll() is not None:
            if self.returncode is None and not self.expect_exit:
                self.died_unexpectedly = True
        else:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.needed_sigkill = True
                self.proc.kill()
                self.proc.wait(timeout)
                with open(self.log_path, "ab") as f:
                    f.write(f"--- did not stop within {timeout}s of SIGTERM; killed\n".encode())
        self.returncode = self.proc.returncode
        return self.returncode

    def wait_exit(self, timeout):
        """Waits for the process to exit on its own; returns its status or None."""
        try:
            self.returncode = self.proc.wait(timeout)
            return self.returncode
        except subprocess.TimeoutExpired:
            return None

    def log_text(self):
        try:
            return self.log_path.read_text(errors="replace")
        except FileNotFoundError:
            return ""

    def log_tail(self, lines=60):
        text = self.log_text().splitlines()[-lines:]
        state = ""
        if self.proc is not None and self.proc.poll() is not None:
            state = f", exited with status {self.proc.returncode}"
        return f"--- last {len(text)} log lines of {self.role} {self.node_id} " \
               f"(pid {self.pid}{state}, {self.log_path}):\n" + "\n".join(text)

    def connect(self, listener=None, timeout=5.0):
        port = self.ports[listener] if listener else self.port
        return KafkaConnection(self.host, port, timeout)

    def __repr__(self):
        return f"<{type(self).__name__} {self.node_id} pid={self.pid} ports={self.ports}>"


class Broker(Node):
    binary = "gregor-broker"
    role = "broker"

    def metadata_lists(self, node_ids, timeout=2.0):
        """True when this broker's Metadata lists every id in node_ids."""
        with self.connect(timeout=timeout) as c:
            listed = {b["node_id"] for b in c.metadata(topics=[])["brokers"]}
        return set(node_ids) <= listed

    def wait_registered(self, timeout=15.0, node_ids=None):
        """Waits until this broker's own Metadata lists node_ids (default: this
        broker): registered with the active controller and unfenced."""
        ids = set(node_ids or [self.node_id])
        deadline = time.monotonic() + timeout
        last = None
        while True:
            if not self.alive():
                raise NodeStartError(f"broker {self.node_id} exited while registering\n"
                                     + self.log_tail())
            try:
                with self.connect(timeout=2.0) as c:
                    last = sorted(b["node_id"] for b in c.metadata(topics=[])["brokers"])
                if ids <= set(last):
                    return self
            except (OSError, EOFError, TimeoutError, ProtocolError) as e:
                last = e
            if time.monotonic() > deadline:
                raise NodeStartError(
                    f"broker {self.node_id}: Metadata does not list {sorted(ids)} after "
                    f"{timeout:.0f}s (last answer: {last!r})\n" + self.log_tail())
            time.sleep(0.05)


class Controller(Node):
    """A voter of the metadata quorum; its one listener is CONTROLLER."""
    binary = "gregor-controller"
    role = "controller"

    def __init__(self, workdir, node_id, listener_names=("CONTROLLER",), **kw):
        super().__init__(workdir, node_id, listener_names=listener_names, **kw)

    def describe_quorum(self, timeout=2.0):
        with self.connect(timeout=timeout) as c:
            return c.describe_quorum()["partition"]

    def activations(self):
        """Epochs in which this controller's log says it became active."""
        return [int(m) for m in re.findall(
            rf"node {self.node_id} is the active controller in epoch (\d+)", self.log_text())]

    def raft_roles(self):
        """(role, epoch, leader) for each role change this node logged."""
        return [(r, int(e), int(ld)) for r, e, ld in re.findall(
            rf"node {self.node_id} is (\w+) in epoch (\d+) \(leader (-?\d+)\)",
            self.log_text())]


class Cluster:
    """Every node a test starts.  The fixture that owns it stops them all.

    For single-node tests, add nodes one by one (``broker()``).  For a KRaft
    cluster, ``start(controllers=3, brokers=3)`` starts a controller quorum
    and brokers that register with it; afterwards ``bootstrap``,
    ``controllers``, ``brokers``, ``active_controller()``, ``kill9()``,
    ``restart()`` and ``stop()`` act on that cluster.
    """

    def __init__(self, tmp_path):
        self.tmp_path = Path(tmp_path)
        self.nodes = []
        self.controllers = []
        self.brokers = []
        self.quorum_voters = None

    def add(self, node_cls, node_id=None, **kw):
        if node_id is None:
            node_id = 1 + sum(isinstance(n, node_cls) for n in self.nodes)
        name = f"{node_cls.role}-{node_id}"
        n = 1
        while (self.tmp_path / name).exists():
            n += 1
            name = f"{node_cls.role}-{node_id}.{n}"
        node = node_cls(self.tmp_path / name, node_id, **kw)
        self.nodes.append(node)
        return node

    def broker(self, node_id=None, start=True, **kw):
        node = self.add(Broker, node_id, **kw)
        if start:
            node.start()
        return node

    def stop_all(self):
        for node in reversed(self.nodes):
            node.stop()

    stop = stop_all

    def log_tails(self, lines=60):
        return "\n\n".join(n.log_tail(lines) for n in self.nodes if n.proc is not None)

    # ---- KRaft clusters ----
    CONTROLLER_BASE_ID = 1
    BROKER_BASE_ID = 101

    def start(self, controllers=3, brokers=3, config=None, controller_config=None,
              broker_config=None, timeout=20.0):
        """Starts `controllers` controllers (ids 1..), then `brokers` brokers
        (ids 101..), on free loopback ports, and waits until a controller is
        active and every broker's Metadata lists every broker.

        config ({key: value}) goes into every node's config file;
        controller_config and broker_config only into that kind's."""
        common = dict(config or {})
        for i in range(controllers):
            cfg = dict(common, **(controller_config or {}))
            self.controllers.append(self.add(Controller, self.CONTROLLER_BASE_ID + i, config=cfg))
        for c in self.controllers:
            c.assign_ports()
        self.quorum_voters = ",".join(f"{c.node_id}@{c.host}:{c.port}" for c in self.controllers)
        for c in self.controllers:
            c.config["controller.quorum.voters"] = self.quorum_voters
        for i in range(brokers):
            cfg = {"controller.quorum.voters": self.quorum_voters,
                   "controller.listener.names": "CONTROLLER"}
            cfg.update(common)
            cfg.update(broker_config or {})
            b = self.add(Broker, self.BROKER_BASE_ID + i, config=cfg)
            b.assign_ports()
            self.brokers.append(b)

        deadline = time.monotonic() + timeout
        self.start_controllers(self.controllers, deadline - time.monotonic())
        self.wait_active_controller(deadline - time.monotonic())
        for b in self.brokers:
            b.launch()
        for b in self.brokers:
            b.wait_ready(max(1.0, deadline - time.monotonic()))
        self.wait_brokers_listed(timeout=max(1.0, deadline - time.monotonic()))
        return self

    def start_controllers(self, controllers, timeout=15.0):
        """Launches controllers together (a quorum needs a majority), then waits
        until each answers ApiVersions."""
        for c in controllers:
            c.launch()
        deadline = time.monotonic() + timeout
        for c in controllers:
            c.wait_ready(max(1.0, deadline - time.monotonic()))

    @property
    def bootstrap(self):
        return ",".join(b.bootstrap for b in self.brokers if b.alive())

    def live(self, nodes):
        return [n for n in nodes if n.alive()]

    def quorum_state(self):
        """The leader's DescribeQuorum partition, asking each live controller
        until one answers as the leader; None when none does."""
        for c in self.live(self.controllers):
            try:
                p = c.describe_quorum()
            except (OSError, EOFError, TimeoutError, ProtocolError):
                continue
            if p and p["error_code"] == ERR_NONE and p["leader_id"] == c.node_id:
                return p
        return None

    def active_controller(self, min_epoch=None):
        """The controller that is active now, from the controllers' logs: the
        live one whose latest role is leader in epoch E and which logged that
        it became the active controller in E (a new leader first applies the
        entries of earlier epochs).  The logs are used rather than a request
        so that finding the leader puts no load on it.  Returns
        (controller, epoch), or (None, None)."""
        best = (None, None)
        for c in self.live(self.controllers):
            roles = c.raft_roles()
            if not roles or roles[-1][0] != "leader":
                continue
            epoch = roles[-1][1]
            if epoch in c.activations() and (best[1] is None or epoch > best[1]):
                best = (c, epoch)
        if best[1] is None or (min_epoch is not None and best[1] < min_epoch):
            return None, None
        return best

    def wait_active_controller(self, timeout=10.0, min_epoch=None, poll=0.02):
        deadline = time.monotonic() + timeout
        while True:
            c, epoch = self.active_controller(min_epoch)
            if c is not None:
                return c, epoch
            if time.monotonic() > deadline:
                raise NodeStartError(f"no active controller (epoch >= {min_epoch}) after "
                                     f"{timeout:.0f}s\n" + "\n".join(
                                         c.log_tail(30) for c in self.controllers))
            time.sleep(poll)

    def controller(self, node_id):
        return next(c for c in self.controllers if c.node_id == node_id)

    def node(self, node_id):
        return next(n for n in self.controllers + self.brokers if n.node_id == node_id)

    def wait_brokers_listed(self, node_ids=None, on=None, timeout=15.0):
        """Waits until the Metadata of every broker in `on` (default: the live
        brokers) lists every id in node_ids (default: the live brokers')."""
        on = self.live(self.brokers) if on is None else on
        ids = {b.node_id for b in self.live(self.brokers)} if node_ids is None else set(node_ids)
        deadline = time.monotonic() + timeout
        for b in on:
            b.wait_registered(max(0.5, deadline - time.monotonic()), ids)

    def kill9(self, node):
        """SIGKILL by pid; waits for the exit.  The node is expected down."""
        node.proc.kill()
        node.returncode = node.proc.wait(10)
        return node.returncode

    def restart(self, node, timeout=15.0):
        """Starts a stopped node again with the same ports, directories and
        configuration.  A broker is back once its Metadata lists it."""
        if node.alive():
            node.stop()
        node.launch()
        node.wait_ready(timeout)
        if isinstance(node, Broker) and self.quorum_voters:
            node.wait_registered(timeout)
        return node

    def add_broker(self, node_id, timeout=15.0, **config):
        """Starts one more broker of this KRaft cluster (a fresh directory)."""
        cfg = {"controller.quorum.voters": self.quorum_voters,
               "controller.listener.names": "CONTROLLER"}
        cfg.update(config)
        b = self.add(Broker, node_id, config=cfg)
        self.brokers.append(b)
        b.start(timeout)
        b.wait_registered(timeout)
        return b

    def metadata(self, broker, topics=None, version=12):
        with broker.connect() as c:
            return c.metadata(version=version, topics=topics)

    def create_topic(self, name, partitions=1, replication_factor=1, config=None,
                     timeout=15.0, assignment=None):
        """Creates a topic (raw CreateTopics to the first live broker) and
        waits until every partition has a leader.  assignment: each
        partition's replica ids, instead of partitions and replication_factor."""
        self.create_topics([(name, partitions, replication_factor, config, assignment)],
                           timeout)

    def create_topics(self, specs, timeout=15.0):
        """Creates [(name, partitions, replication_factor[, config[,
        assignment]])] in one CreateTopics request to the first live broker,
        asserts every topic was created, and waits until every partition of
        each has a leader."""
        specs = [tuple(s) + (None,) * (5 - len(s)) for s in specs]
        topics = []
        for name, partitions, rf, config, assignment in specs:
            if assignment is not None:
                partitions, rf = -1, -1
            topics.append((name, partitions, rf, config or {}, assignment))
        broker = self.live(self.brokers)[0]
        with broker.connect(timeout=timeout) as c:
            resp = c.create_topics(topics, timeout_ms=int(timeout * 1000))
        errors = [t["error_code"] for t in resp["topics"]]
        assert errors == [0] * len(specs), f"creating {[s[0] for s in specs]}: {resp}"
        deadline = time.monotonic() + timeout
        for name, partitions, _, _, assignment in specs:
            if assignment is not None:
                partitions = len(assignment)
            while True:
                md = self.metadata(broker, topics=[name])
                t = [t for t in md["topics"] if t["name"] == name]
                if t and t[0]["error_code"] == 0 and len(t[0]["partitions"]) == partitions and \
                        all(p["leader_id"] >= 0 for p in t[0]["partitions"]):
                    break
                assert time.monotonic() < deadline, f"topic {name} never got leaders"
                time.sleep(0.05)

    def gregorctl(self, *args, bootstrap=None, check=True, timeout=60.0):
        """Runs gregorctl against this cluster (or bootstrap); see gregorctl()."""
        return gregorctl(*args, bootstrap=bootstrap or self.bootstrap, check=check,
                         timeout=timeout)


def eventually(check, timeout=20.0, what="condition", poll=0.1):
    """check() until it returns a true value (returned); fails the test
    after timeout seconds, naming what it waited for."""
    deadline = time.monotonic() + timeout
    while True:
        got = check()
        if got:
            return got
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(poll)


def raise_nofile_limit():
    """Raises the soft open-files limit to the hard limit, for this process and
    the nodes it starts from now on; returns (soft, hard)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)


# --------------------------------------------------------------------------
# Command-line tools
# --------------------------------------------------------------------------

def kcat_list(bootstrap, timeout=20.0):
    """Runs `kcat -L` against bootstrap; returns the CompletedProcess."""
    return subprocess.run(["kcat", "-b", bootstrap, "-L", "-m", "5"],
                          stdin=subprocess.DEVNULL, capture_output=True, text=True,
                          timeout=timeout)


def gregorctl(*args, bootstrap=None, check=False, timeout=60.0):
    """Runs bin/gregorctl [-b bootstrap] args (stdin closed, output captured
    as text); returns the CompletedProcess.  check: assert that it exited 0."""
    cmd = [str(bin_dir() / "gregorctl")] + (["-b", bootstrap] if bootstrap else []) + list(args)
    r = subprocess.run(cmd, stdin=subprocess.DEVNULL, capture_output=True, text=True,
                       timeout=timeout)
    if check:
        assert r.returncode == 0, f"gregorctl {' '.join(args)}: exit {r.returncode}\n" \
                                  f"stdout:\n{r.stdout}\nstderr:\n{r.stderr}"
    return r
