#!/bin/sh
# Start PostgreSQL; on the first start create the cluster, the superuser and the databases.
#   POSTGRES_PASSWORD  the superuser's password (required on the first start)
#   POSTGRES_USER      the superuser (gpuhub)
#   POSTGRES_DB        databases to create, separated by spaces or commas ("jupyterhub gpuhub")
set -eu

if [ ! -s "$PGDATA/PG_VERSION" ]; then
  if [ -z "${POSTGRES_PASSWORD:-}" ]; then
    echo "gpuhub-postgres: set POSTGRES_PASSWORD (in .env; see .env.example) for the first start" >&2
    exit 1
  fi
  pwfile=$(mktemp)
  printf '%s\n' "$POSTGRES_PASSWORD" > "$pwfile"
  # local (socket) connections inside this container are trusted, like the official image;
  # everything over TCP needs the password
  initdb --pgdata="$PGDATA" --username="$POSTGRES_USER" --pwfile="$pwfile" \
    --encoding=UTF8 --locale=C.UTF-8 --auth-local=trust --auth-host=scram-sha-256 >/dev/null
  rm -f "$pwfile"
  {
    echo "host all all 0.0.0.0/0 scram-sha-256"
    echo "host all all ::/0 scram-sha-256"
  } >> "$PGDATA/pg_hba.conf"
  pg_ctl --pgdata="$PGDATA" --options="-c listen_addresses=''" --wait --silent start
  for db in $(echo "$POSTGRES_DB" | tr ',' ' '); do
    echo "gpuhub-postgres: creating database $db" >&2
    createdb --username="$POSTGRES_USER" --owner="$POSTGRES_USER" "$db"
  done
  pg_ctl --pgdata="$PGDATA" --mode=fast --wait --silent stop
  echo "gpuhub-postgres: cluster ready in $PGDATA" >&2
fi

exec postgres -D "$PGDATA" -c listen_addresses='*' -c password_encryption=scram-sha-256 "$@"
