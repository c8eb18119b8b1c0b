#!/usr/bin/python3
"""Captures record batches written by real clients, as test data.

Starts a minimal fake Kafka broker on 127.0.0.1 (a free port) that speaks
just enough of the protocol for a producer: ApiVersions, Metadata (one
broker, itself; one topic, "capture", with one partition it leads) and
Produce (every partition answered with success and increasing offsets).
The `records` bytes of every produced partition are appended, exactly as
received, to <out-dir>/<name>.bin, so a file holds one or more complete
record batches back to back.

Then it runs the producers:
  - kcat (librdkafka), once per codec none/gzip/snappy/lz4/zstd, twice each:
    a large run and a small run (see LARGE_LINES / SMALL_LINES below);
  - confluent_kafka (librdkafka's Python binding), one run with zstd that
    includes null values and a null header value, which kcat cannot send.
and finally checks every captured batch (magic 2, CRC-32C, codec bits) and
writes <out-dir>/README.md describing what each file holds.

Standard library only; run with Debian's /usr/bin/python3 (confluent_kafka
comes from python3-confluent-kafka and is skipped if missing).

    tests/tools/capture_batches.py [--out-dir DIR] [--kcat PATH]
"""

import argparse
import os
import socket
import socketserver
import struct
import subprocess
import sys
import threading
import zlib
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "integration"))
from gregor import crc32c  # noqa: E402

TOPIC = "capture"
NODE_ID = 1
CODECS = ["none", "gzip", "snappy", "lz4", "zstd"]
CODEC_BITS = {0: "none", 1: "gzip", 2: "snappy", 3: "lz4", 4: "zstd"}
FILLER = "lorem ipsum dolor sit amet " * 3  # repeated text so compression matters
LARGE_COUNT = 200
SMALL_COUNT = 5
CONFLUENT_COUNT = 10
CONFLUENT_CODEC = "zstd"
RUN_TIMEOUT = 60  # seconds per producer run


def large_lines():
    lines = [f"key-{i}:value-{i} {FILLER}" for i in range(LARGE_COUNT)]
    lines.append(":value-with-empty-key")
    return lines


def small_lines():
    return [f"small-{i}:tiny-{i}" for i in range(SMALL_COUNT)]


# ---- the wire ----

class Reader:
    def __init__(self, data):
        self.data = data
        self.pos = 0

    def take(self, n):
        if n < 0 or self.pos + n > len(self.data):
            raise ValueError("truncated request")
        b = self.data[self.pos:self.pos + n]
        self.pos += n
        return b

    def i8(self):
        return struct.unpack(">b", self.take(1))[0]

    def i16(self):
        return struct.unpack(">h", self.take(2))[0]

    def i32(self):
        return struct.unpack(">i", self.take(4))[0]

    def i64(self):
        return struct.unpack(">q", self.take(8))[0]

    def uvarint(self):
        shift = value = 0
        while True:
            b = self.take(1)[0]
            value |= (b & 0x7F) << shift
            if not b & 0x80:
                return value
            shift += 7
            if shift > 63:
                raise ValueError("varint too long")

    def varint(self):
        v = self.uvarint()
        return (v >> 1) ^ -(v & 1)

    def string(self):
        n = self.i16()
        return None if n < 0 else self.take(n).decode()

    def bytes_(self):
        n = self.i32()
        return None if n < 0 else self.take(n)

    def vbytes(self):
        n = self.varint()
        return None if n < 0 else self.take(n)


def i16(v):
    return struct.pack(">h", v)


def i32(v):
    return struct.pack(">i", v)


def i64(v):
    return struct.pack(">q", v)


def string(s):
    if s is None:
        return i16(-1)
    b = s.encode()
    return i16(len(b)) + b


def uvarint(v):
    out = bytearray()
    while v >= 0x80:
        out.append((v & 0x7F) | 0x80)
        v >>= 7
    out.append(v)
    return bytes(out)


def array(items):
    return i32(len(items)) + b"".join(items)


