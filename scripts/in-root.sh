#!/usr/bin/env bash
# Runs a command inside the root made by scripts/pg-root.sh MAJOR, in this
# source tree (mounted at /src), with this machine's Go. The mounts live in
# a mount namespace of their own, so they go away with the command, whatever
# way it ends. As root.
#
#   scripts/in-root.sh 17 scripts/suite.sh
set -euo pipefail
cd "$(dirname "$0")/.."

major=${1:?usage: scripts/in-root.sh MAJOR COMMAND...}
shift
root=${PG_KEEPER_ROOTS:-/var/cache/pg_keeper/roots}/pg$major
if [ ! -f "$root/.debootstrap-done" ]; then
	echo "no root for PostgreSQL $major: run scripts/pg-root.sh $major" >&2
	exit 1
fi
src=$(pwd)
goroot=$(PATH=$PATH:/usr/local/go/bin go env GOROOT)
gomodcache=$(PATH=$PATH:/usr/local/go/bin go env GOMODCACHE)
# Go as this machine has it set up (the module proxy, toolchain choice).
goenv=$(PATH=$PATH:/usr/local/go/bin go env GOPROXY GOSUMDB GOTOOLCHAIN | paste -sd' ')
read -r goproxy gosumdb gotoolchain <<<"$goenv"
mkdir -p "$gomodcache"
cp /etc/resolv.conf "$root/etc/resolv.conf"

export root src goroot gomodcache goproxy gosumdb gotoolchain
exec unshare --mount --propagation private -- bash -euo pipefail -c '
	mkdir -p "$root/src" "$root/usr/local/go" "$root/gomodcache" "$root/.oldroot"
	mount --bind "$root" "$root"
	mount -t proc proc "$root/proc"
	mount --rbind /sys "$root/sys"
	mount --rbind /dev "$root/dev"
	mount -t tmpfs -o mode=755 tmpfs "$root/run"
	mount --bind "$src" "$root/src"
	mount --bind "$goroot" "$root/usr/local/go"
	mount --bind "$gomodcache" "$root/gomodcache"
	# pivot_root, not a plain chroot: the root must be the mount
	# namespace'"'"'s own, or "ip netns exec" cannot make it a slave mount,
	# and /proc/PID/cwd of a server started in a network namespace reads
	# as a path outside the root.
	cd "$root"
	pivot_root . .oldroot
	exec /usr/bin/env -i \
		PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin:/usr/local/go/bin \
		HOME=/root LANG=C.UTF-8 GOMODCACHE=/gomodcache GOFLAGS=-buildvcs=false \
		GOPROXY="$goproxy" GOSUMDB="$gosumdb" GOTOOLCHAIN="$gotoolchain" \
		PG_KEEPER_IN_ROOT="'"$major"'" \
		bash -c "umount -l /.oldroot && cd /src && exec \"\$@\"" bash "$@"
' bash "$@"
