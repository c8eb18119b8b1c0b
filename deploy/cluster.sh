#!/bin/sh
# Starts, stops and shows a local cluster of 3 controllers and 3 brokers on
# loopback, configured by deploy/config/{controller,broker}-N.properties.
#
#   deploy/cluster.sh start     start the six processes in the background
#   deploy/cluster.sh stop      SIGTERM each by pid, SIGKILL after a timeout
#   deploy/cluster.sh status    which pids are alive, which controller is active
#
# Run it from anywhere; it works in the repository root.  Node data lives in
# ./data/controller-N and ./data/broker-10N (the node ids; `make run`'s broker
# keeps ./data/broker-1), logs in data/<config name>.log, pids in
# data/<config name>.pid.  Brokers listen on 127.0.0.1:19192, 29192 and 39192;
# controllers on 127.0.0.1:19193-19195.
#
# Environment: GREGOR_BIN (default ./bin), STOP_TIMEOUT seconds (default 15).
set -eu

root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
bin=${GREGOR_BIN:-$root/bin}
data=$root/data
stop_timeout=${STOP_TIMEOUT:-15}
controllers="controller-1 controller-2 controller-3"
brokers="broker-1 broker-2 broker-3"

die() {
    echo "cluster.sh: $*" >&2
    exit 1
}

pid_of() {
    # Prints the pid recorded for a node, if its process is still alive.
    pidfile=$data/$1.pid
    [ -f "$pidfile" ] || return 1
    pid=$(cat "$pidfile")
    case $pid in '' | *[!0-9]*) return 1 ;; esac
    kill -0 "$pid" 2>/dev/null || return 1
    echo "$pid"
}

start_node() {
    node=$1
    binary=$2
    if pid=$(pid_of "$node"); then
        echo "$node already running (pid $pid)"
        return 0
    fi
    [ -x "$bin/$binary" ] || die "$bin/$binary not found: run make first"
    nohup "$bin/$binary" --config "deploy/config/$node.properties" \
        >>"$data/$node.log" 2>&1 </dev/null &
    echo $! >"$data/$node.pid"
    echo "started $node (pid $!, log data/$node.log)"
}

stop_node() {
    node=$1
    if ! pid=$(pid_of "$node"); then
        rm -f "$data/$node.pid"
        return 0
    fi
    kill -TERM "$pid" 2>/dev/null || true
    waited=0
    while kill -0 "$pid" 2>/dev/null; do
        if [ "$waited" -ge $((stop_timeout * 10)) ]; then
            echo "$node (pid $pid) did not stop within ${stop_timeout}s; sending SIGKILL"
            kill -KILL "$pid" 2>/dev/null || true
            break
        fi
        sleep 0.1
        waited=$((waited + 1))
    done
    rm -f "$data/$node.pid"
    echo "stopped $node (pid $pid)"
}

active_controller() {
    # The live controller whose log last says it became active, with no
    # later "no longer the active controller".
    best_epoch=-1
    best=
    for node in $controllers; do
        pid_of "$node" >/dev/null || continue
        line=$(grep -E 'is (the active controller in epoch [0-9]+|no longer the active controller)' \
            "$data/$node.log" 2>/dev/null | tail -n 1) || true
        case $line in
        *"is the active controller in epoch "*)
            epoch=${line##* }
            if [ "$epoch" -gt "$best_epoch" ]; then
                best_epoch=$epoch
                best=$node
            fi
            ;;
        esac
    done
    [ -n "$best" ] || return 1
    echo "$best (epoch $best_epoch)"
}

cmd_start() {
    mkdir -p "$data"
    # GREGOR_* settings in the caller's environment would apply to every node.
    if env | grep -q '^GREGOR_[A-Z_]*='; then
        echo "cluster.sh: note: GREGOR_* variables in the environment apply to every node" >&2
    fi
    # Controllers first, together: the quorum needs a majority to elect.
    for node in $controllers; do start_node "$node" gregor-controller; done
    for node in $brokers; do start_node "$node" gregor-broker; done
}

cmd_stop() {
    # Brokers first (a controlled shutdown needs the active controller).
    for node in $brokers $controllers; do stop_node "$node"; done
}

cmd_status() {
    rc=0
    for node in $controllers $brokers; do
        if pid=$(pid_of "$node"); then
            echo "$node: running (pid $pid)"
        else
            echo "$node: stopped"
            rc=3
        fi
    done
    if active=$(active_controller); then
        echo "active controller: $active"
    else
        echo "active controller: none"
        rc=3
    fi
    if [ -x "$bin/gregorctl" ] && pid_of broker-1 >/dev/null; then
        "$bin/gregorctl" -b 127.0.0.1:19192 quorum describe 2>/dev/null || true
    fi
    return "$rc"
}

case ${1:-} in
start) cmd_start ;;
stop) cmd_stop ;;
status) cmd_status ;;
*)
    echo "usage: $0 start|stop|status" >&2
    exit 2
    ;;
esac
