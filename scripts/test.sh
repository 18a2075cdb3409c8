#!/usr/bin/env bash
# Runs every test of pg_keeper: style checks, the C shim built with
# warnings as errors, the state machine's unit tests without cgo, and the
# scenarios against real PostgreSQL 15 servers. As root (CI, or sudo) it
# first installs what it needs and installs the freshly built pg_keeper.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$PATH:/usr/local/go/bin"

if [ "$(id -u)" = 0 ]; then
	scripts/install-deps.sh
fi

echo "== gofmt, go vet"
unformatted=$(gofmt -l $(git ls-files '*.go' 2>/dev/null || find . -name '*.go'))
if [ -n "$unformatted" ]; then
	echo "gofmt would change: $unformatted" >&2
	exit 1
fi
go vet ./...

echo "== build (C shim with -Werror) and install"
make -s USE_PGXS=1 clean
make -s USE_PGXS=1 COPT=-Werror
if [ "$(id -u)" = 0 ]; then
	make -s USE_PGXS=1 install >/dev/null
else
	echo "not root: testing the pg_keeper already installed in $(pg_config --pkglibdir)"
fi

echo "== unit tests (no cgo)"
CGO_ENABLED=0 go test -count=1 ./keeper/...

echo "== tests against real servers"
# One package at a time: each scenario runs two servers on 2 cores.
# PIPESTATUS must be read right after the pipeline, with set -e off: after
# "|| true" it would hold true's status, and a failed test would pass CI.
set +e
go test -count=1 -p 1 -timeout 60m -v ./test/... 2>&1 | tee /tmp/pg_keeper-test.log |
	grep -E '^(=== RUN|--- |ok|FAIL|PASS)|^\s+--- |_test\.go:[0-9]+:'
status=${PIPESTATUS[0]}
set -e
passed=$(grep -cE '^\s*--- PASS' /tmp/pg_keeper-test.log || true)
failed=$(grep -cE '^\s*--- FAIL' /tmp/pg_keeper-test.log || true)
echo "full output of the real-server tests: /tmp/pg_keeper-test.log"
echo "scenarios: $passed passed, $failed failed"
exit "$status"
