#!/usr/bin/env bash
# Starts the local services the tests need (PostgreSQL; NATS for the cluster tests) when
# they are not running, and waits until they answer. Safe to run when they are up.
set -euo pipefail

PGHOST=${PGHOST:-127.0.0.1}
PGPORT=${PGPORT:-5432}

if ! pg_isready -q -h "$PGHOST" -p "$PGPORT"; then
  echo "starting PostgreSQL…"
  if command -v pg_ctlcluster >/dev/null; then
    pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql | head -n1)" main start
  else
    echo "PostgreSQL is not running on $PGHOST:$PGPORT and pg_ctlcluster is not available" >&2
    exit 1
  fi
  for _ in $(seq 1 50); do pg_isready -q -h "$PGHOST" -p "$PGPORT" && break; sleep 0.2; done
  pg_isready -h "$PGHOST" -p "$PGPORT"
fi

# Test databases from earlier runs (each test makes its own) are dropped here; one still in
# use by a concurrent test run is left alone.
psql -h "$PGHOST" -p "$PGPORT" -U postgres -d postgres -Atc \
  "SELECT datname FROM pg_database WHERE datname LIKE 'banter\_test\_%'" |
  while read -r db; do
    psql -h "$PGHOST" -p "$PGPORT" -U postgres -d postgres -qc "DROP DATABASE IF EXISTS \"$db\"" >/dev/null 2>&1 || true
  done

# NATS (with JetStream, as the machine runs it) for the cluster tests.
NATS_PORT=${NATS_PORT:-4222}
if ! (exec 3<>"/dev/tcp/127.0.0.1/$NATS_PORT") 2>/dev/null; then
  echo "starting NATS…"
  if command -v nats-server >/dev/null || [ -x /usr/sbin/nats-server ]; then
    mkdir -p /var/lib/nats-server
    start-stop-daemon --start --oknodo --background --exec "$(command -v nats-server || echo /usr/sbin/nats-server)" -- \
      -a 127.0.0.1 -p "$NATS_PORT" -js -sd /var/lib/nats-server -l /var/log/nats-server.log
    for _ in $(seq 1 50); do (exec 3<>"/dev/tcp/127.0.0.1/$NATS_PORT") 2>/dev/null && break; sleep 0.2; done
  else
    echo "NATS is not running on 127.0.0.1:$NATS_PORT and nats-server is not installed (apt-get install nats-server)" >&2
    exit 1
  fi
fi
