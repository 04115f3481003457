#!/usr/bin/env bash
# Installs the Debian packages silt needs. `deps.sh run` installs what
# building and running needs; `deps.sh test` adds the clients and tools the
# test suite drives. Only missing packages are installed.
set -euo pipefail
mode=${1:-run}

build_pkgs=(gcc make pkg-config libssl-dev libisal-dev libsqlite3-dev zlib1g-dev libzstd-dev
	liblz4-dev libsnappy-dev libcurl4-openssl-dev libcjson-dev libexpat1-dev librdkafka-dev
	libnats-dev libhiredis-dev)
test_pkgs=(clang libclang-rt-14-dev kcat python3-confluent-kafka python3-kafka python3-snappy python3-lz4 python3-zstandard nodejs npm
	procps psmisc awscli python3-boto3 s3cmd rclone)

pkgs=("${build_pkgs[@]}")
[ "$mode" = test ] && pkgs+=("${test_pkgs[@]}")

missing=()
for p in "${pkgs[@]}"; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
# nodejs may come from outside Debian on some machines; accept any node+npm on PATH.
if command -v node >/dev/null && command -v npm >/dev/null; then
	tmp=()
	for p in "${missing[@]}"; do [ "$p" = nodejs ] || [ "$p" = npm ] || tmp+=("$p"); done
	missing=("${tmp[@]+"${tmp[@]}"}")
fi
if [ ${#missing[@]} -gt 0 ]; then
	echo "deps: installing ${missing[*]}" >&2
	SUDO=""
	[ "$(id -u)" = 0 ] || SUDO=sudo
	$SUDO apt-get update -qq
	DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