# API keys and the version ranges advertised. Only ApiVersions, Metadata and
# Produce 3-7 are served. The rest is advertised because librdkafka (2.0 at
# least) decides which codecs a broker supports from the advertised ranges:
# gzip and snappy need Produce v2 in range (as Kafka 4.0 still advertises,
# KAFKA-18659), lz4 needs FindCoordinator v0, and record batch v2 and zstd
# need Fetch v4 and v10. Without them it silently produces uncompressed.
PRODUCE, FETCH, METADATA, FIND_COORDINATOR, API_VERSIONS = 0, 1, 3, 10, 18
ADVERTISED = [(PRODUCE, 0, 7), (FETCH, 4, 11), (METADATA, 0, 4), (FIND_COORDINATOR, 0, 0),
              (API_VERSIONS, 0, 3)]
UNSUPPORTED_VERSION = 35
UNKNOWN_TOPIC_OR_PARTITION = 3


class Capture:
    """What the fake broker shares with the driver: where to write, and offsets."""

    def __init__(self):
        self.lock = threading.Lock()
        self.path = None
        self.next_offset = 0
        self.port = 0
        self.errors = []


def api_versions_response(version):
    if version >= 3:  # flexible body (the response header stays v0)
        body = i16(0) + uvarint(len(ADVERTISED) + 1)
        for key, lo, hi in ADVERTISED:
            body += i16(key) + i16(lo) + i16(hi) + uvarint(0)
        return body + i32(0) + uvarint(0)
    body = i16(0) + array([i16(k) + i16(lo) + i16(hi) for k, lo, hi in ADVERTISED])
    if version >= 1:
        body += i32(0)
    return body


def metadata_response(version, r, cap):
    n = r.i32()
    topics = None if n < 0 else [r.string() for _ in range(n)]
    if topics is None or (version == 0 and not topics):
        topics = [TOPIC]
    broker = i32(NODE_ID) + string("127.0.0.1") + i32(cap.port)
    if version >= 1:
        broker += string(None)  # rack
    body = i32(0) if version >= 3 else b""
    body += array([broker])
    if version >= 2:
        body += string("gregor-capture")  # cluster id
    if version >= 1:
        body += i32(NODE_ID)  # controller
    out = []
    for name in topics:
        if name == TOPIC:
            part = i16(0) + i32(0) + i32(NODE_ID) + array([i32(NODE_ID)]) + array([i32(NODE_ID)])
            t = i16(0) + string(name) + (b"\x00" if version >= 1 else b"") + array([part])
        else:
            t = i16(UNKNOWN_TOPIC_OR_PARTITION) + string(name)
            t += (b"\x00" if version >= 1 else b"") + array([])
        out.append(t)
    return body + array(out)


def batch_record_counts(records):
    """Record counts of the batches in a records field (header field at 57)."""
    counts = []
    pos = 0
    while pos + 61 <= len(records):
        length = struct.unpack_from(">i", records, pos + 8)[0]
        counts.append(struct.unpack_from(">i", records, pos + 57)[0])
        pos += 12 + length
    return counts


def produce_response(version, r, cap):
    r.string()  # transactional id
    acks = r.i16()
    r.i32()  # timeout
    topics = []
    for _ in range(r.i32()):
        name = r.string()
        parts = []
        for _ in range(r.i32()):
            index = r.i32()
            records = r.bytes_() or b""
            with cap.lock:
                if cap.path is None:
                    cap.errors.append("produce with no capture file set")
                else:
                    with open(cap.path, "ab") as f:
                        f.write(records)
                base = cap.next_offset
                cap.next_offset += sum(batch_record_counts(records))
            p = i32(index) + i16(0) + i64(base) + i64(-1)  # log append time: none
            if version >= 5:
                p += i64(0)  # log start offset
            parts.append(p)
        topics.append(string(name) + array(parts))
    if acks == 0:
        return None
    return array(topics) + i32(0)


