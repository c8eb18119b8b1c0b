#!/bin/sh
# data_bench.sh - produce and consume throughput of the data path, beside the
# two baselines that bound it, all measured in this run on this machine:
#
#   disk      raw sequential write rate (dd, 1 GiB, fdatasync at the end)
#   loopback  TCP bandwidth over 127.0.0.1 (1 GiB, one Python stdlib stream)
#
# It starts one controller and one broker on free loopback ports with their
# data in a fresh directory under build/ (a real disk, not tmpfs), runs
# gregor-perf produce (DATA_BENCH_SECONDS each, flat out) and then consume
# (everything from the beginning) for 100 B and 1 KiB records, 1 and 6
# partitions, acks=0, acks=1 and acks=all, prints one table, and stops the servers
# by pid. Produce MB/s is set against the disk rate, consume MB/s against
# the loopback rate.
#
# Environment: BIN (server binaries, default bin), GREGOR_PERF (the load
# generator, default $BIN/gregor-perf), DATA_BENCH_SECONDS (default 5),
# PYTHON (default /usr/bin/python3).
set -eu
cd "$(dirname "$0")/../.."
BIN=${BIN:-bin}
PERF=${GREGOR_PERF:-$BIN/gregor-perf}
SECS=${DATA_BENCH_SECONDS:-5}
PY=${PYTHON:-/usr/bin/python3}
for f in "$BIN/gregor-controller" "$BIN/gregor-broker" "$PERF"; do
    [ -x "$f" ] || { echo "data_bench: $f is missing (run make first)" >&2; exit 1; }
done

