#!/usr/bin/env bash
# `make demo`: a private PostgreSQL in .wf/, one engine, two executors, the
# examples submitted, and the dashboard URL and an admin token printed.
# Ctrl-C stops everything; running it again reuses the data
# (WF_RESET=1 starts afresh).
set -u
cd "$(dirname "$0")/.."
ROOT=$PWD
WF=$ROOT/.wf
HTTP_PORT=${WF_HTTP_PORT:-8080}
ZMQ_PORT=${WF_ZMQ_PORT:-5555}
. tests/lib/pg.sh

[ "${WF_RESET:-}" = 1 ] && { pg_stop "$WF/pg" 2>/dev/null; rm -rf "$WF"; }
mkdir -p "$WF/logs"
chmod 700 "$WF"

# PostgreSQL runs as 'postgres' when we are root; it needs a data directory
# it can reach, which a checkout under /root is not.
PGDIR=$WF/pg
if [ "$(id -u)" = 0 ] && ! runuser -u postgres -- test -x "$WF" 2>/dev/null; then
	real=/var/lib/wf-dev/$(echo "$ROOT" | sha256sum | cut -c1-12)
	mkdir -p "$real"
	[ -L "$PGDIR" ] || { rm -rf "$PGDIR"; ln -s "$real" "$PGDIR"; }
	PGDIR=$real
fi
chmod 711 "$WF"

pids=()
stop_all() {
	echo
	echo "stopping wf..."
	for p in "${pids[@]}"; do kill -TERM "$p" 2>/dev/null; done
	for p in "${pids[@]}"; do wait "$p" 2>/dev/null; done
	pg_stop "$PGDIR"
	echo "stopped; data kept in .wf/ (WF_RESET=1 make demo starts afresh)"
	exit 0
}
trap stop_all INT TERM

echo "starting PostgreSQL in .wf/pg ..."
pg_start "$PGDIR" || exit 1
"$ROOT/bin/wfctl" migrate || exit 1

if [ ! -s "$WF/token" ]; then
	"$ROOT/bin/wfctl" token create --role admin --name "demo-admin-$(date +%s)" >"$WF/token" 2>/dev/null || exit 1
	chmod 600 "$WF/token"
fi
TOKEN=$(cat "$WF/token")
cat >"$WF/env" <<ENV
export WF_DATABASE_URL='$WF_DATABASE_URL'
export WF_URL='http://127.0.0.1:$HTTP_PORT'
export WF_TOKEN='$TOKEN'
ENV
chmod 600 "$WF/env"

if "$ROOT/bin/wf-engine" --help >/dev/null 2>&1; then
	python3 examples/helpers/flaky_server.py 8089 >"$WF/logs/flaky.log" 2>&1 &
	pids+=($!)
	"$ROOT/bin/wf-engine" --http "127.0.0.1:$HTTP_PORT" --zmq "tcp://127.0.0.1:$ZMQ_PORT" --web "$ROOT/web" \
		>"$WF/logs/engine.log" 2>&1 &
	pids+=($!)
	for i in 1 2; do
		"$ROOT/bin/wf-executor" --id "demo-executor-$i" --listen "tcp://127.0.0.1:$((ZMQ_PORT + i))" \
			--engine "tcp://127.0.0.1:$ZMQ_PORT" --slots 4 >"$WF/logs/executor-$i.log" 2>&1 &
		pids+=($!)
	done
	for _ in $(seq 100); do curl -fsS "http://127.0.0.1:$HTTP_PORT/healthz" >/dev/null 2>&1 && break; sleep 0.1; done
	export WF_URL="http://127.0.0.1:$HTTP_PORT" WF_TOKEN="$TOKEN"
	"$ROOT/bin/wfctl" submit examples/ || echo "(some examples were not submitted; see above)"
else
	echo "wf-engine is not built yet: only PostgreSQL is running."
fi

cat <<MSG

  wf is running.
    dashboard:  http://127.0.0.1:$HTTP_PORT/
    admin token: $TOKEN
    in another shell:  . .wf/env && bin/wfctl workflows
    logs:        .wf/logs/
  Press Ctrl-C to stop.
MSG
while :; do sleep 3600 & wait $!; done
