package command

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/pg-keeper/pg_keeper/keeper/internal/testproc"
	"github.com/stretchr/testify/require"
)

func TestRunCommandSuccess(t *testing.T) {
	res := Run("echo one; echo two >&2; echo three", 5*time.Second, "pg_keeper.after_command_timeout", nil)
	require.NoError(t, res.Err)
	require.Equal(t, []string{"one", "two", "three"}, res.Output)
	require.Greater(t, res.Duration, time.Duration(0))
	require.Less(t, res.Duration, 5*time.Second)
}

func TestRunCommandNoOutput(t *testing.T) {
	res := Run("true", 5*time.Second, "pg_keeper.after_command_timeout", nil)
	require.NoError(t, res.Err)
	require.Nil(t, res.Output)
}

func TestRunCommandFailure(t *testing.T) {
	res := Run("echo bad; exit 3", 5*time.Second, "pg_keeper.after_command_timeout", nil)
	require.EqualError(t, res.Err, "exit status 3")
	var exitErr *exec.ExitError
	require.True(t, errors.As(res.Err, &exitErr))
	require.Equal(t, 3, exitErr.ExitCode())
	require.Equal(t, []string{"bad"}, res.Output)
}

func TestRunCommandTimeout(t *testing.T) {
	t.Parallel()
	start := time.Now()
	res := Run("echo before; sleep 30; echo after", 300*time.Millisecond, "pg_keeper.after_command_timeout", nil)
	elapsed := time.Since(start)
	require.Less(t, elapsed, 5*time.Second)
	// The timeout runs from before the command is started, Duration from
	// after: under load Duration can be a little short of the timeout.
	require.GreaterOrEqual(t, elapsed, 300*time.Millisecond)
	require.Greater(t, res.Duration, 200*time.Millisecond)
	require.LessOrEqual(t, res.Duration, elapsed)
	require.EqualError(t, res.Err, "killed after the timeout of 300ms (pg_keeper.after_command_timeout)")
	require.Equal(t, []string{"before"}, res.Output)
}

func TestRunCommandTimeoutKillsBackgroundChild(t *testing.T) {
	t.Parallel()
	start := time.Now()
	res := Run("sleep 30 & echo $!; echo started", 300*time.Millisecond, "pg_keeper.after_command_timeout", nil)
	require.Less(t, time.Since(start), 900*time.Millisecond, "returns at the timeout, before WaitDelay")
	require.EqualError(t, res.Err, "killed after the timeout of 300ms (pg_keeper.after_command_timeout)")
	require.Len(t, res.Output, 2)
	require.Equal(t, "started", res.Output[1])
	pid, err := strconv.Atoi(res.Output[0])
	require.NoError(t, err)
	testproc.WaitGone(t, pid)
}

func TestRunCommandBackgroundChildDoesNotHoldUs(t *testing.T) {
	t.Parallel()
	// The child keeps the output pipe open; Run gives up on it after
	// WaitDelay (1s) instead of waiting for it.
	start := time.Now()
	res := Run("sleep 30 & echo $!; echo started", 10*time.Second, "pg_keeper.after_command_timeout", nil)
	require.Less(t, time.Since(start), 3*time.Second)
	require.Len(t, res.Output, 2)
	pid, err := strconv.Atoi(res.Output[0])
	require.NoError(t, err)
	t.Cleanup(func() { _ = syscall.Kill(pid, syscall.SIGKILL) })
	require.Equal(t, "started", res.Output[1])
}

// BUG: a command that exits with status 0 but leaves a background child
// holding its output is reported as failed.
func TestRunCommandBackgroundChildExitZeroIsSuccess(t *testing.T) {
	res := Run("sleep 30 & echo $!; echo started", 10*time.Second, "pg_keeper.after_command_timeout", nil)
	if len(res.Output) > 0 {
		if pid, err := strconv.Atoi(res.Output[0]); err == nil {
			t.Cleanup(func() { _ = syscall.Kill(pid, syscall.SIGKILL) })
		}
	}
	require.NoError(t, res.Err)
}

