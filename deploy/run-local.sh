#!/bin/sh
# run-local.sh - one controller and one broker in the foreground, as
# `make run` starts them; Ctrl-C (or SIGTERM) stops both.
set -eu
cd "$(dirname "$0")/.."
BIN=${BIN:-bin}
mkdir -p data
"$BIN/gregor-controller" --config deploy/config/controller.properties &
controller=$!
"$BIN/gregor-broker" --config deploy/config/broker.properties &
broker=$!
stop() {
    trap - INT TERM
    kill -TERM "$broker" 2>/dev/null || true
    wait "$broker" 2>/dev/null || true
    kill -TERM "$controller" 2>/dev/null || true
    wait "$controller" 2>/dev/null || true
}
trap stop INT TERM
# Whichever exits first (or Ctrl-C) stops the other.
while kill -0 "$controller" 2>/dev/null && kill -0 "$broker" 2>/dev/null; do
    sleep 1 &
    wait $! || true
done
stop
