#!/usr/bin/env bash
# Makes sure PostgreSQL and Redis (and RabbitMQ, with NEED_RABBITMQ=1) answer
# on loopback, starting them when they are installed here but not running. With CI=true a service that
# still cannot be reached fails the run; elsewhere the tests that need it skip.
set -uo pipefail

up() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

wait_for() {
    local port=$1
    for _ in $(seq 1 60); do up "$port" && return 0; sleep 0.5; done
    return 1
}

if ! up 5432; then
    echo "PostgreSQL is down; starting it"
    if command -v pg_ctlcluster >/dev/null 2>&1 && [ -d /etc/postgresql ]; then
        pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql | head -1)" main start || true
    fi
    wait_for 5432 || echo "PostgreSQL did not come up"
fi

if ! up 6379; then
    echo "Redis is down; starting it"
    if command -v redis-server >/dev/null 2>&1; then
        mkdir -p /var/lib/redis /var/log/redis 2>/dev/null || true
        redis-server --daemonize yes --bind 127.0.0.1 -::1 --port 6379 --save "" \
            --appendonly no --dir /var/lib/redis --logfile /var/log/redis/ci.log || true
    fi
    wait_for 6379 || echo "Redis did not come up"
fi

if [ "${NEED_RABBITMQ:-0}" = "1" ] && ! up 5672; then
    echo "RabbitMQ is down; starting it"
    if command -v rabbitmq-server >/dev/null 2>&1; then
        rabbitmq-server -detached || true
    fi
    # RabbitMQ takes a while to boot.
    for _ in $(seq 1 120); do up 5672 && break; sleep 0.5; done
    up 5672 || echo "RabbitMQ did not come up"
fi

missing=()
up 5432 || missing+=(PostgreSQL)
up 6379 || missing+=(Redis)
if [ "${NEED_RABBITMQ:-0}" = "1" ]; then up 5672 || missing+=(RabbitMQ); fi
if [ ${#missing[@]} -gt 0 ]; then
    if [ "${CI:-}" = "true" ]; then
        echo "CI=true and ${missing[*]} cannot be reached: failing." >&2
        exit 1
    fi
    echo "Not reachable: ${missing[*]}; the tests that need them will be skipped."
else
    echo "Up: PostgreSQL, Redis$([ "${NEED_RABBITMQ:-0}" = "1" ] && echo ", RabbitMQ")."
fi