class Handler(socketserver.BaseRequestHandler):
    def recv_exact(self, n):
        buf = bytearray()
        while len(buf) < n:
            chunk = self.request.recv(n - len(buf))
            if not chunk:
                return None
            buf += chunk
        return bytes(buf)

    def handle(self):
        cap = self.server.capture
        self.request.settimeout(RUN_TIMEOUT)
        try:
            while True:
                head = self.recv_exact(4)
                if head is None:
                    return
                size = struct.unpack(">i", head)[0]
                if size < 8 or size > 64 << 20:
                    cap.errors.append(f"bad frame size {size}")
                    return
                frame = self.recv_exact(size)
                if frame is None:
                    return
                r = Reader(frame)
                key, version, corr = r.i16(), r.i16(), r.i32()
                r.string()  # client id
                if key == API_VERSIONS and version >= 3:
                    r.uvarint()  # header tagged fields (none expected)
                if key == API_VERSIONS:
                    if version > 3:
                        body = i16(UNSUPPORTED_VERSION) + array(
                            [i16(k) + i16(lo) + i16(hi) for k, lo, hi in ADVERTISED])
                    else:
                        body = api_versions_response(version)
                elif key == METADATA and version <= 4:
                    body = metadata_response(version, r, cap)
                elif key == PRODUCE and 3 <= version <= 7:
                    body = produce_response(version, r, cap)
                    if body is None:
                        continue
                else:
                    cap.errors.append(f"unexpected request: api key {key} version {version}")
                    return
                resp = i32(corr) + body
                self.request.sendall(i32(len(resp)) + resp)
        except (OSError, ValueError) as e:
            cap.errors.append(f"connection error: {e}")


class Server(socketserver.ThreadingTCPServer):
    daemon_threads = True
    allow_reuse_address = True


# ---- checking what was captured ----

def parse_records(data, count):
    """Decodes count uncompressed records: (key, value, headers) each."""
    r = Reader(data)
    out = []
    for _ in range(count):
        length = r.varint()
        end = r.pos + length
        r.i8()  # attributes
        r.varint()  # timestamp delta
        r.varint()  # offset delta
        key = r.vbytes()
        value = r.vbytes()
        headers = []
        for _ in range(r.varint()):
            hk = r.vbytes()
            headers.append((hk.decode(), r.vbytes()))
        if r.pos != end:
            raise ValueError("record length mismatch")
        out.append((key, value, headers))
    if r.pos != len(data):
        raise ValueError("bytes after the last record")
    return out


def check_file(path):
    """Walks the batches of a file: [(codec, record count, size, records or None)]."""
    data = path.read_bytes()
    batches = []
    pos = 0
    while pos < len(data):
        if len(data) - pos < 61:
            raise ValueError(f"{path.name}: truncated batch at {pos}")
        length = struct.unpack_from(">i", data, pos + 8)[0]
        end = pos + 12 + length
        if data[pos + 16] != 2:
            raise ValueError(f"{path.name}: magic {data[pos + 16]} at {pos}")
        crc = struct.unpack_from(">I", data, pos + 17)[0]
        if crc32c(data[pos + 21:end]) != crc:
            raise ValueError(f"{path.name}: CRC mismatch at {pos}")
        attrs = struct.unpack_from(">h", data, pos + 21)[0]
        count = struct.unpack_from(">i", data, pos + 57)[0]
        codec = CODEC_BITS.get(attrs & 7)
        body = data[pos + 61:end]
        records = None
        if codec == "none":
            records = parse_records(body, count)
        elif codec == "gzip":
            records = parse_records(zlib.decompress(body, 16 + zlib.MAX_WBITS), count)
        batches.append((codec, count, end - pos, records))
        pos = end
    return batches


# ---- producers ----

def run_kcat(kcat, port, codec, lines):
    cmd = [kcat, "-P", "-b", f"127.0.0.1:{port}", "-t", TOPIC, "-z", codec, "-K:",
           "-H", "hk=hv", "-X", "linger.ms=100"]
    proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE)
    try:
        out, err = proc.communicate(("\n".join(lines) + "\n").encode(), timeout=RUN_TIMEOUT)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.communicate()
        raise RuntimeError(f"kcat -z {codec} timed out")
    if proc.returncode != 0:
        raise RuntimeError(f"kcat -z {codec} failed ({proc.returncode}): {err.decode()}")


