#!/bin/sh
# Entrypoint of the local PostgreSQL stand-in image (scripts/base-images.sh), for
# machines that cannot pull the official `postgres` image. It honours the same
# contract as the official one for what sidecar's stacks use: POSTGRES_USER,
# POSTGRES_PASSWORD (or POSTGRES_PASSWORD_FILE), POSTGRES_DB, PGDATA, and
# `postgres [options]` as the command. Like the official image, the first start
# creates the cluster before TCP is opened, so clients see "connection refused"
# until the server is really ready.
set -eu

as_postgres() { setpriv --reuid=postgres --regid=postgres --init-groups "$@"; }

# VAR or VAR_FILE, never both (docker-library convention).
file_env() {
	var=$1
	eval "value=\${$var:-}" "file=\${${var}_FILE:-}"
	if [ -n "$value" ] && [ -n "$file" ]; then
		echo "error: both $var and ${var}_FILE are set (but are exclusive)" >&2
		exit 1
	fi
	if [ -n "$file" ]; then
		value=$(cat "$file")
	fi
	export "$var=$value"
	unset "${var}_FILE"
}

if [ "${1:-}" = postgres ] && [ "$(id -u)" = 0 ]; then
	file_env POSTGRES_PASSWORD
	user=${POSTGRES_USER:-postgres}
	db=${POSTGRES_DB:-$user}
	mkdir -p "$PGDATA" /var/run/postgresql
	chown postgres:postgres "$PGDATA" /var/run/postgresql
	chmod 700 "$PGDATA"
	if [ ! -s "$PGDATA/PG_VERSION" ]; then
		if [ -z "$POSTGRES_PASSWORD" ]; then
			echo "error: database is uninitialized and POSTGRES_PASSWORD is not set" >&2
			exit 1
		fi
		pwfile=$(mktemp)
		printf '%s' "$POSTGRES_PASSWORD" > "$pwfile"
		chown postgres "$pwfile"
		as_postgres initdb -D "$PGDATA" -U "$user" --pwfile="$pwfile" -E UTF8 --locale=C.UTF-8 \
			--auth-local=trust --auth-host=scram-sha-256 > /dev/null
		rm -f "$pwfile"
		echo "host all all all scram-sha-256" >> "$PGDATA/pg_hba.conf"
		echo "listen_addresses = '*'" >> "$PGDATA/postgresql.conf"
		if [ "$db" != postgres ]; then
			# Single-user mode: no socket or port is open while we set up.
			echo "CREATE DATABASE \"$db\";" | as_postgres postgres --single -D "$PGDATA" postgres > /dev/null
		fi
		echo "PostgreSQL init process complete; ready for start up."
	fi
	exec setpriv --reuid=postgres --regid=postgres --init-groups "$@"
fi

exec "$@"
