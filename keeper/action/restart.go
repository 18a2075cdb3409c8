package action

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
)

// A server cannot turn itself into a standby while it runs: it must stop,
// perhaps be rewound with pg_rewind, get standby.signal, and start again.
// RestartPlan is a helper process that does that after the keeper is gone:
// detached from the server (its own session, so the server's shutdown does
// not signal it), it waits for the postmaster to exit, and starts the
// server again with the very command line the postmaster recorded in
// postmaster.opts, with the server's stdout and stderr (its log when started
// with pg_ctl -l). Its own lines go there too, prefixed "pg_keeper
// <task>:", and its outcome to ResultFile, which the keeper reports at its
// next start.
type RestartPlan struct {
	Task          string // "switchover" or "rejoin": names it in the log and ResultFile
	DataDir       string
	BinDir        string // where pg_rewind and pg_waldump are: next to postgres
	PostmasterPID int
	Home          string // the OS user's home: libpq finds ~/.pgpass there
	// Rewind: run pg_rewind against Source (a conninfo of the new primary)
	// first. Source is handed over in the environment, never the command
	// line: it may hold a password.
	Rewind bool
	Source string
	// PrimaryConninfo, when not empty, is appended to postgresql.auto.conf:
	// how the restarted server reaches the new primary. Empty: the server's
	// own primary_conninfo setting is used.
	PrimaryConninfo string
}

// ResultFile is where the helper leaves its outcome, as key=value lines
// (task, ok, detail, fork, discarded_commits).
const ResultFile = "pg_keeper.restart_result"

// Start checks what the helper needs and starts it. It returns once the
// helper runs; the helper outlives this process.
func (p RestartPlan) Start() error {
	argv, err := PostmasterCommand(p.DataDir)
	if err != nil {
		return err
	}
	cmd := exec.Command("/bin/sh", append([]string{"-c", restartScript, "pg_keeper-" + p.Task}, argv...)...)
	rewind := "0"
	if p.Rewind {
		rewind = "1"
	}
	cmd.Env = []string{
		"PATH=" + p.BinDir + ":/usr/local/bin:/usr/bin:/bin",
		"HOME=" + p.Home,
		"PGDATA=" + p.DataDir,
		"PGK_TASK=" + p.Task,
		"PGK_BINDIR=" + p.BinDir,
		"PGK_POSTMASTER_PID=" + strconv.Itoa(p.PostmasterPID),
		"PGK_REWIND=" + rewind,
		"PGK_SOURCE=" + p.Source,
		"PGK_PRIMARY_CONNINFO=" + confQuote(p.PrimaryConninfo),
		"PGK_RESULT=" + filepath.Join(p.DataDir, ResultFile),
		// psql and pg_rewind wait for a dead host no longer than this.
		"PGCONNECT_TIMEOUT=5",
	}
	cmd.Dir = p.DataDir
	cmd.Stdout, cmd.Stderr = os.Stdout, os.Stderr
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("could not start the %s helper: %w", p.Task, err)
	}
	return cmd.Process.Release()
}

// RewindBlocked says why pg_rewind cannot rewind this server ("" if it
// can): it needs wal_log_hints or data checksums, the program, and the
// command line to start the server again.
func RewindBlocked(dataDir, binDir string, walLogHints, checksums bool) string {
	switch {
	case !walLogHints && !checksums:
		return "pg_rewind needs wal_log_hints = on or data checksums, and this server has neither"
	case !executable(filepath.Join(binDir, "pg_rewind")):
		return "pg_rewind is not in " + binDir
	}
	if _, err := PostmasterCommand(dataDir); err != nil {
		return err.Error()
	}
	return ""
}

func executable(path string) bool {
	fi, err := os.Stat(path)
	return err == nil && fi.Mode().IsRegular() && fi.Mode()&0o111 != 0
}

