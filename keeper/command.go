package keeper

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"os/exec"
	"strings"
	"syscall"
	"time"
)

// commandPath is the PATH given to after_command: the worker's environment
// is empty (PostgreSQL reuses it for the process title).
const commandPath = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

// maxOutputLines bounds what a chatty command can put into the server log.
const maxOutputLines = 50

// CommandResult is how after_command or state_change_command ended.
type CommandResult struct {
	Output   []string // its lines of stdout and stderr, at most maxOutputLines
	Duration time.Duration
	Err      error // nil when it exited with status 0
	ExitCode int   // -1 when it did not exit by itself (not started, killed)
}

// runCommand runs cmdline with /bin/sh in a process group of its own, so
// that a timeout kills the command and everything it started. It is not
// cancelled when the server stops: a STONITH half done is worse than one
// that finishes.
// setting names the GUC that set the timeout, for the error.
func runCommand(cmdline string, timeout time.Duration, setting string, env []string) CommandResult {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()

	var out bytes.Buffer
	cmd := exec.Command("/bin/sh", "-c", cmdline)
	cmd.Env = append([]string{"PATH=" + commandPath}, env...)
	cmd.Stdout, cmd.Stderr = &out, &out
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	// A background child that keeps the output pipe open must not hold us.
	cmd.WaitDelay = time.Second

	start := time.Now()
	if err := cmd.Start(); err != nil {
		return CommandResult{Err: err, ExitCode: -1}
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()

	var err error
	select {
	case err = <-done:
		// Exit status 0, but a background child still holds the output
		// pipe: the command itself succeeded.
		if errors.Is(err, exec.ErrWaitDelay) && cmd.ProcessState.Success() {
			err = nil
		}
	case <-ctx.Done():
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		<-done
		err = fmt.Errorf("killed after the timeout of %s (%s)", timeout, setting)
	}
	return CommandResult{Duration: time.Since(start), Err: err, Output: lines(out.String()),
		ExitCode: cmd.ProcessState.ExitCode()}
}

func lines(s string) []string {
	var ls []string
	sc := bufio.NewScanner(strings.NewReader(s))
	for sc.Scan() {
		if len(ls) == maxOutputLines {
			ls = append(ls, "(more output dropped)")
			break
		}
		ls = append(ls, sc.Text())
	}
	return ls
}
