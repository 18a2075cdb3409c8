#!/usr/bin/env bash
# Installs what building and testing pg_keeper needs on Debian 12, as root:
# PostgreSQL 15 with its server headers, and the tools the tests use.
# Go comes from the machine (/usr/local/go) or the distribution.
set -euo pipefail

if [ "$(id -u)" != 0 ]; then
	echo "run as root (it uses apt-get)" >&2
	exit 1
fi
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
# Debian's postgresql-common creates and starts a cluster "15/main" on
# port 5432 when the server package arrives; pg_keeper never uses it.
# libkrb5-dev: the server's libpq-be.h, which the fence uses, includes gssapi.h.
# pgbouncer: the test of conf/pgbouncer-repoint.sh runs a real one.
# prometheus-postgres-exporter: test/exporter_test.go runs it; without systemd its postinst's start is a no-op exiting 0 (no DATA_SOURCE_NAME yet).
apt-get install -y -qq --no-install-recommends \
	postgresql-15 postgresql-server-dev-15 postgresql-client-15 \
	libkrb5-dev \
	pgbouncer \
	prometheus-postgres-exporter \
	make gcc libc6-dev procps iproute2 iptables util-linux ca-certificates >/dev/null
if ! command -v go >/dev/null 2>&1 && [ ! -x /usr/local/go/bin/go ]; then
	echo "Go $(sed -n 's/^go //p' go.mod 2>/dev/null) or newer is needed: install it into /usr/local/go" >&2
	exit 1
fi
echo "dependencies installed: $(pg_config --version), $(PATH=$PATH:/usr/local/go/bin go version)"
