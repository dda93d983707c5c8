# Throwaway PostgreSQL for tests and `make demo` (source this file).
#   pg_start DIR   initdb (first time) + start on a Unix socket in DIR;
#                  exports PGHOST PGPORT PGUSER PGDATABASE WF_DATABASE_URL
#   pg_stop DIR    fast stop
# As root, PostgreSQL runs as the 'postgres' user (initdb refuses root).
PG_BIN=${PG_BIN:-$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1)}

pg__as() {
	if [ "$(id -u)" = 0 ]; then
		runuser -u "${WF_PG_USER:-postgres}" -- "$@"
	else
		"$@"
	fi
}

pg_start() {
	pg_dir=$1
	mkdir -p "$pg_dir"
	if [ "$(id -u)" = 0 ]; then
		id "${WF_PG_USER:-postgres}" >/dev/null 2>&1 || useradd --system --no-create-home "${WF_PG_USER:-postgres}"
		chown "${WF_PG_USER:-postgres}" "$pg_dir"
		chmod 755 "$pg_dir"
	fi
	if [ ! -f "$pg_dir/data/PG_VERSION" ]; then
		pg__as "$PG_BIN/initdb" -D "$pg_dir/data" -A trust -U postgres -E UTF8 --no-sync \
			>"$pg_dir/initdb.log" 2>&1 || { cat "$pg_dir/initdb.log" >&2; return 1; }
	fi
	pg__as "$PG_BIN/pg_ctl" -D "$pg_dir/data" -l "$pg_dir/postgres.log" -w -t 60 \
		-o "-c listen_addresses='' -c unix_socket_directories='$pg_dir' -c port=5432 ${WF_PG_OPTS:--c fsync=off -c full_page_writes=off -c max_connections=200}" \
		start >/dev/null || { cat "$pg_dir/postgres.log" >&2; return 1; }
	export PGHOST="$pg_dir" PGPORT=5432 PGUSER=postgres PGDATABASE=postgres
	export WF_DATABASE_URL="postgresql:///postgres?host=$pg_dir&port=5432&user=postgres"
}

pg_stop() {
	[ -f "$1/data/postmaster.pid" ] || return 0
	pg__as "$PG_BIN/pg_ctl" -D "$1/data" -m fast -w -t 30 stop >/dev/null 2>&1 ||
		pg__as "$PG_BIN/pg_ctl" -D "$1/data" -m immediate stop >/dev/null 2>&1
}

# pg_createdb NAME: a fresh database; prints its connection URL.
pg_createdb() {
	"$PG_BIN/psql" -q -v ON_ERROR_STOP=1 -d postgres -c "DROP DATABASE IF EXISTS \"$1\"" -c "CREATE DATABASE \"$1\"" >/dev/null || return 1
	echo "postgresql:///$1?host=$PGHOST&port=$PGPORT&user=postgres"
}
