"""The reader of __consumer_offsets records in gregor.py, which acceptance
tests use to check what the group coordinator writes on disk.

The decoder is checked against bytes written out by hand from Kafka's
schemas (the same golden records as the C unit suite offsets_log, plus the
flexible v4 values no one writes yet), and refuses what is out of place.
Then the whole path a test uses, raw Fetch and record batch parsing, runs
against a broker: records with those keys and values, produced into an
ordinary topic uncompressed and gzip-compressed, come back decoded.
"""

import pytest
from confluent_kafka import Producer

import gregor

T0 = 1_700_000_000_000
T0_HEX = "0000018bcfe56800"

OFFSET_KEY = bytes.fromhex("0001" "000167" "000174" "00000005")
OFFSET_VALUE_V3 = bytes.fromhex("0003" "000000000000002a" "00000007" "00016d" + T0_HEX)
OFFSET_VALUE_V1 = bytes.fromhex("0001" "000000000000002a" "0000" + T0_HEX + "0000018bcfe56900")
# v4, the first flexible version: compact metadata, a tag section (one
# unknown tag, which must be skipped).
OFFSET_VALUE_V4 = bytes.fromhex("0004" "000000000000002a" "00000007" "026d" + T0_HEX
                                + "01" "05" "02" "abcd")
GROUP_KEY = bytes.fromhex("0002" "000167")
GROUP_VALUE_V3 = bytes.fromhex(
    "0003" "0008" + b"consumer".hex() + "00000004" "0005" + b"range".hex() + "00026d31" + T0_HEX
    + "00000002"
    + "00026d31" "00026931" "000163" "00022f68" "000493e0" "0000afc8" "000000020102" "00000000"
    + "00026d32" "ffff" "000163" "00022f68" "000493e0" "0000afc8" "0000000103" "000000020405")
GROUP_VALUE_V4 = bytes.fromhex(
    "0004" "09" + b"consumer".hex() + "00000004" "06" + b"range".hex() + "036d31" + T0_HEX
    + "02"
    + "036d31" "00" "0263" "032f68" "000493e0" "0000afc8" "030102" "01" "00"
    + "00")

MEMBERS = [
    {"member_id": "m1", "group_instance_id": "i1", "client_id": "c", "client_host": "/h",
     "rebalance_timeout": 300000, "session_timeout": 45000, "subscription": b"\x01\x02",
     "assignment": b""},
    {"member_id": "m2", "group_instance_id": None, "client_id": "c", "client_host": "/h",
     "rebalance_timeout": 300000, "session_timeout": 45000, "subscription": b"\x03",
     "assignment": b"\x04\x05"},
]


def expected_offset(value_version, leader_epoch=7, metadata="m", expire=-1):
    return {"type": "offset", "key_version": 1, "group": "g", "topic": "t", "partition": 5,
            "tombstone": False, "value_version": value_version, "offset": 42,
            "leader_epoch": leader_epoch, "metadata": metadata, "commit_timestamp": T0,
            "expire_timestamp": expire}


def expected_group(value_version, members):
    return {"type": "group", "key_version": 2, "group": "g", "tombstone": False,
            "value_version": value_version, "protocol_type": "consumer", "generation": 4,
            "protocol": "range", "leader": "m1", "current_state_timestamp": T0,
            "members": members}


def test_decodes_golden_records():
    d = gregor.decode_consumer_offsets_record
    assert d(OFFSET_KEY, OFFSET_VALUE_V3) == expected_offset(3)
    assert d(OFFSET_KEY, OFFSET_VALUE_V1) == expected_offset(1, leader_epoch=-1, metadata="",
                                                             expire=T0 + 256)
    assert d(OFFSET_KEY, OFFSET_VALUE_V4) == expected_offset(4)
    assert d(GROUP_KEY, GROUP_VALUE_V3) == expected_group(3, MEMBERS)
    m1 = dict(MEMBERS[0], group_instance_id=None)
    assert d(GROUP_KEY, GROUP_VALUE_V4) == expected_group(4, [m1])
    assert d(OFFSET_KEY, None) == {"type": "offset", "key_version": 1, "group": "g",
                                   "topic": "t", "partition": 5, "tombstone": True}
    assert d(GROUP_KEY, None) == {"type": "group", "key_version": 2, "group": "g",
                                  "tombstone": True}
    # Key version 0 is the older spelling of the same key.
    assert d(b"\x00\x00" + OFFSET_KEY[2:], None)["type"] == "offset"
    # The consumer protocol's records are of another kind.
    assert d(bytes.fromhex("0003000167"), b"\x00\x00") == {"type": "other", "key_version": 3}


@pytest.mark.parametrize("key,value", [
    (None, OFFSET_VALUE_V3),                       # no key
    (OFFSET_KEY + b"\x00", None),                  # a byte after the key
    (OFFSET_KEY[:-1], None),                       # a key cut short
    (OFFSET_KEY, OFFSET_VALUE_V3 + b"\x00"),       # a byte after the value
    (OFFSET_KEY, OFFSET_VALUE_V3[:-1]),            # a value cut short
    (OFFSET_KEY, b"\x00\x05" + OFFSET_VALUE_V3[2:]),  # an unknown value version
    (GROUP_KEY, OFFSET_VALUE_V3),                  # an offset value under a group key
    (GROUP_KEY, GROUP_VALUE_V3[:35] + b"\x7f\xff\xff\xff"),  # a member count that cannot fit
])
def test_refuses_bytes_out_of_place(key, value):
    with pytest.raises(gregor.ProtocolError):
        gregor.decode_consumer_offsets_record(key, value)


def test_reads_records_back_through_fetch(single):
    topic = "offsets-format"
    single.create_topic(topic)
    records = [(OFFSET_KEY, OFFSET_VALUE_V3), (GROUP_KEY, GROUP_VALUE_V3), (OFFSET_KEY, None),
               (GROUP_KEY, None)]
    for codec in ("none", "gzip"):
        p = Producer({"bootstrap.servers": single.bootstrap, "compression.type": codec,
                      "linger.ms": 50})
        for k, v in records:
            p.produce(topic, key=k, value=v, partition=0, timestamp=T0)
        assert p.flush(10) == 0

    got = gregor.consumer_offsets_records(single.brokers[0], 0, topic=topic)
    want = [expected_offset(3), expected_group(3, MEMBERS),
            gregor.decode_consumer_offsets_record(OFFSET_KEY, None),
            gregor.decode_consumer_offsets_record(GROUP_KEY, None)] * 2
    assert [g["log_offset"] for g in got] == list(range(8))
    assert [g["log_timestamp"] for g in got] == [T0] * 8
    for g, w in zip(got, want):
        g = {k: v for k, v in g.items() if k not in ("log_offset", "log_timestamp", "batch")}
        assert g == w
    codecs = {g["batch"]["attributes"] & 7 for g in got}
    assert codecs == {0, 1}, f"expected uncompressed and gzip batches, got codecs {codecs}"