func TestRunCommandEnvironment(t *testing.T) {
	t.Setenv("HOME", "/home/should-not-leak")
	t.Setenv("PG_KEEPER_TEST_LEAK", "leaked")
	res := Run("env", 5*time.Second, "pg_keeper.after_command_timeout", []string{
		"PG_KEEPER_EVENT=promote", "PG_KEEPER_DATA_DIR=/data/pg"})
	require.NoError(t, res.Err)
	require.Contains(t, res.Output, "PATH="+commandPath)
	require.Contains(t, res.Output, "PG_KEEPER_EVENT=promote")
	require.Contains(t, res.Output, "PG_KEEPER_DATA_DIR=/data/pg")
	for _, l := range res.Output {
		require.False(t, strings.HasPrefix(l, "HOME="), l)
		require.False(t, strings.HasPrefix(l, "PG_KEEPER_TEST_LEAK="), l)
	}
	// Only what the shell adds by itself besides.
	for _, l := range res.Output {
		name, _, _ := strings.Cut(l, "=")
		require.Contains(t, []string{"PATH", "PG_KEEPER_EVENT", "PG_KEEPER_DATA_DIR", "PWD", "SHLVL", "_", "OLDPWD"}, name)
	}
}

func TestRunCommandOutputLimit(t *testing.T) {
	res := Run("seq 1 100", 5*time.Second, "pg_keeper.after_command_timeout", nil)
	require.NoError(t, res.Err)
	require.Len(t, res.Output, maxOutputLines+1)
	require.Equal(t, "1", res.Output[0])
	require.Equal(t, strconv.Itoa(maxOutputLines), res.Output[maxOutputLines-1])
	// What seq 51 100 prints.
	dropped := 0
	for i := maxOutputLines + 1; i <= 100; i++ {
		dropped += len(strconv.Itoa(i)) + 1
	}
	require.Equal(t, fmt.Sprintf("(output cut: %d more bytes dropped)", dropped), res.Output[maxOutputLines])

	res = Run(fmt.Sprintf("seq 1 %d", maxOutputLines), 5*time.Second, "pg_keeper.after_command_timeout", nil)
	require.NoError(t, res.Err)
	require.Len(t, res.Output, maxOutputLines)
	require.Equal(t, strconv.Itoa(maxOutputLines), res.Output[maxOutputLines-1])
}

// outputOf writes s to a boundedOutput in chunks of size n.
func outputOf(s string, n int) []string {
	var o boundedOutput
	for len(s) > n {
		_, _ = o.Write([]byte(s[:n]))
		s = s[n:]
	}
	if s != "" {
		_, _ = o.Write([]byte(s))
	}
	return o.Lines()
}

func TestBoundedOutputLines(t *testing.T) {
	for _, n := range []int{1, 2, 3, 7, 1 << 20} {
		require.Nil(t, outputOf("", n))
		require.Equal(t, []string{"a"}, outputOf("a", n))
		require.Equal(t, []string{"a", "", "b"}, outputOf("a\n\nb\n", n))
		require.Equal(t, []string{"a", "b"}, outputOf("a\r\nb\r\n", n))
		require.Equal(t, []string{"a\rb"}, outputOf("a\rb", n))

		// A line of exactly maxLineBytes, with or without "\r", is whole.
		full := strings.Repeat("x", maxLineBytes)
		require.Equal(t, []string{full, "y"}, outputOf(full+"\r\ny\n", n))
		require.Equal(t, []string{full, "y"}, outputOf(full+"\ny", n))
		// One byte more is cut, and the byte counted.
		require.Equal(t, []string{full + cutMark, "y", "(output cut: 1 more bytes dropped)"},
			outputOf(full+"z\ny\n", n))
		require.Equal(t, []string{full + cutMark, "(output cut: 2 more bytes dropped)"},
			outputOf(full+"z\r\n", n))
		long := strings.Repeat("z", 10*maxLineBytes)
		cut := long[:maxLineBytes] + cutMark
		require.Equal(t, []string{"a", cut, "b", "(output cut: 4608 more bytes dropped)"},
			outputOf("a\n"+long+"\nb", n))
		require.Equal(t, []string{cut, "(output cut: 4608 more bytes dropped)"}, outputOf(long, n))

		// A UTF-8 character across the bound is dropped whole.
		utf := strings.Repeat("x", maxLineBytes-1) + "é"
		require.Equal(t, []string{utf[:maxLineBytes-1] + cutMark, "(output cut: 2 more bytes dropped)"}, outputOf(utf, n))
		utf = strings.Repeat("x", maxLineBytes-2) + "€€"
		require.Equal(t, []string{utf[:maxLineBytes-2] + cutMark, "(output cut: 6 more bytes dropped)"}, outputOf(utf, n))
		// Not UTF-8: cut at the bound.
		bin := strings.Repeat("\x80", maxLineBytes+4)
		require.Equal(t, []string{bin[:maxLineBytes] + cutMark, "(output cut: 4 more bytes dropped)"}, outputOf(bin, n))

		// Past maxOutputLines only bytes are counted, newlines included.
		var sb strings.Builder
		for i := 0; i < maxOutputLines; i++ {
			sb.WriteString("l\n")
		}
		out := outputOf(sb.String()+"rest\nmore", n)
		require.Len(t, out, maxOutputLines+1)
		require.Equal(t, "l", out[maxOutputLines-1])
		require.Equal(t, "(output cut: 9 more bytes dropped)", out[maxOutputLines])
		require.Len(t, outputOf(sb.String(), n), maxOutputLines)
	}
}

