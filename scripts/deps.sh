#!/bin/sh
# Installs the Debian packages wf needs to build, test and run; does nothing
# when all are present. Run as root on Debian 12 (or with sudo available).
set -eu
PKGS="build-essential pkg-config libyaml-dev libpq-dev libzmq3-dev libcurl4-openssl-dev
libjansson-dev libmicrohttpd-dev libcriterion-dev libsodium-dev postgresql-15
postgresql-client-15 tzdata curl python3 procps ca-certificates clang libclang-rt-14-dev openssl jq"
[ -n "${WF_EXTRA_PKGS:-}" ] && PKGS="$PKGS $WF_EXTRA_PKGS"

missing=""
for p in $PKGS; do
	st=$(dpkg-query -W -f='${Status}' "$p" 2>/dev/null || true)
	case "$st" in
	*"install ok installed"*) ;;
	*) missing="$missing $p" ;;
	esac
done
[ -z "$missing" ] && exit 0

echo "wf: installing missing Debian packages:$missing"
if [ "$(id -u)" = 0 ]; then
	SUDO=""
elif command -v sudo >/dev/null 2>&1; then
	SUDO="sudo"
else
	echo "wf: run 'make deps' as root, or install:$missing" >&2
	exit 1
fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
# shellcheck disable=SC2086
$SUDO apt-get install -y -qq --no-install-recommends $missing
