"""Bad input closes only the offending connection; many connections at once
are all served."""

import selectors
import socket
import struct
import subprocess
import time

import pytest

import gregor
from gregor import API_METADATA, ERR_NONE

MAX_REQUEST_BYTES = 1048576


def metadata_v1_with_huge_topic_count():
    """A well-framed Metadata v1 request whose topic array claims 2^31-1
    entries, followed by only a couple of real ones."""
    body = struct.pack(">i", 2147483647) + struct.pack(">h", 1) + b"a" + struct.pack(">h", 1) + b"b"
    return gregor.encode_request(API_METADATA, 1, 11, body)


BAD_FRAMES = {
    "negative size": struct.pack(">i", -5),
    "size over socket.request.max.bytes": struct.pack(">i", MAX_REQUEST_BYTES + 1),
    "truncated header": struct.pack(">i", 3) + b"\x00\x12\x00",
    "huge metadata topic count": metadata_v1_with_huge_topic_count(),
    "unknown api key": gregor.encode_request(9999, 0, 12, b""),
}


def test_bad_frames_close_only_their_connection(cluster):
    broker = cluster.broker(overrides={"socket.request.max.bytes": str(MAX_REQUEST_BYTES)})

    # A healthy connection opened before the bad ones must survive them.
    healthy = broker.connect()
    assert healthy.api_versions(version=3)["error_code"] == ERR_NONE

    bad = {}
    try:
        for name, data in BAD_FRAMES.items():
            c = broker.connect()
            bad[name] = c
            c.send(data)

        # A real client works while the bad connections are being dealt with.
        kcat = subprocess.Popen(["kcat", "-b", broker.bootstrap, "-L", "-m", "5"],
                                stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True)
        try:
            problems = []
            for name, c in bad.items():
                closed, data = c.wait_closed(timeout=5)
                if not closed:
                    problems.append(f"{name}: connection still open after 5 s"
                                    + (f" (received {data[:64].hex()})" if data else ""))
                elif data:
                    problems.append(f"{name}: got {len(data)} bytes before the close: "
                                    f"{data[:64].hex()}")
            out, err = kcat.communicate(timeout=20)
        finally:
            if kcat.poll() is None:
                kcat.kill()
                kcat.wait()
    finally:
        for c in bad.values():
            c.close()

    assert not problems, "\n".join(problems)
    assert kcat.returncode == 0, f"kcat -L during the bad frames failed:\n{out}\n{err}"
    assert f"broker {broker.node_id} at 127.0.0.1:{broker.port}" in out, out

    assert broker.alive()
    with healthy:
        assert healthy.api_versions(version=0)["error_code"] == ERR_NONE
    with broker.connect() as c:
        assert c.api_versions(version=4)["error_code"] == ERR_NONE
        assert c.metadata(version=12)["brokers"][0]["node_id"] == broker.node_id


