#!/usr/bin/env bash
# Installs what building and testing pg_keeper needs on Debian, as root:
# PostgreSQL PG_MAJOR (default 15, Debian 12's) with its server headers, and
# the tools the tests use. scripts/pg-root.sh runs it inside a root of the
# Debian release that carries another major. Go comes from the machine
# (/usr/local/go) or the distribution.
set -euo pipefail
major=${PG_MAJOR:-15}

if [ "$(id -u)" != 0 ]; then
	echo "run as root (it uses apt-get)" >&2
	exit 1
fi
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
# Debian's postgresql-common creates and starts a cluster "15/main" on
# port 5432 when the server package arrives; pg_keeper never uses it.
# libkrb5-dev, libssl-dev: the server's libpq-be.h, which the fence uses,
# includes gssapi.h and (13) openssl/ssl.h.
# pgbouncer: the test of conf/pgbouncer-repoint.sh runs a real one.
# dpkg-dev: dpkg-shlibdeps, for the Depends of make deb's package.
# prometheus-postgres-exporter: test/exporter_test.go runs it; without
# systemd its postinst's start is a no-op (no DATA_SOURCE_NAME yet).
apt-get install -y -qq --no-install-recommends \
	postgresql-$major postgresql-server-dev-$major postgresql-client-$major \
	libkrb5-dev libssl-dev \
	pgbouncer \
	dpkg-dev prometheus-postgres-exporter \
	make gcc libc6-dev procps iproute2 iptables util-linux ca-certificates >/dev/null
if [ -z "${PG_KEEPER_NO_GO_CHECK:-}" ] && ! command -v go >/dev/null 2>&1 && [ ! -x /usr/local/go/bin/go ]; then
	echo "Go $(sed -n 's/^go //p' go.mod 2>/dev/null) or newer is needed: install it into /usr/local/go" >&2
	exit 1
fi
echo "dependencies installed: $(/usr/lib/postgresql/$major/bin/pg_config --version), $(PATH=$PATH:/usr/local/go/bin go version)"
