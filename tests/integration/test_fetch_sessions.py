"""Incremental fetch sessions (KIP-227) over the raw protocol: a full fetch
with epoch 0 opens a session, incremental fetches answer only what changed,
forgotten partitions stop appearing, a wrong epoch or an unknown session is
refused with Kafka's errors, sessions close, the cache bound evicts, and a
long poll on an incremental session wakes on an append.
"""

import time

from confluent_kafka import Producer

import gregor
from gregor import (ERR_FETCH_SESSION_ID_NOT_FOUND, ERR_FETCH_SESSION_TOPIC_ID_ERROR,
                    ERR_INVALID_FETCH_SESSION_EPOCH, ERR_NONE, ERR_UNKNOWN_TOPIC_ID)

BIG = 1 << 20


def produce(cluster, topic, partition, value=b"v"):
    p = Producer({"bootstrap.servers": cluster.bootstrap, "linger.ms": 0})
    p.produce(topic, value=value, partition=partition)
    assert p.flush(10) == 0


def topic_id(cluster, name):
    md = cluster.metadata(cluster.brokers[0], topics=[name])
    return [t for t in md["topics"] if t["name"] == name][0]["topic_id"]


def summary(resp):
    """(topic, partition, high watermark, has records) of each partition."""
    return [(p["topic"], p["partition"], p["high_watermark"], bool(p["records"]))
            for p in resp["partitions"]]


def test_session_by_name(single):
    topic = "sess"
    single.create_topic(topic, partitions=3)
    produce(single, topic, 0)
    b = single.brokers[0]
    v = 12
    with gregor.KafkaConnection(b.host, b.port) as c:
        full = c.fetch(v, [(topic, [(0, 0, BIG), (1, 0, BIG), (2, 0, BIG)])], session_epoch=0)
        assert full["error_code"] == ERR_NONE
        sid = full["session_id"]
        assert sid > 0
        assert summary(full) == [(topic, 0, 1, True), (topic, 1, 0, False), (topic, 2, 0, False)]

        # p0 read up to 1: nothing has changed since the last answer.
        r = c.fetch(v, [(topic, [(0, 1, BIG)])], session_id=sid, session_epoch=1)
        assert (r["error_code"], r["session_id"], r["partitions"]) == (ERR_NONE, sid, [])

        # Only the partition that got a record is answered.
        produce(single, topic, 2)
        r = c.fetch(v, [], session_id=sid, session_epoch=2)
        assert r["session_id"] == sid
        assert summary(r) == [(topic, 2, 1, True)]

        # p1 forgotten: its new record does not show; p0's does.
        r = c.fetch(v, [(topic, [(2, 1, BIG)])], session_id=sid, session_epoch=3,
                    forgotten=[(topic, [1])])
        assert r["partitions"] == []
        produce(single, topic, 1)
        produce(single, topic, 0)
        r = c.fetch(v, [], session_id=sid, session_epoch=4)
        assert summary(r) == [(topic, 0, 2, True)]

        # A replayed epoch is refused, and costs the session nothing.
        r = c.fetch(v, [], session_id=sid, session_epoch=4)
        assert (r["error_code"], r["session_id"], r["partitions"]) == \
            (ERR_INVALID_FETCH_SESSION_EPOCH, 0, [])
        r = c.fetch(v, [(topic, [(0, 2, BIG)])], session_id=sid, session_epoch=5)
        assert (r["error_code"], r["partitions"]) == (ERR_NONE, [])

        # An id nobody was given.
        r = c.fetch(v, [], session_id=sid ^ 0x5a5a, session_epoch=1)
        assert (r["error_code"], r["session_id"]) == (ERR_FETCH_SESSION_ID_NOT_FOUND, 0)

        # Epoch -1 closes the session and is answered as a full fetch.
        r = c.fetch(v, [(topic, [(0, 0, BIG)])], session_id=sid, session_epoch=-1)
        assert (r["error_code"], r["session_id"]) == (ERR_NONE, 0)
        assert summary(r) == [(topic, 0, 2, True)]
        r = c.fetch(v, [], session_id=sid, session_epoch=6)
        assert r["error_code"] == ERR_FETCH_SESSION_ID_NOT_FOUND

        # Epoch 0 on a session closes it and opens a new one.
        first = c.fetch(v, [(topic, [(1, 1, BIG)])], session_epoch=0)["session_id"]
        assert first > 0
        r = c.fetch(v, [(topic, [(1, 1, BIG)])], session_id=first, session_epoch=0)
        second = r["session_id"]
        assert second > 0 and second != first
        assert summary(r) == [(topic, 1, 1, False)]
        assert c.fetch(v, [], session_id=first, session_epoch=1)["error_code"] == \
            ERR_FETCH_SESSION_ID_NOT_FOUND
        assert c.fetch(v, [], session_id=second, session_epoch=1)["error_code"] == ERR_NONE

    # A session is not tied to a connection: it goes on from another one.
    with gregor.KafkaConnection(b.host, b.port) as c:
        produce(single, topic, 1)
        r = c.fetch(v, [], session_id=second, session_epoch=2)
        assert summary(r) == [(topic, 1, 2, True)]
        # The same from v7, the first version with sessions (not flexible).
        r = c.fetch(7, [(topic, [(1, 0, BIG)])], session_epoch=0)
        old = r["session_id"]
        assert old > 0 and summary(r) == [(topic, 1, 2, True)]
        r = c.fetch(7, [(topic, [(1, 2, BIG)])], session_id=old, session_epoch=1)
        assert (r["error_code"], r["session_id"], r["partitions"]) == (ERR_NONE, old, [])


