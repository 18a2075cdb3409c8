#!/usr/bin/env bash
# Builds pg_keeper against the PostgreSQL installed here (this machine's, or
# a root's under scripts/in-root.sh) with warnings as errors and, as root,
# packages it (make deb), installs the package, runs the demo pair from it
# and then the real-server tests against it. scripts/test.sh calls it once
# per major.
#
#   scripts/suite.sh             every real-server test
#   scripts/suite.sh PATTERN     only those go test -run PATTERN selects
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$PATH:/usr/local/go/bin"

major=$(pg_config --version | sed -E 's/^PostgreSQL ([0-9]+).*/\1/')
pattern=${1:-}
mkdir -p results
log=results/test-pg$major.log

echo "== PostgreSQL $major: build (C shim with -Werror)"
make -s USE_PGXS=1 clean
make -s USE_PGXS=1 COPT=-Werror

if [ "$(id -u)" = 0 ]; then
	echo "== PostgreSQL $major: package (make deb), install it, the demo from it"
	make -s USE_PGXS=1 deb >/dev/null
	deb=$(ls dist/postgresql-"$major"-pg-keeper_*.deb)
	# Once built, the tree's copies go: the tests must run what the
	# package installed.
	make -s USE_PGXS=1 clean
	DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --reinstall "./$deb" >/dev/null
	export PG_KEEPER_DEB=$PWD/$deb
	echo "installed $deb"
	scripts/demo.sh --installed >"results/demo-pg$major.log" 2>&1 || {
		tail -30 "results/demo-pg$major.log" >&2
		echo "the demo failed on PostgreSQL $major: results/demo-pg$major.log" >&2
		exit 1
	}
	grep -E '^(node2 promoted|node2 takes writes|node1 refused|node1 is node2)' "results/demo-pg$major.log" | sed 's/^/  demo: /'
else
	echo "not root: testing the pg_keeper already installed in $(pg_config --pkglibdir)"
fi

echo "== PostgreSQL $major: tests against real servers${pattern:+ matching $pattern}"
# One package at a time: each scenario runs two servers on 2 cores.
# PIPESTATUS must be read right after the pipeline, with set -e off: after
# "|| true" it would hold true's status, and a failed test would pass.
set +e
go test -count=1 -p 1 -timeout 60m -v ${pattern:+-run "$pattern"} ./test/... 2>&1 | tee "$log" |
	grep --line-buffered -E '^(=== RUN|--- |ok|FAIL|PASS)|^\s+--- |_test\.go:[0-9]+:'
status=${PIPESTATUS[0]}
set -e
passed=$(grep -cE '^\s*--- PASS' "$log" || true)
failed=$(grep -cE '^\s*--- FAIL' "$log" || true)
skipped=$(grep -cE '^\s*--- SKIP' "$log" || true)
# The console shows only the tests' own lines; for a failed scenario, also
# what it printed in full (the servers' log tails, from the cleanup): a CI
# run may keep nothing but the console.
for name in $(grep -oE '^--- FAIL: [^ ]+' "$log" | cut -d' ' -f3); do
	echo "== PostgreSQL $major: output of $name (last 250 lines)"
	awk -v n="$name" '$0 == "=== RUN   " n { p = 1 } p { print } index($0, "--- FAIL: " n " ") == 1 { p = 0 }' "$log" | tail -250
done
echo "PostgreSQL $major: scenarios: $passed passed, $failed failed, $skipped skipped (full output: $log)"
exit "$status"