CONFLUENT_SCRIPT = r"""
import sys
from confluent_kafka import Producer
port, codec, count = sys.argv[1], sys.argv[2], int(sys.argv[3])
errors = []
p = Producer({"bootstrap.servers": "127.0.0.1:" + port, "compression.type": codec,
              "linger.ms": 100})
for i in range(count):
    value = None if i % 2 else ("cv-%d " % i + "ipsum " * 10).encode()
    p.produce("capture", key=("ck-%d" % i).encode(), value=value,
              headers=[("h1", b"x"), ("hnull", None)],
              on_delivery=lambda err, msg: err and errors.append(str(err)))
left = p.flush(30)
if left or errors:
    sys.exit("undelivered: %d, errors: %s" % (left, errors))
"""


def run_confluent(port):
    """Runs the confluent_kafka producer in a child process (so that it is
    bounded by a timeout and killed by pid). False if the module is missing."""
    probe = subprocess.run([sys.executable, "-c", "import confluent_kafka"],
                           capture_output=True, timeout=RUN_TIMEOUT)
    if probe.returncode != 0:
        return False
    proc = subprocess.Popen([sys.executable, "-c", CONFLUENT_SCRIPT, str(port), CONFLUENT_CODEC,
                             str(CONFLUENT_COUNT)], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        _, err = proc.communicate(timeout=RUN_TIMEOUT)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.communicate()
        raise RuntimeError("confluent_kafka producer timed out")
    if proc.returncode != 0:
        raise RuntimeError(f"confluent_kafka producer failed: {err.decode()}")
    return True


def client_versions(kcat):
    v = subprocess.run([kcat, "-V"], capture_output=True, timeout=RUN_TIMEOUT).stdout.decode()
    kcat_line = next((ln for ln in v.splitlines() if "version" in ln.lower()), "").strip()
    return kcat_line


def write_readme(out_dir, files, kcat_version, have_confluent):
    large = large_lines()
    want = [len(large), SMALL_COUNT]
    if all([b[1] for b in batches] == want for name, batches in files
           if not name.startswith("confluent")):
        kcat_split = (f"librdkafka put each run in one batch, so each file holds 2 batches, of "
                      f"{len(large)} and {SMALL_COUNT} records.")
    else:
        kcat_split = "librdkafka split the runs into several batches: see the table."
    lines = [
        "# Record batches captured from real clients",
        "",
        "Written by `tests/tools/capture_batches.py` (run it again to regenerate; it",
        "rewrites every file here). The script runs a minimal fake Kafka broker on",
        "127.0.0.1 and points real producers at it; each `.bin` file holds the raw",
        "`records` bytes of the Produce requests it received, i.e. complete magic-2",
        "record batches back to back, exactly as the client wrote them (base offset 0,",
        "partition leader epoch -1, CRC-32C valid, CreateTime timestamps of the",
        "capture run). The script checks magic, CRC and codec bits of every batch",
        "before writing this file. Batch layout: records start at byte 61; a batch is",
        "12 + (int32 at offset 8) bytes; the codec is (int16 at offset 21) & 7.",
        "",
        f"kcat: `{kcat_version}`; `kcat -P -t capture -z <codec> -K: -H hk=hv -X linger.ms=100`",
        "",
        "## kcat files (`<codec>.bin`, codec = none, gzip, snappy, lz4, zstd)",
        "",
        "Each holds two kcat runs, in this order:",
        "",
        f"1. the large run: {len(large)} records. Record i (i = 0..{LARGE_COUNT - 1}) has key",
        "   `key-<i>` and value `value-<i> ` followed by `\"lorem ipsum dolor sit amet \" * 3`",
        "   (so the value ends in a space); then one record with an empty",
        "   key (length 0, not null) and value `value-with-empty-key`.",
        f"2. the small run: {SMALL_COUNT} records, key `small-<i>`, value `tiny-<i>` (i = 0..{SMALL_COUNT - 1}).",
        "",
        "Every record has exactly one header, `hk` = `hv`. Values are never null.",
        kcat_split,
        "librdkafka writes raw snappy (not the xerial framing), LZ4 frames and zstd",
        "frames.",
        "",
    ]
    if have_confluent:
        lines += [
            f"## confluent_kafka file (`confluent-{CONFLUENT_CODEC}.bin`)",
            "",
            f"One producer run with compression.type={CONFLUENT_CODEC}: {CONFLUENT_COUNT} records,",
            f"key `ck-<i>` (i = 0..{CONFLUENT_COUNT - 1}); for even i the value is",
            "`cv-<i> ` followed by `\"ipsum \" * 10`, for odd i the value is null (a",
            "tombstone). Every record has two headers: `h1` = `x` and `hnull` with a null",
            "value.",
            "",
        ]
    lines += [
        "## What was captured",
        "",
        "| file | codec | batches | records per batch | records | bytes |",
        "|---|---|---|---|---|---|",
    ]
    for name, batches in files:
        codecs = sorted({b[0] for b in batches})
        counts = ", ".join(str(b[1]) for b in batches)
        size = sum(b[2] for b in batches)
        lines.append(f"| {name} | {'/'.join(codecs)} | {len(batches)} | {counts} | "
                     f"{sum(b[1] for b in batches)} | {size} |")
    lines.append("")
    (out_dir / "README.md").write_text("\n".join(lines))


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    here = Path(__file__).resolve().parent
    ap.add_argument("--out-dir", type=Path, default=here.parent / "data" / "batches")
    ap.add_argument("--kcat", default="kcat")
    args = ap.parse_args()
    out_dir = args.out_dir
    out_dir.mkdir(parents=True, exist_ok=True)

    cap = Capture()
    server = Server(("127.0.0.1", 0), Handler)
    server.capture = cap
    cap.port = server.server_address[1]
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()

    def capture_into(name, produce):
        path = out_dir / f"{name}.bin"
        if path.exists():
            path.unlink()
        with cap.lock:
            cap.path = path
            cap.next_offset = 0
        produce()
        with cap.lock:
            cap.path = None
        if cap.errors:
            raise RuntimeError("fake broker: " + "; ".join(cap.errors))
        if not path.exists():
            raise RuntimeError(f"nothing captured for {name}")
        return path

    files = []
    have_confluent = False
    try:
        for codec in CODECS:
            def produce(codec=codec):
                run_kcat(args.kcat, cap.port, codec, large_lines())
                run_kcat(args.kcat, cap.port, codec, small_lines())
            path = capture_into(codec, produce)
            batches = check_file(path)
            if any(b[0] != codec for b in batches):
                raise RuntimeError(f"{path.name}: codec bits are not {codec}")
            files.append((path.name, batches))

        confluent_path = out_dir / f"confluent-{CONFLUENT_CODEC}.bin"
        result = []

        def produce_confluent():
            result.append(run_confluent(cap.port))
            if not result[0]:
                confluent_path.write_bytes(b"")  # placeholder, removed below

        capture_into(f"confluent-{CONFLUENT_CODEC}", produce_confluent)
        have_confluent = result[0]
        if have_confluent:
            files.append((confluent_path.name, check_file(confluent_path)))
        else:
            confluent_path.unlink()
            print("confluent_kafka not importable: skipped its capture", file=sys.stderr)
    finally:
        server.shutdown()
        server.server_close()

    # The uncompressed and gzip files can be decoded here; check their content.
    want = [tuple(line.split(":", 1)) for line in large_lines() + small_lines()]
    for name, batches in files:
        if not name.startswith(("none", "gzip")):
            continue
        records = [rec for b in batches for rec in b[3]]
        got = [(k.decode(), v.decode()) for k, v, _ in records]
        if got != want or any(h != [("hk", b"hv")] for _, _, h in records):
            raise RuntimeError(f"{name}: the batches do not hold the expected records")

    write_readme(out_dir, files, client_versions(args.kcat), have_confluent)
    for name, batches in files:
        print(f"{name}: {len(batches)} batches, {sum(b[1] for b in batches)} records, "
              f"{sum(b[2] for b in batches)} bytes")
    return 0


if __name__ == "__main__":
    sys.exit(main())
