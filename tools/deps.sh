#!/bin/sh
# deps.sh - Gregor's build and test dependencies, all Debian packages.
#
#   tools/deps.sh check     install only if something is missing (fast when all is there)
#   tools/deps.sh install   install (or print the command to run when not root)
set -eu

PACKAGES="build-essential pkg-config libevent-dev libssl-dev liblz4-dev libsnappy-dev zlib1g-dev
libzstd-dev check clang libclang-rt-14-dev kcat python3 python3-pytest python3-confluent-kafka
python3-kafka"

missing() {
    # dpkg-query answers for every package at once; a package that is not
    # installed has no "install ok installed" line.
    for p in $PACKAGES; do
        dpkg-query -W -f='${Status}\n' "$p" 2>/dev/null | grep -q '^install ok installed$' \
            || echo "$p"
    done
}

install() {
    cmd="apt-get install -y --no-install-recommends $*"
    if [ "$(id -u)" -ne 0 ]; then
        echo "Gregor needs these Debian packages: $*" >&2
        echo "Install them with: sudo apt-get update && sudo $cmd" >&2
        exit 1
    fi
    echo "installing: $*" >&2
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    # shellcheck disable=SC2086
    apt-get install -y -qq --no-install-recommends "$@"
}

case "${1:-check}" in
check)
    need=$(missing | tr '\n' ' ')
    [ -z "$need" ] || install $need
    ;;
install)
    # shellcheck disable=SC2086
    install $PACKAGES
    ;;
*)
    echo "usage: $0 [check|install]" >&2
    exit 2
    ;;
esac