// Writes from several goroutines (stdout and stderr copied apart) keep
// lines whole and the memory bounded.
func TestBoundedOutputConcurrent(t *testing.T) {
	var o boundedOutput
	var wg sync.WaitGroup
	for g := 0; g < 4; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			line := []byte(strings.Repeat("w", 100) + "\n")
			for i := 0; i < 10000; i++ {
				_, _ = o.Write(line)
			}
		}()
	}
	wg.Wait()
	out := o.Lines()
	require.Len(t, out, maxOutputLines+1)
	for _, l := range out[:maxOutputLines] {
		require.Equal(t, strings.Repeat("w", 100), l)
	}
	require.Equal(t, fmt.Sprintf("(output cut: %d more bytes dropped)", (4*10000-maxOutputLines)*101), out[maxOutputLines])
}

var droppedLine = regexp.MustCompile(`^\(output cut: ([0-9]+) more bytes dropped\)$`)

// requireBounded checks the shape of a chatty command's output and returns
// how many bytes it says were dropped.
func requireBounded(t *testing.T, out []string) int64 {
	t.Helper()
	require.NotEmpty(t, out)
	require.LessOrEqual(t, len(out), maxOutputLines+1)
	for _, l := range out {
		require.LessOrEqual(t, len(l), maxLineBytes+len(cutMark))
	}
	m := droppedLine.FindStringSubmatch(out[len(out)-1])
	require.NotNil(t, m, "last line: %q", out[len(out)-1])
	n, err := strconv.ParseInt(m[1], 10, 64)
	require.NoError(t, err)
	return n
}

// BUG: all the output was buffered until the command ended: a fencing
// script printing in a loop grew the worker until the OOM killer took it,
// and the whole server crash-restarted.
func TestRunCommandChattyStaysBounded(t *testing.T) {
	for _, tc := range []struct{ name, cmdline string }{
		{"yes", "yes"},
		{"long lines", "yes " + strings.Repeat("0123456789", 300)},
		{"shell loop", `while :; do echo "fencing 10.0.0.1 failed, retrying"; echo "again" >&2; done`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			runtime.GC()
			var before runtime.MemStats
			runtime.ReadMemStats(&before)
			peak := before.HeapAlloc
			stop := make(chan struct{})
			sampled := make(chan struct{})
			go func() {
				defer close(sampled)
				var ms runtime.MemStats
				for {
					select {
					case <-stop:
						return
					case <-time.After(50 * time.Millisecond):
					}
					runtime.ReadMemStats(&ms)
					peak = max(peak, ms.HeapAlloc)
				}
			}()
			res := Run(tc.cmdline, 2*time.Second, "pg_keeper.after_command_timeout", nil)
			close(stop)
			<-sampled
			var after runtime.MemStats
			runtime.ReadMemStats(&after)
			peak = max(peak, after.HeapAlloc)

			require.EqualError(t, res.Err, "killed after the timeout of 2s (pg_keeper.after_command_timeout)")
			dropped := requireBounded(t, res.Output)
			require.Len(t, res.Output, maxOutputLines+1)
			require.Greater(t, dropped, int64(1<<20), "the command printed for 2 s")
			growth := int64(peak) - int64(before.HeapAlloc)
			allocated := after.TotalAlloc - before.TotalAlloc
			t.Logf("dropped %d bytes; heap grew by %d bytes at most, %d bytes allocated", dropped, growth, allocated)
			// Unbuffered, it was a GB or two.
			require.Less(t, growth, int64(8<<20), "heap growth")
		})
	}
}

func TestRunCommandLongLineCut(t *testing.T) {
	// 1 MB, no newline.
	res := Run("head -c 1000000 /dev/zero | tr '\\0' x", 10*time.Second, "pg_keeper.after_command_timeout", nil)
	require.NoError(t, res.Err)
	require.Equal(t, []string{strings.Repeat("x", maxLineBytes) + cutMark,
		fmt.Sprintf("(output cut: %d more bytes dropped)", 1000000-maxLineBytes)}, res.Output)

	// Lines longer than bufio.Scanner's 64 KB, then short ones.
	res = Run("head -c 100000 /dev/zero | tr '\\0' y; echo; echo short", 10*time.Second, "pg_keeper.after_command_timeout", nil)
	require.NoError(t, res.Err)
	require.Equal(t, []string{strings.Repeat("y", maxLineBytes) + cutMark, "short",
		fmt.Sprintf("(output cut: %d more bytes dropped)", 100000-maxLineBytes)}, res.Output)
}

