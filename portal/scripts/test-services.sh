#!/usr/bin/env bash
# Make sure the services the test suite talks to are up on 127.0.0.1, starting only what is absent:
#   PostgreSQL on :5432 with a SUPERUSER role stratus/stratus (tests create and drop databases)
#   Redis on :6379 (keeps nothing on disk)
#   RabbitMQ on :5672 (guest/guest from loopback; tests make a vhost of their own and delete it), when
#   rabbitmq-server is installed (portal/scripts/system-deps.sh test installs it)
# Works without systemd (containers, CI): clusters are started with pg_ctlcluster directly.
set -euo pipefail

PG_PORT="${PG_PORT:-5432}"
REDIS_PORT="${REDIS_PORT:-6379}"
AMQP_PORT="${AMQP_PORT:-5672}"
log() { echo "test-services: $*"; }

port_open() {  # host port
  ( { exec 3<>"/dev/tcp/$1/$2"; } 2>/dev/null )
}

wait_for() {  # seconds description command...
  local seconds=$1 what=$2
  shift 2
  for _ in $(seq $((seconds * 5))); do
    if "$@"; then return 0; fi
    sleep 0.2
  done
  log "$what did not come up in ${seconds}s" >&2
  return 1
}

as_postgres() {  # psql as the postgres superuser: local socket (peer auth), else TCP (trust)
  if id postgres >/dev/null 2>&1 && runuser -u postgres -- psql -X -q -v ON_ERROR_STOP=1 -d postgres -c 'select 1' \
      >/dev/null 2>&1; then
    runuser -u postgres -- psql -X -q -v ON_ERROR_STOP=1 -d postgres "$@"
  else
    psql -X -q -v ON_ERROR_STOP=1 -h 127.0.0.1 -p "$PG_PORT" -U postgres -d postgres "$@"
  fi
}

# ---- PostgreSQL --------------------------------------------------------------------------------
pg_ready() { pg_isready -q -h 127.0.0.1 -p "$PG_PORT"; }
if ! pg_ready; then
  version="$(ls /etc/postgresql 2>/dev/null | sort -V | tail -n1 || true)"
  if [ -z "$version" ]; then
    version="$(ls /usr/lib/postgresql | sort -V | tail -n1)"
    log "creating PostgreSQL $version cluster main"
    pg_createcluster "$version" main
  fi
  log "starting PostgreSQL $version/main"
  pg_ctlcluster --skip-systemctl-redirect "$version" main start
  wait_for 30 PostgreSQL pg_ready
fi

stratus_ok() {
  [ "$(PGPASSWORD=stratus psql -X -tA -h 127.0.0.1 -p "$PG_PORT" -U stratus -d postgres \
       -c 'select rolsuper from pg_roles where rolname = current_user' 2>/dev/null)" = t ]
}
if ! stratus_ok; then
  log "creating PostgreSQL role stratus (SUPERUSER) and database stratus"
  as_postgres <<'SQL'
DO $$
BEGIN
  IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'stratus') THEN
    CREATE ROLE stratus LOGIN SUPERUSER PASSWORD 'stratus';
  ELSE
    ALTER ROLE stratus LOGIN SUPERUSER PASSWORD 'stratus';
  END IF;
END
$$;
SQL
  stratus_ok || { log "role stratus still cannot log in over TCP with its password (pg_hba.conf?)" >&2; exit 1; }
fi
if [ "$(PGPASSWORD=stratus psql -X -tA -h 127.0.0.1 -p "$PG_PORT" -U stratus -d postgres \
        -c "select 1 from pg_database where datname = 'stratus'")" != 1 ]; then
  PGPASSWORD=stratus psql -X -q -h 127.0.0.1 -p "$PG_PORT" -U stratus -d postgres -c 'CREATE DATABASE stratus OWNER stratus'
fi

# ---- Redis -------------------------------------------------------------------------------------
redis_ready() {
  local reply=""
  { exec 3<>"/dev/tcp/127.0.0.1/$REDIS_PORT"; } 2>/dev/null || return 1
  printf 'PING\r\n' >&3
  read -r -t 2 reply <&3 || true
  exec 3<&- 3>&-
  [ "${reply%$'\r'}" = "+PONG" ]
}
if ! redis_ready; then
  if port_open 127.0.0.1 "$REDIS_PORT"; then
    log "something other than Redis answers on 127.0.0.1:$REDIS_PORT" >&2
    exit 1
  fi
  dir=/var/lib/redis
  [ -d "$dir" ] && [ -w "$dir" ] || dir="$(mktemp -d /tmp/stratus-redis.XXXXXX)"
  log "starting redis-server on 127.0.0.1:$REDIS_PORT"
  redis-server --daemonize yes --bind 127.0.0.1 --port "$REDIS_PORT" --save "" --appendonly no --dir "$dir" \
    --logfile "$dir/stratus-test-redis.log"
  wait_for 15 Redis redis_ready
fi

# ---- RabbitMQ ----------------------------------------------------------------------------------
rabbit_ready() { rabbitmqctl -q await_startup >/dev/null 2>&1 && port_open 127.0.0.1 "$AMQP_PORT"; }
if command -v rabbitmq-server >/dev/null 2>&1 && ! port_open 127.0.0.1 "$AMQP_PORT"; then
  log "starting rabbitmq-server on :$AMQP_PORT"
  if [ "$(id -u)" -eq 0 ] && id rabbitmq >/dev/null 2>&1; then
    # as its own user (its Erlang cookie and data dir are the package's), detached; no systemd needed
    runuser -u rabbitmq -- env HOME=/var/lib/rabbitmq rabbitmq-server -detached
  else
    rabbitmq-server -detached
  fi
  wait_for 90 RabbitMQ rabbit_ready
fi
