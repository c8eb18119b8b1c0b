"""gregor-perf, the load generator: it produces and consumes against a real
cluster and reports figures; a wrong topic is an error with Kafka's name."""

import os
import re
import subprocess

import gregor


def perf(*args, timeout=60):
    exe = os.path.join(gregor.bin_dir(), "gregor-perf")
    return subprocess.run([exe, *args], capture_output=True, text=True, timeout=timeout)


def test_produce_then_consume_everything(shared):
    b = shared.bootstrap
    p = perf("produce", "-b", b, "-t", "perf", "--create", "-p", "3", "-n", "20000",
             "-s", "100", "--acks", "-1", "-z", "zstd")
    assert p.returncode == 0, p.stderr
    m = re.search(r"produce: (\d+) msgs, .* msgs/s, .* MB/s, latency ms p50 [\d.]+ p99 [\d.]+ "
                  r"p99.9 [\d.]+ max [\d.]+", p.stdout)
    assert m and int(m.group(1)) == 20000, p.stdout
    c = perf("consume", "-b", b, "-t", "perf", "--from-beginning", "-n", "20000")
    assert c.returncode == 0, c.stderr
    m = re.search(r"consume: (\d+) msgs", c.stdout)
    assert m and int(m.group(1)) == 20000, c.stdout


def test_unknown_topic_is_an_error(shared):
    p = perf("consume", "-b", shared.bootstrap, "-t", "nosuch", "-n", "1", timeout=30)
    assert p.returncode != 0
    assert "UNKNOWN_TOPIC_OR_PARTITION" in p.stderr + p.stdout


def test_acks_zero_fire_and_forget(shared):
    """acks=0: nothing is acknowledged, so the count comes from what the
    broker kept: consume it back, and nothing more is there."""
    b = shared.bootstrap
    n = 50000
    p = perf("produce", "-b", b, "-t", "fire", "--create", "-p", "2", "-n", str(n),
             "-s", "50", "--acks", "0", "-z", "lz4")
    assert p.returncode == 0, p.stderr
    m = re.search(r"produce: (\d+) msgs, [\d.]+ s, (\d+) msgs/s, [\d.]+ MB/s, "
                  r"latency ms p50 n/a p99 n/a p99.9 n/a max n/a", p.stdout)
    assert m and int(m.group(1)) == n and int(m.group(2)) > 0, p.stdout
    c = perf("consume", "-b", b, "-t", "fire", "--from-beginning")
    assert c.returncode == 0, c.stderr
    m = re.search(r"consume: (\d+) msgs", c.stdout)
    assert m and int(m.group(1)) == n, c.stdout


def test_acks_zero_failure_is_an_error(shared):
    """A broker closes an acks=0 connection when it cannot append; the tool
    must say so rather than report success."""
    b = shared.bootstrap
    p = perf("produce", "-b", b, "-t", "big", "--create", "-n", "3", "-s", str(2 * 1024 * 1024),
             "--acks", "0")
    assert p.returncode != 0, p.stdout
    assert "closed the acks=0 connection" in p.stderr, p.stderr