def test_session_by_topic_id(single):
    topic = "byid"
    single.create_topic(topic, partitions=2)
    tid = topic_id(single, topic)
    unknown = bytes(range(1, 17))
    produce(single, topic, 1)
    b = single.brokers[0]
    v = 16
    with gregor.KafkaConnection(b.host, b.port) as c:
        full = c.fetch(v, [(tid, [(0, 0, BIG), (1, 0, BIG)])], session_epoch=0)
        sid = full["session_id"]
        assert sid > 0
        assert summary(full) == [(tid, 0, 0, False), (tid, 1, 1, True)]
        # An unknown topic id joins the session and is answered with its error.
        r = c.fetch(v, [(tid, [(1, 1, BIG)]), (unknown, [(0, 0, BIG)])], session_id=sid,
                    session_epoch=1)
        assert r["error_code"] == ERR_NONE
        assert [(p["topic"], p["partition"], p["error_code"]) for p in r["partitions"]] == \
            [(unknown, 0, ERR_UNKNOWN_TOPIC_ID)]
        # A session by id cannot be continued by name, nor a consumer's by
        # a follower (replica id in v15+'s ReplicaState).
        r = c.fetch(12, [], session_id=sid, session_epoch=2)
        assert r["error_code"] == ERR_FETCH_SESSION_TOPIC_ID_ERROR
        r = c.fetch(v, [], session_id=sid, session_epoch=2, replica_id=7)
        assert r["error_code"] == ERR_FETCH_SESSION_ID_NOT_FOUND
        # Forgotten by id, the unknown topic is no longer answered.
        r = c.fetch(v, [], session_id=sid, session_epoch=2, forgotten=[(unknown, [0])])
        assert (r["error_code"], r["partitions"]) == (ERR_NONE, [])
        produce(single, topic, 0)
        r = c.fetch(v, [], session_id=sid, session_epoch=3)
        assert summary(r) == [(tid, 0, 1, True)]
        # Forgetting every partition ends the session.
        r = c.fetch(v, [], session_id=sid, session_epoch=4, forgotten=[(tid, [0, 1])])
        assert (r["error_code"], r["session_id"], r["partitions"]) == (ERR_NONE, 0, [])
        assert c.fetch(v, [], session_id=sid, session_epoch=5)["error_code"] == \
            ERR_FETCH_SESSION_ID_NOT_FOUND


def test_cache_bound_evicts(cluster):
    cluster.start(controllers=1, brokers=1,
                  broker_config={"max.incremental.fetch.session.cache.slots": "2",
                                 "min.incremental.fetch.session.eviction.ms": "1000"})
    topic = "bound"
    cluster.create_topic(topic)
    b = cluster.brokers[0]
    v = 12
    want = [(topic, [(0, 0, BIG)])]
    with gregor.KafkaConnection(b.host, b.port) as c:
        a = c.fetch(v, want, session_epoch=0)["session_id"]
        bb = c.fetch(v, want, session_epoch=0)["session_id"]
        assert a > 0 and bb > 0 and a != bb
        # Full, and neither session idle long enough: answered without one.
        r = c.fetch(v, want, session_epoch=0)
        assert (r["error_code"], r["session_id"]) == (ERR_NONE, 0)
        assert summary(r) == [(topic, 0, 0, False)]
        time.sleep(1.2)
        assert c.fetch(v, [], session_id=bb, session_epoch=1)["error_code"] == ERR_NONE
        # a has been idle past the eviction time: it makes room.
        new = c.fetch(v, want, session_epoch=0)["session_id"]
        assert new > 0 and new not in (a, bb)
        assert c.fetch(v, [], session_id=a, session_epoch=1)["error_code"] == \
            ERR_FETCH_SESSION_ID_NOT_FOUND
        assert c.fetch(v, [], session_id=bb, session_epoch=2)["error_code"] == ERR_NONE
        assert c.fetch(v, [], session_id=new, session_epoch=1)["error_code"] == ERR_NONE


def test_long_poll_on_incremental_session(single):
    """The long poll watches the session's partitions as the request leaves
    them: here one it adds."""
    topic = "lp"
    single.create_topic(topic, partitions=2)
    b = single.brokers[0]
    v = 12
    with gregor.KafkaConnection(b.host, b.port, timeout=10.0) as c:
        sid = c.fetch(v, [(topic, [(0, 0, BIG)])], session_epoch=0)["session_id"]
        assert sid > 0
        started = time.monotonic()
        c.send(gregor.fetch_request(v, 7, [(topic, [(1, 0, BIG)])], session_id=sid,
                                    session_epoch=1, max_wait_ms=5000, min_bytes=1))
        time.sleep(0.3)
        produce(single, topic, 1)
        r = gregor.parse_fetch_response(c.recv_frame(), v)
        elapsed = time.monotonic() - started
        assert r["correlation_id"] == 7 and r["session_id"] == sid
        assert summary(r) == [(topic, 1, 1, True)]
        assert 0.25 <= elapsed < 3.0, elapsed
        # Nothing new: the poll runs to its deadline and says nothing.
        started = time.monotonic()
        r = c.fetch(v, [(topic, [(1, 1, BIG)])], session_id=sid, session_epoch=2,
                    max_wait_ms=400, min_bytes=1)
        elapsed = time.monotonic() - started
        assert (r["error_code"], r["partitions"]) == (ERR_NONE, [])
        assert elapsed >= 0.35, elapsed
        # The wait applied the request once: the epoch moved by one.
        assert c.fetch(v, [], session_id=sid, session_epoch=3)["error_code"] == ERR_NONE