// The command line runs as /bin/sh -c would run it alone: the SIGPIPE
// prefix changes neither its output, its line numbers, $0 nor its status.
func TestRunCommandSameAsShell(t *testing.T) {
	for _, cmdline := range []string{
		"exit 3",
		"false; exit",
		"echo $?",
		`printf '%s|' "a  b" 'c"d' "e'f" \$HOME; echo`,
		"echo one\necho two\n\n  exit 4",
		"# a comment first\necho after the comment",
		"cat <<EOF\nheredoc $((1+2))\nEOF",
		"echo \"$0\" $# \"$*\"",
		"no_such_command_pgk",
		"echo ok\nno_such_command_pgk_on_line_2",
		"if then",
		"f() { echo in f \"$@\"; return 5; }; f x y",
		"set -e; false; echo not reached",
		"trap 'echo bye' EXIT; echo hi",
		// The one difference, meant: kill -PIPE $$ no longer kills it.
	} {
		t.Run(cmdline, func(t *testing.T) {
			plain := exec.Command("/bin/sh", "-c", cmdline)
			plain.Env = []string{"PATH=" + commandPath}
			want, _ := plain.CombinedOutput()
			res := Run(cmdline, 5*time.Second, "pg_keeper.after_command_timeout", nil)
			require.Equal(t, plain.ProcessState.ExitCode(), res.ExitCode, "exit code")
			require.Equal(t, outputOf(string(want), 1<<20), res.Output)
		})
	}
}

// sigpipeScript writes after its reader is gone, then leaves a marker.
func sigpipeScript(marker string) string {
	return fmt.Sprintf("sleep 1; echo after; echo after >&2; sh -c 'echo grandchild'; echo survived > %s", marker)
}

// runWithClosedPipe starts cmd with stdout and stderr on a pipe whose read
// end is closed at once, as when the worker exits (the server stops) while
// the command runs, and waits for it.
func runWithClosedPipe(t *testing.T, cmd *exec.Cmd) error {
	t.Helper()
	r, w, err := os.Pipe()
	require.NoError(t, err)
	cmd.Stdout, cmd.Stderr = w, w
	require.NoError(t, cmd.Start())
	require.NoError(t, w.Close())
	require.NoError(t, r.Close())
	return cmd.Wait()
}

// BUG: when the worker exited while after_command ran, the command died of
// SIGPIPE at its next write: a server stop cut a STONITH in half.
func TestShellCommandSurvivesClosedOutput(t *testing.T) {
	dir := t.TempDir()

	// The setup reproduces the bug: a plain /bin/sh started from Go dies
	// of SIGPIPE, even though this process handles SIGPIPE.
	marker := filepath.Join(dir, "plain")
	err := runWithClosedPipe(t, exec.Command("/bin/sh", "-c", sigpipeScript(marker)))
	var exitErr *exec.ExitError
	require.True(t, errors.As(err, &exitErr), "%v", err)
	ws := exitErr.Sys().(syscall.WaitStatus)
	require.True(t, ws.Signaled() && ws.Signal() == syscall.SIGPIPE, "%v", err)
	require.NoFileExists(t, marker)

	marker = filepath.Join(dir, "keeper")
	cmd := shellCommand(sigpipeScript(marker))
	cmd.Env = append(cmd.Env, "HOME="+dir)
	err = runWithClosedPipe(t, cmd)
	require.NoError(t, err, "the writes fail, the command goes on")
	b, err := os.ReadFile(marker)
	require.NoError(t, err)
	require.Equal(t, "survived\n", string(b))
}

// Also through Run: what the command and its children inherit.
func TestRunCommandIgnoresSIGPIPE(t *testing.T) {
	res := Run("grep '^SigIgn' /proc/self/status; sh -c 'grep ^SigIgn /proc/self/status'", 5*time.Second,
		"pg_keeper.after_command_timeout", nil)
	require.NoError(t, res.Err)
	require.Len(t, res.Output, 2)
	for _, l := range res.Output {
		_, hex, ok := strings.Cut(l, ":")
		require.True(t, ok, l)
		mask, err := strconv.ParseUint(strings.TrimSpace(hex), 16, 64)
		require.NoError(t, err, l)
		require.NotZero(t, mask&(1<<(uint(syscall.SIGPIPE)-1)), "SIGPIPE not ignored: %s", l)
	}
}
