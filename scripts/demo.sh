#!/usr/bin/env bash
# `make demo`: make has built bin/ already; `wfctl dev` does the rest — a
# private PostgreSQL in .wf/, one engine, two executors, the examples'
# HTTP helper, examples/ submitted, the dashboard URL and an admin token
# printed. Ctrl-C stops everything; running it again reuses the data.
# Arguments go to wfctl dev (scripts/demo.sh --reset, --http 8081, ...);
# WF_RESET=1, WF_HTTP_PORT and WF_ZMQ_PORT are still understood.
set -eu
cd "$(dirname "$0")/.."
args=()
[ "${WF_RESET:-}" = 1 ] && args+=(--reset)
[ -n "${WF_HTTP_PORT:-}" ] && args+=(--http "$WF_HTTP_PORT")
[ -n "${WF_ZMQ_PORT:-}" ] && args+=(--zmq "$WF_ZMQ_PORT")
exec bin/wfctl dev examples/ "${args[@]}" "$@"