// PostmasterCommand is the command line the running postmaster recorded in
// postmaster.opts: the program, then each argument in double quotes
// (PostgreSQL writes them without escaping).
func PostmasterCommand(dataDir string) ([]string, error) {
	b, err := os.ReadFile(filepath.Join(dataDir, "postmaster.opts"))
	if err != nil {
		return nil, fmt.Errorf("cannot tell how this server was started: %w", err)
	}
	line := strings.TrimRight(string(b), "\n")
	prog, rest, _ := strings.Cut(line, ` "`)
	if prog == "" || strings.ContainsAny(prog, "\"") {
		return nil, fmt.Errorf("cannot read postmaster.opts: %q", line)
	}
	argv := []string{prog}
	if rest != "" {
		for _, a := range strings.Split(strings.TrimSuffix(rest, `"`), `" "`) {
			// pg_ctl -D data records the directory as given, relative to
			// where pg_ctl ran: the helper runs elsewhere.
			if len(argv) > 0 && argv[len(argv)-1] == "-D" && !filepath.IsAbs(a) {
				a = dataDir
			}
			argv = append(argv, a)
		}
	}
	return argv, nil
}

// Result is the outcome the helper left, if any.
type Result struct {
	Fields map[string]string
	Found  bool
}

// ReadResult reads ResultFile.
func ReadResult(dataDir string) (Result, error) {
	f, err := os.Open(filepath.Join(dataDir, ResultFile))
	if errors.Is(err, os.ErrNotExist) {
		return Result{}, nil
	}
	if err != nil {
		return Result{}, err
	}
	defer f.Close()
	r := Result{Fields: map[string]string{}, Found: true}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if k, v, ok := strings.Cut(sc.Text(), "="); ok {
			r.Fields[k] = v
		}
	}
	return r, sc.Err()
}