mkdir -p build
DIR=$(mktemp -d "$(pwd)/build/data-bench.XXXXXX")
controller=
broker=
cleanup() {
    for pid in $broker $controller; do
        kill -TERM "$pid" 2>/dev/null || true
        wait "$pid" 2>/dev/null || true
    done
    rm -rf "$DIR"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

free_port() {
    "$PY" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

# ---- baselines ----
echo "data_bench: measuring the disk ($DIR) and loopback baselines" >&2
disk_line=$(dd if=/dev/zero of="$DIR/dd.bin" bs=1M count=1024 conv=fdatasync 2>&1 | tail -n 1)
rm -f "$DIR/dd.bin"
# "1073741824 bytes (1.1 GB, 1.0 GiB) copied, 2.5 s, 429 MB/s": bytes / seconds.
disk_mbs=$(echo "$disk_line" | awk '{for (i = 1; i <= NF; i++) if ($i == "copied,") s = $(i + 1);
                                     printf "%.1f", $1 / s / 1048576}')

loop_mbs=$("$PY" - <<'EOF'
import socket, threading, time
TOTAL = 1 << 30
CHUNK = 1 << 20
srv = socket.socket()
srv.bind(("127.0.0.1", 0))
srv.listen(1)
def send():
    c = socket.create_connection(srv.getsockname())
    buf = b"\0" * CHUNK
    left = TOTAL
    while left:
        c.sendall(buf)
        left -= CHUNK
    c.close()
t = threading.Thread(target=send)
start = time.monotonic()
t.start()
conn, _ = srv.accept()
buf = bytearray(CHUNK)
got = 0
while True:
    n = conn.recv_into(buf)
    if not n:
        break
    got += n
secs = time.monotonic() - start
t.join()
assert got == TOTAL, got
print("%.1f" % (got / secs / 1048576))
EOF
)

# ---- the cluster ----
cport=$(free_port)
bport=$(free_port)
while [ "$bport" = "$cport" ]; do bport=$(free_port); done
cat >"$DIR/controller.properties" <<EOF
node.id=1
process.roles=controller
listeners=CONTROLLER://127.0.0.1:$cport
controller.listener.names=CONTROLLER
controller.quorum.voters=1@127.0.0.1:$cport
log.dirs=$DIR/controller-1
log.level=warn
EOF
cat >"$DIR/broker.properties" <<EOF
node.id=2
process.roles=broker
listeners=PLAINTEXT://127.0.0.1:$bport
controller.listener.names=CONTROLLER
controller.quorum.voters=1@127.0.0.1:$cport
log.dirs=$DIR/broker-2
log.level=warn
EOF
"$BIN/gregor-controller" --config "$DIR/controller.properties" >"$DIR/controller.log" 2>&1 &
controller=$!
"$BIN/gregor-broker" --config "$DIR/broker.properties" >"$DIR/broker.log" 2>&1 &
broker=$!
B=127.0.0.1:$bport

# Ready when a topic can be created and written to (also warms up).
tries=0
until "$PERF" produce -b "$B" -t warmup --create -p 1 -n 10000 >/dev/null 2>"$DIR/warmup.err"; do
    tries=$((tries + 1))
    if [ "$tries" -ge 40 ] || ! kill -0 "$broker" 2>/dev/null || ! kill -0 "$controller" 2>/dev/null; then
        echo "data_bench: the cluster did not come up" >&2
        cat "$DIR/warmup.err" "$DIR/controller.log" "$DIR/broker.log" >&2
        exit 1
    fi
    sleep 0.5
done

# ---- the matrix ----
field() { # field NAME LINE: the number before NAME (commas dropped)
    echo "$2" | tr -d , | awk -v k="$1" '{for (i = 2; i <= NF; i++) if ($i == k) {print $(i - 1); exit}}'
}
after() { # after NAME LINE: the number following NAME (commas dropped)
    echo "$2" | tr -d , | awk -v k="$1" '{for (i = 1; i < NF; i++) if ($i == k) {print $(i + 1); exit}}'
}

rows=
for size in 100 1024; do
    for parts in 1 6; do
        for acks in 0 1 -1; do
            topic="bench-$size-$parts-acks$(echo "$acks" | sed s/-1/all/)"
            echo "data_bench: $topic" >&2
            pline=$("$PERF" produce -b "$B" -t "$topic" --create -p "$parts" -s "$size" \
                    --acks "$acks" --seconds "$SECS" 2>"$DIR/perf.err") ||
                { cat "$DIR/perf.err" >&2; exit 1; }
            cline=$("$PERF" consume -b "$B" -t "$topic" --from-beginning 2>"$DIR/perf.err") ||
                { cat "$DIR/perf.err" >&2; exit 1; }
            [ "$(field msgs "$pline")" = "$(field msgs "$cline")" ] ||
                { echo "data_bench: $topic: consumed a different count: $pline / $cline" >&2; exit 1; }
            rows="$rows$size $parts $acks $(field msgs/s "$pline") $(field MB/s "$pline") \
$(after p50 "$pline") $(after p99 "$pline") $(after p99.9 "$pline") $(after max "$pline") \
$(field msgs/s "$cline") $(field MB/s "$cline")
"
        done
    done
done

# ---- the table ----
printf '\nbaselines: disk write %s MB/s (dd 1 GiB, fdatasync), loopback %s MB/s (TCP, 1 GiB)\n' \
    "$disk_mbs" "$loop_mbs"
printf 'gregor-perf: %s s of produce per row, flat out, batch 16 KiB, 5 in flight; consume reads it all back\n' "$SECS"
printf 'MB = 2^20 bytes of record values; latency in ms from request sent to acknowledged\n'
printf '(acks=0: nothing is acknowledged, latency n/a; the count is confirmed by consuming it back)\n\n'
printf '%6s %5s %4s | %10s %8s %6s | %6s %6s %6s %6s | %10s %8s %6s\n' \
    size parts acks "prod msg/s" "MB/s" "%disk" p50 p99 p99.9 max "cons msg/s" "MB/s" "%loop"
printf '%s' "$rows" | awk -v d="$disk_mbs" -v l="$loop_mbs" '
    NF == 11 {
        printf "%6s %5s %4s | %10s %8s %5.0f%% | %6s %6s %6s %6s | %10s %8s %5.0f%%\n",
               $1, $2, ($3 == -1 ? "all" : $3), $4, $5, 100 * $5 / d, $6, $7, $8, $9, $10, $11,
               100 * $11 / l
    }'
