#!/usr/bin/env bash
# Builds dist/postgresql-NN-pg-keeper_VERSION_ARCH.deb for the PostgreSQL
# whose pg_config is $PG_CONFIG (default: pg_config on PATH), NN being its
# major version. Called by "make deb"; needs dpkg-deb, and uses
# dpkg-shlibdeps (dpkg-dev) for the shared libraries' dependencies.
#
# It rebuilds from clean (objects built against another major must not end
# up in the package), stages "make install DESTDIR=...", and refuses to
# package anything outside the server's own directories: pg_config
# --pkglibdir, --sharedir/extension and --docdir/extension.
#
# Environment: PG_CONFIG, MAKE, DEB_REVISION (the Debian revision, default
# 1), DEBFULLNAME and DEBEMAIL (the Maintainer field), DIST_DIR (default dist).
set -euo pipefail
export LC_ALL=C
cd "$(dirname "$0")/.."

PG_CONFIG=${PG_CONFIG:-pg_config}
MAKE=${MAKE:-make}
DEB_REVISION=${DEB_REVISION:-1}
DIST_DIR=${DIST_DIR:-dist}
maintainer="${DEBFULLNAME:-pg_keeper maintainers} <${DEBEMAIL:-maintainers@users.noreply.h-seed-1f26d9cd.example}>"

die() {
	echo "deb.sh: $*" >&2
	exit 1
}

command -v dpkg-deb >/dev/null || die "dpkg-deb not found (package dpkg)"
command -v "$PG_CONFIG" >/dev/null || die "pg_config not found: $PG_CONFIG"

pg_version=$("$PG_CONFIG" --version)
major=$(sed -n 's/^PostgreSQL \([0-9][0-9]*\).*/\1/p' <<<"$pg_version")
[ -n "$major" ] || die "cannot read the major version from: $pg_version"
ext_version=$(sed -n "s/^default_version *= *'\([^']*\)'.*/\1/p" pg_keeper.control)
[ -n "$ext_version" ] || die "no default_version in pg_keeper.control"

package=postgresql-$major-pg-keeper
version=$ext_version-$DEB_REVISION
arch=$(dpkg --print-architecture)
pkglibdir=$("$PG_CONFIG" --pkglibdir)
sharedir=$("$PG_CONFIG" --sharedir)
docdir=$("$PG_CONFIG" --docdir)
allowed=("$pkglibdir" "$sharedir/extension" "$docdir/extension")

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
root=$work/debian/$package

echo "== building pg_keeper $ext_version for $pg_version ($PG_CONFIG)"
"$MAKE" -s USE_PGXS=1 PG_CONFIG="$PG_CONFIG" clean
"$MAKE" -s USE_PGXS=1 PG_CONFIG="$PG_CONFIG"
"$MAKE" -s USE_PGXS=1 PG_CONFIG="$PG_CONFIG" install DESTDIR="$root" >/dev/null

# Everything staged must be under an allowed directory; a directory may
# also be one of their parents (/usr, /usr/lib, ...).
bad=()
while IFS= read -r -d '' path; do
	p=${path#"$root"}
	ok=
	for a in "${allowed[@]}"; do
		case "$p" in
		"$a"/*) ok=1 ;;
		esac
		if [ -d "$path" ] && [ ! -L "$path" ]; then
			case "$a/" in
			"$p"/*) ok=1 ;;
			esac
		elif [ ! -f "$path" ] || [ -L "$path" ]; then
			ok= # only plain files and directories
			break
		fi
	done
	[ -n "$ok" ] || bad+=("$p")
done < <(find "$root" -mindepth 1 -print0)
if [ ${#bad[@]} -gt 0 ]; then
	printf '  %s\n' "${bad[@]}" >&2
	die "these would be installed outside ${allowed[*]} (or are not plain files)"
fi
find "$root" -type f -name '*.so' -print -quit | grep -q . || die "no shared library was staged"

# Modes: directories and shared libraries 0755, everything else 0644; the
# owner is root (dpkg-deb --root-owner-group). Nothing is stripped: the Go
# library is linked with -s -w already, and strip(1) can break Go binaries.
find "$root" -type d -exec chmod 0755 {} +
find "$root" -type f -name '*.so' -exec chmod 0755 {} +
find "$root" -type f ! -name '*.so' -exec chmod 0644 {} +

mkdir -p "$root/DEBIAN"
depends="postgresql-$major"
if command -v dpkg-shlibdeps >/dev/null; then
	# dpkg-shlibdeps reads debian/control and finds the package's root by
	# its DEBIAN directory.
	printf 'Source: pg-keeper\n\nPackage: %s\nArchitecture: any\n' "$package" >"$work/debian/control"
	mapfile -t libs < <(find "$root" -type f -name '*.so' | sort)
	shlibs=$(cd "$work" && dpkg-shlibdeps -O "${libs[@]}" | sed -n 's/^shlibs:Depends=//p')
	[ -n "$shlibs" ] || die "dpkg-shlibdeps found no dependency"
	depends="$depends, $shlibs"
else
	echo "deb.sh: dpkg-shlibdeps not found (package dpkg-dev): Depends gets an unversioned libc6" >&2
	depends="$depends, libc6"
fi

# Installed-Size as dpkg-gencontrol counts it: KiB per file, rounded up,
# and one per directory.
installed_size=$(find "$root" -mindepth 1 -path "$root/DEBIAN" -prune -o -printf '%y %s\n' |
	awk '$1 == "f" { n += int(($2 + 1023) / 1024) } $1 != "f" { n++ } END { print n }')
cat >"$root/DEBIAN/control" <<EOF
Package: $package
Source: pg-keeper
Version: $version
Architecture: $arch
Maintainer: $maintainer
Installed-Size: $installed_size
Depends: $depends
Section: database
Priority: optional
Description: two-node failover inside PostgreSQL $major
 pg_keeper is automatic failover for a pair of PostgreSQL servers in
 streaming replication, with no other cluster manager: a background worker
 in each server polls its partner, promotes the standby when the master is
 gone, and clears synchronous_standby_names on a master whose standby is.
 .
 This package holds the extension for PostgreSQL $major: pg_keeper.so (named
 in shared_preload_libraries), the keeper pg_keeper_go.so, and the SQL
 extension pg_keeper.
EOF
(cd "$root" && find . -path ./DEBIAN -prune -o -type f -printf '%P\0' | sort -z | xargs -0 md5sum) >"$root/DEBIAN/md5sums"
chmod 0644 "$root/DEBIAN/control" "$root/DEBIAN/md5sums"

# The archive's timestamps: the last commit's, so that two builds of one
# commit differ only where the compilers' output does.
if [ -z "${SOURCE_DATE_EPOCH:-}" ]; then
	SOURCE_DATE_EPOCH=$(git log -1 --format=%ct 2>/dev/null || stat -c %Y pg_keeper.control)
fi
export SOURCE_DATE_EPOCH

mkdir -p "$DIST_DIR"
out=$DIST_DIR/${package}_${version}_${arch}.deb
dpkg-deb --root-owner-group -Zxz --build "$root" "$out" >/dev/null
echo "$out"
