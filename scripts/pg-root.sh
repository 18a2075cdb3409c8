#!/usr/bin/env bash
# Makes, or brings up to date, a Debian root holding PostgreSQL MAJOR with
# its server headers and the tools the tests use, for building and testing
# pg_keeper against a major that this machine's Debian does not ship. The
# root comes from Debian's own archive with debootstrap, from the release
# that carries that major, and is kept for the next run. As root.
#
#   scripts/pg-root.sh 17      prints the root's directory on stdout
#
# PG_KEEPER_ROOTS (default /var/cache/pg_keeper/roots) says where roots are
# kept, DEBIAN_MIRROR (default http://deb.debian.org/debian) where from.
set -euo pipefail
cd "$(dirname "$0")/.."

major=${1:?usage: scripts/pg-root.sh MAJOR}
# The Debian release that ships each major. 14 and 16 were never in a
# Debian release (only in apt.postgresql.org, which this machine does not
# reach).
case $major in
13) suite=bullseye ;;
15) suite=bookworm ;;
17) suite=trixie ;;
18) suite=forky ;;
*)
	echo "PostgreSQL $major: no Debian release carries it (13: bullseye, 15: bookworm, 17: trixie, 18: forky)" >&2
	exit 2
	;;
esac
if [ "$(id -u)" != 0 ]; then
	echo "run as root (debootstrap and chroot)" >&2
	exit 1
fi
roots=${PG_KEEPER_ROOTS:-/var/cache/pg_keeper/roots}
mirror=${DEBIAN_MIRROR:-http://deb.debian.org/debian}
root=$roots/pg$major

log() { echo "pg-root: $*" >&2; }

if ! command -v debootstrap >/dev/null 2>&1; then
	log "installing debootstrap"
	DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends debootstrap >/dev/null
fi

# A root is complete once debootstrap finished; an interrupted one is
# started again rather than patched.
if [ ! -f "$root/.debootstrap-done" ]; then
	rm -rf "$root"
	mkdir -p "$roots"
	log "debootstrap $suite (PostgreSQL $major) into $root"
	# The script of a release newer than this debootstrap knows is sid's.
	script=/usr/share/debootstrap/scripts/$suite
	[ -e "$script" ] || script=/usr/share/debootstrap/scripts/sid
	debootstrap --variant=minbase "$suite" "$root" "$mirror" "$script" >"$roots/pg$major.debootstrap.log" 2>&1 || {
		tail -20 "$roots/pg$major.debootstrap.log" >&2
		exit 1
	}
	# Services never start inside the root (postgresql-common would start
	# a cluster on 5432).
	printf '#!/bin/sh\nexit 101\n' >"$root/usr/sbin/policy-rc.d"
	chmod 755 "$root/usr/sbin/policy-rc.d"
	# The archive this machine reaches may be a snapshot older than a
	# release's Valid-Until (seen for forky): the root's packages are for
	# tests only, and still signed.
	echo 'Acquire::Check-Valid-Until "false";' >"$root/etc/apt/apt.conf.d/99pg-keeper"
	mkdir -p "$root/etc/postgresql-common"
	echo "create_main_cluster = false" >"$root/etc/postgresql-common/createcluster.conf"
	touch "$root/.debootstrap-done"
fi

# The same package list as this machine's, from the root's release.
# Rerun on each call: quick when nothing changed, and it picks up a package
# added to install-deps.sh since the root was made.
log "installing PostgreSQL $major and the test tools in $root"
scripts/in-root.sh "$major" env PG_MAJOR="$major" PG_KEEPER_NO_GO_CHECK=1 scripts/install-deps.sh >&2
echo "$root"