def test_request_of_exactly_the_size_limit_is_served(cluster):
    """socket.request.max.bytes is the largest frame allowed, not the first
    one refused: a valid Metadata v1 request of exactly that size, naming a
    few thousand (unknown) topics, gets a full answer."""
    broker = cluster.broker(overrides={"socket.request.max.bytes": str(MAX_REQUEST_BYTES),
                                       "auto.create.topics.enable": "false"})
    header = gregor.request_header(API_METADATA, 1, 31)
    room = MAX_REQUEST_BYTES - len(header) - 4   # after the topic count
    # Each entry costs 2 + len(name).  Full 200-char names, then the rest
    # split over two names (each 99..200 chars, well within Kafka's 249).
    lengths = []
    while room >= 2 * 202:
        lengths.append(200)
        room -= 202
    rest = room - 4
    lengths += [rest // 2, rest - rest // 2]
    room -= sum(2 + n for n in lengths[-2:])
    names = [f"t{i:06d}-".ljust(n, "x") for i, n in enumerate(lengths)]
    assert room == 0
    body = gregor.Writer().int32(len(names))
    for name in names:
        body.string(name)
    request = gregor.frame(header + body.bytes())
    assert len(request) == 4 + MAX_REQUEST_BYTES

    with broker.connect(timeout=15) as c:
        c.send(request)
        md = gregor.parse_metadata_response(c.recv_frame(timeout=15), 1)
    assert md["correlation_id"] == 31
    got = {t["name"]: t["error_code"] for t in md["topics"]}
    assert got == {n: gregor.ERR_UNKNOWN_TOPIC_OR_PARTITION for n in names}
    assert broker.alive()


N_CONNECTIONS = 1000


def test_thousand_concurrent_connections(cluster):
    soft, hard = gregor.raise_nofile_limit()
    if hard < 2100:
        pytest.skip(f"open-files hard limit {hard} is below the 2100 this test needs")
    broker = cluster.broker()
    with broker.connect() as c:
        reference = c.api_versions(version=3)["apis"]

    socks = []
    sel = selectors.DefaultSelector()
    try:
        # Open them all first...
        deadline = time.monotonic() + 30
        for i in range(N_CONNECTIONS):
            s = socket.create_connection((broker.host, broker.port),
                                         timeout=max(0.1, deadline - time.monotonic()))
            s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            socks.append(s)
        # ...then send on all of them...
        for i, s in enumerate(socks):
            s.sendall(gregor.api_versions_request(3, 500000 + i, client_id=f"conn-{i}"))
        # ...then read every answer.
        bufs = {}
        for i, s in enumerate(socks):
            s.setblocking(False)
            sel.register(s, selectors.EVENT_READ, i)
            bufs[i] = bytearray()
        done = {}
        closed = []
        deadline = time.monotonic() + 30
        while len(done) + len(closed) < N_CONNECTIONS and time.monotonic() < deadline:
            for key, _ in sel.select(timeout=max(0.0, deadline - time.monotonic())):
                i = key.data
                try:
                    chunk = key.fileobj.recv(65536)
                except (BlockingIOError, InterruptedError):
                    continue
                except ConnectionResetError:
                    chunk = b""
                if not chunk:
                    closed.append(i)
                    sel.unregister(key.fileobj)
                    continue
                bufs[i] += chunk
                if len(bufs[i]) >= 4:
                    (size,) = struct.unpack(">i", bufs[i][:4])
                    if len(bufs[i]) >= 4 + size:
                        done[i] = bytes(bufs[i])
                        sel.unregister(key.fileobj)
    finally:
        sel.close()
        for s in socks:
            s.close()

    problems = []
    if closed:
        problems.append(f"{len(closed)} connections closed by the broker, e.g. {closed[:10]}")
    missing = [i for i in range(N_CONNECTIONS) if i not in done and i not in closed]
    if missing:
        problems.append(f"{len(missing)} connections unanswered after 30 s, e.g. {missing[:10]}")
    for i, data in sorted(done.items()):
        (size,) = struct.unpack(">i", data[:4])
        if len(data) != 4 + size:
            problems.append(f"conn {i}: {len(data) - 4 - size} bytes after the response")
            continue
        try:
            resp = gregor.parse_api_versions_response(data[4:], 3)
        except gregor.ProtocolError as e:
            problems.append(f"conn {i}: {e}")
            continue
        if resp["correlation_id"] != 500000 + i:
            problems.append(f"conn {i}: correlation id {resp['correlation_id']}")
        if resp["error_code"] != ERR_NONE:
            problems.append(f"conn {i}: error {resp['error_code']}")
        if resp["apis"] != reference:
            problems.append(f"conn {i}: api list {resp['apis']}")
    assert not problems, f"{len(problems)} problems:\n" + "\n".join(problems[:20])
    assert len(done) == N_CONNECTIONS

    assert broker.alive()
    with broker.connect() as c:
        assert c.api_versions(version=3)["error_code"] == ERR_NONE
