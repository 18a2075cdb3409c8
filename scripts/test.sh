#!/usr/bin/env bash
# Runs every test of pg_keeper: style checks, the state machine's unit
# tests without cgo, then for each PostgreSQL major the C shim built with
# warnings as errors, its package installed, the demo and the scenarios
# against real servers of that major (scripts/suite.sh).
#
#   scripts/test.sh          all of it: the whole suite on PostgreSQL 15
#                            (this machine's Debian 12) and 18 (the newest
#                            Debian carries, in a root from
#                            scripts/pg-root.sh), and on 13 and 17 the
#                            build, the package, the demo and a short set
#   scripts/test.sh 17       the whole suite on one major (or several)
#   PG_KEEPER_RUN=TestSwitchover scripts/test.sh 17
#                            only the scenarios that go test -run selects
#
# As root (CI, or sudo) it installs what it needs first. Not as root it
# tests the pg_keeper installed for this machine's PostgreSQL only.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$PATH:/usr/local/go/bin"

# What runs on the majors tested in short: start, failover, switchover,
# rejoin, status, shutdowns, the package, wait events and slots.
short_run='^(TestBothKeepersConnect|TestMasterKilledStandbyPromotes|TestStandbyKilledMasterGoesAsync|TestSwitchoverUnderLoad|TestRejoinAfterMasterKill|TestStatusAndEvents|TestShutdownsFinish|TestDebPackage|TestWaitEventsAndBackendType|TestFailoverSlots.*)$'

if [ "$(id -u)" = 0 ]; then
	scripts/install-deps.sh
fi
host=$(pg_config --version | sed -E 's/^PostgreSQL ([0-9]+).*/\1/')
full=("$@")
short=()
if [ ${#full[@]} = 0 ] && [ "$(id -u)" = 0 ]; then
	full=(15 18)
	short=(13 17)
elif [ ${#full[@]} = 0 ]; then
	full=("$host") # roots need root
fi

echo "== gofmt, go vet"
unformatted=$(gofmt -l $(git ls-files '*.go' 2>/dev/null || find . -name '*.go'))
if [ -n "$unformatted" ]; then
	echo "gofmt would change: $unformatted" >&2
	exit 1
fi
go vet ./...

echo "== unit tests (no cgo)"
CGO_ENABLED=0 go test -count=1 ./keeper/...

# suite MAJOR [PATTERN]: scripts/suite.sh on this machine for its own
# major, in a root for any other.
suite() {
	local major=$1 pattern=${2:-${PG_KEEPER_RUN:-}}
	if [ "$major" = "$host" ]; then
		scripts/suite.sh ${pattern:+"$pattern"}
	elif [ "$(id -u)" != 0 ]; then
		echo "PostgreSQL $major needs a root made by scripts/pg-root.sh: run as root" >&2
		return 1
	else
		scripts/pg-root.sh "$major" >/dev/null
		scripts/in-root.sh "$major" scripts/suite.sh ${pattern:+"$pattern"}
	fi
}

results=()
status=0
for major in "${full[@]}"; do
	if suite "$major"; then r=passed; else r=FAILED status=1; fi
	results+=("PostgreSQL $major, whole suite: $r")
done
for major in "${short[@]}"; do
	if suite "$major" "$short_run"; then r=passed; else r=FAILED status=1; fi
	results+=("PostgreSQL $major, short set: $r")
done
# The last build may have been a root's: leave this machine's in the tree.
make -s USE_PGXS=1 clean

echo "== summary"
printf '%s\n' "${results[@]}"
exit "$status"