// confQuote writes a value as a postgresql.conf string body, as ALTER
// SYSTEM does: the parser takes backslash escapes too.
func confQuote(s string) string {
	return strings.NewReplacer(`\`, `\\`, "'", "''").Replace(s)
}

// restartScript is the helper. $@ is the postmaster's command line.
const restartScript = `trap '' PIPE HUP INT TERM
say() { printf '%s pg_keeper %s: %s\n' "$(date -u '+%Y-%m-%d %H:%M:%S UTC')" "$PGK_TASK" "$*" >&2; }
oneline() { printf '%s' "$1" | tr '\n' ' '; }
result() { printf '%s\n' "task=$PGK_TASK" "$@" > "$PGK_RESULT.tmp" && mv "$PGK_RESULT.tmp" "$PGK_RESULT"; }
fail() { say "$* (the server stays stopped)"; result "ok=no" "detail=$*"; exit 1; }
restore() { # this server's own configuration files, over the new primary's
	[ -n "$keep" ] || return 0
	cp -p "$keep"/* "$PGDATA"/ && rm -rf "$keep" && keep=
}
keep=
# The postmaster stops within seconds of the fast shutdown the keeper asks
# for; a helper that waited longer would turn some later stop into a restart.
say "waiting for the server (postmaster $PGK_POSTMASTER_PID) to stop"
waited=0
while kill -0 "$PGK_POSTMASTER_PID" 2>/dev/null &&
	[ "$(head -n 1 "$PGDATA/postmaster.pid" 2>/dev/null)" = "$PGK_POSTMASTER_PID" ]; do
	sleep 0.1
	waited=$((waited + 1))
	[ $waited -lt 6000 ] || { say "the server did not stop within 10 minutes: giving up, nothing changed"; exit 1; }
done
say "the server has stopped"
[ -x "$1" ] || fail "cannot start the server again: $1 is not executable"
fork= lsn= commits=0 detail="restarted as a standby without a rewind"
state=$(pg_controldata "$PGDATA" 2>/dev/null | sed -n 's/^Database cluster state: *//p')
# A switchover's clean shutdown streamed every record to the new primary:
# nothing to rewind, and no reason to wait for it or need pg_rewind.
if [ "$PGK_TASK" = switchover ] && [ "$state" = "shut down" ]; then
	PGK_REWIND=0
fi
single() { # the postmaster's own options, in single-user mode
	prog=$1
	shift
	"$prog" --single "$@" template1 </dev/null
}
if [ "$PGK_REWIND" = 1 ]; then
	keep=$(mktemp -d "${TMPDIR:-/tmp}/pg_keeper-rejoin.XXXXXX") || fail "could not make a temporary directory"
	# pg_rewind copies the new primary's configuration files: keep ours.
	for f in "$PGDATA"/*.conf "$PGDATA"/pg_keeper.*; do
		[ -f "$f" ] || continue
		cp -p "$f" "$keep/" || fail "could not keep a copy of $f in $keep"
	done
	# pg_rewind --dry-run refuses a server that crashed (it does the
	# crash recovery only when it rewinds for real): do it first.
	case "$state" in
	"shut down" | "shut down in recovery") ;;
	*)
		say "the server did not shut down cleanly ($state): crash recovery in single-user mode first"
		try=0
		# The old server's processes may take a moment to go.
		until out=$(single "$@" 2>&1); do
			try=$((try + 1))
			[ $try -lt 30 ] || { restore; fail "crash recovery in single-user mode failed: $(oneline "$out")"; }
			sleep 1
		done
		;;
	esac
	# The partner may still be promoting, or restarting: wait for a
	# primary. A freshly promoted one names its new timeline in pg_control
	# only after a checkpoint: without it pg_rewind sees one timeline and
	# finds nothing to rewind, so a failed CHECKPOINT is a failure.
	try=0
	while :; do
		try=$((try + 1))
		out= cp_out=
		if [ "$(psql -X -At -d "$PGK_SOURCE" -c 'SELECT pg_is_in_recovery()' 2>&1)" = f ] &&
			cp_out=$(psql -X -q -d "$PGK_SOURCE" -c CHECKPOINT 2>&1) &&
			out=$(pg_rewind -D "$PGDATA" --source-server="$PGK_SOURCE" --dry-run 2>&1); then
			break
		fi
		[ $try -lt 60 ] || { restore; fail "no primary to rewind against after a minute (CHECKPOINT needs a superuser or pg_checkpoint): $(oneline "$cp_out $out")"; }
		[ $((try % 10)) = 1 ] && say "waiting for a primary to rewind against: $(oneline "$cp_out $out")"
		sleep 1
	done
	say "pg_rewind --dry-run: $(oneline "$out")"
	fork=$(printf '%s\n' "$out" | sed -n 's/.*servers diverged at WAL location \([0-9A-F]*\/[0-9A-F]*\) on timeline \([0-9]*\).*/\1 \2/p' | head -n 1)
	if printf '%s\n' "$out" | grep -q 'no rewind required'; then
		detail="no rewind was needed"
	else
		if [ -n "$fork" ]; then
			lsn=${fork% *} tli=${fork#* }
			commits=$(pg_waldump -p "$PGDATA/pg_wal" -t "$tli" -s "$lsn" -r Transaction 2>/dev/null | grep -c 'desc: COMMIT')
		fi
		say "rewinding: servers diverged at ${lsn:-an unknown point}; $commits transaction(s) committed here after that point will be discarded"
		out=$(pg_rewind -D "$PGDATA" --source-server="$PGK_SOURCE" 2>&1) || {
			restore
			fail "pg_rewind failed, the data directory may be unusable (rebuild it with pg_basebackup): $(oneline "$out")"
		}
		say "pg_rewind: $(oneline "$out")"
		detail="rewound with pg_rewind"
	fi
	restore || fail "could not put this server's configuration files back from $keep"
fi
touch "$PGDATA/standby.signal" || fail "could not create standby.signal"
if [ -n "$PGK_PRIMARY_CONNINFO" ]; then
	printf "primary_conninfo = '%s'\n" "$PGK_PRIMARY_CONNINFO" >> "$PGDATA/postgresql.auto.conf" || fail "could not set primary_conninfo"
fi
result "ok=yes" "detail=$detail" "fork=$lsn" "discarded_commits=$commits"
say "$detail; starting the server as a standby"
# The server must not inherit the conninfos: they may hold a password.
unset PGK_SOURCE PGK_PRIMARY_CONNINFO
exec "$@" </dev/null
`

// RemoveResult is for the keeper once it has reported the outcome.
func RemoveResult(dataDir string) error { return os.Remove(filepath.Join(dataDir, ResultFile)) }
