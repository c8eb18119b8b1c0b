"""One confluent_kafka group consumer in its own process, driven by the
acceptance tests (test_group_acceptance.py): a test can SIGKILL it (a crash:
no LeaveGroup, so only the session timeout frees its partitions) or SIGTERM
it (close(): a clean leave, or for a static member no leave at all).

    group_member.py BOOTSTRAP GROUP TOPIC OUT EVENTS [KEY=VALUE...]

Every message value processed is appended to OUT (one per line, flushed)
before the offsets are committed, synchronously, after each batch: so a
crash can repeat messages, never lose them.  Assignment changes are appended
to EVENTS as JSON lines: {"event": "assign"|"revoke", "partitions": [...],
"t": monotonic seconds}.  KEY=VALUE pairs are extra consumer settings.
"""

import json
import signal
import sys
import time

from confluent_kafka import Consumer, KafkaException

stop = False


def on_term(signum, frame):
    global stop
    stop = True


def main():
    bootstrap, group, topic, out_path, events_path = sys.argv[1:6]
    conf = {"bootstrap.servers": bootstrap, "group.id": group, "enable.auto.commit": False,
            "auto.offset.reset": "earliest", "session.timeout.ms": 6000,
            "heartbeat.interval.ms": 500}
    for kv in sys.argv[6:]:
        k, v = kv.split("=", 1)
        conf[k] = v
    events = open(events_path, "a")

    def log(event, parts):
        events.write(json.dumps({"event": event, "t": time.monotonic(),
                                 "partitions": sorted(p.partition for p in parts)}) + "\n")
        events.flush()

    signal.signal(signal.SIGTERM, on_term)
    c = Consumer(conf)
    c.subscribe([topic], on_assign=lambda _c, ps: log("assign", ps),
                on_revoke=lambda _c, ps: log("revoke", ps))
    with open(out_path, "a") as out:
        while not stop:
            msgs = c.consume(500, timeout=0.2)
            good = [m for m in msgs if m.error() is None]
            if not good:
                continue
            out.write("".join(m.value().decode() + "\n" for m in good))
            out.flush()
            try:
                c.commit(asynchronous=False)
            except KafkaException as e:
                # A commit refused during a rebalance: the messages come again
                # to whoever owns the partition next (a duplicate, not a loss).
                print(f"commit failed: {e}", file=sys.stderr, flush=True)
    c.close()


if __name__ == "__main__":
    main()
