// Package command runs after_command and the state-change command: /bin/sh
// in a process group of its own, killed at its timeout, its output bounded,
// with SIGPIPE ignored so that it outlives the worker that started it.
package command

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os/exec"
	"sync"
	"syscall"
	"time"
	"unicode/utf8"
)

// commandPath is the PATH given to after_command: the worker's environment
// is empty (PostgreSQL reuses it for the process title).
const commandPath = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

// maxOutputLines bounds what a chatty command can put into the server log.
const maxOutputLines = 50

// maxLineBytes bounds each line of output kept; a longer line is cut (on
// a UTF-8 character boundary when it is UTF-8) and ends with cutMark.
const maxLineBytes = 512

const cutMark = "…"

// Result is how after_command or state_change_command ended.
type Result struct {
	// Its lines of stdout and stderr: at most maxOutputLines, each at most
	// maxLineBytes (and cutMark), then, if anything was dropped, one line
	// that says how much.
	Output   []string
	Duration time.Duration
	Err      error // nil when it exited with status 0
	ExitCode int   // -1 when it did not exit by itself (not started, killed)
}

// ignoreSIGPIPE is run by the shell before the command line. When the
// worker exits (the server stops) while the command runs, the read end of
// its output pipe closes; with the default disposition the command, or
// whatever it started, would die of SIGPIPE at its next write, and a server
// stop must not cut a STONITH in half. The Go runtime resets the signals it
// handles, SIGPIPE among them, to their default in the child, whatever
// PostgreSQL set in the worker, so the shell sets SIG_IGN itself: an ignored
// signal stays ignored across fork and exec, for the command and everything
// it starts, and a write to the closed pipe fails with EPIPE instead.
// It is joined with "; " rather than a newline so that the shell's messages
// ("/bin/sh: 1: foo: not found") keep the user's line numbers; a comment on
// the first line still ends at its newline. $0 and the exit status are
// those of the command line alone.
const ignoreSIGPIPE = "trap '' PIPE; "

// shellCommand is the process that runs cmdline: /bin/sh with SIGPIPE
// ignored, in a process group of its own, with only PATH in its
// environment.
func shellCommand(cmdline string) *exec.Cmd {
	cmd := exec.Command("/bin/sh", "-c", ignoreSIGPIPE+cmdline)
	cmd.Env = []string{"PATH=" + commandPath}
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	// A background child that keeps the output pipe open must not hold us.
	cmd.WaitDelay = time.Second
	return cmd
}

// Run runs cmdline with /bin/sh in a process group of its own, so
// that a timeout kills the command and everything it started. It is not
// cancelled when the server stops: a STONITH half done is worse than one
// that finishes (see ignoreSIGPIPE).
// setting names the GUC that set the timeout, for the error.
func Run(cmdline string, timeout time.Duration, setting string, env []string) Result {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()

	// One writer (a pointer, so comparable) for both: exec then makes one
	// pipe and one goroutine copies it, and the output keeps its order.
	out := &boundedOutput{}
	cmd := shellCommand(cmdline)
	cmd.Env = append(cmd.Env, env...)
	cmd.Stdout, cmd.Stderr = out, out

	start := time.Now()
	if err := cmd.Start(); err != nil {
		return Result{Err: err, ExitCode: -1}
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
	return Result{Duration: time.Since(start), Err: err, Output: out.Lines(),
		ExitCode: cmd.ProcessState.ExitCode()}
}

// boundedOutput is the output of a command as lines, in bounded memory
// (about maxOutputLines × maxLineBytes) whatever the command prints: it
// keeps the first maxOutputLines lines, each cut to maxLineBytes, and only
// counts the rest. It consumes everything, so that the command never
// blocks on a full pipe. Write is safe for concurrent use.
type boundedOutput struct {
	mu      sync.Mutex
	lines   []string
	cur     []byte // the line being read: at most maxLineBytes+1 bytes
	curCut  bool   // cur lost bytes past maxLineBytes+1
	dropped int64  // bytes not kept, besides the newlines ending kept lines
}

func (o *boundedOutput) Write(p []byte) (int, error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	n := len(p)
	for len(p) > 0 {
		if len(o.lines) == maxOutputLines {
			o.dropped += int64(len(p))
			break
		}
		i := bytes.IndexByte(p, '\n')
		chunk := p
		if i >= 0 {
			chunk = p[:i]
		}
		// One byte over the bound tells a line of maxLineBytes ending
		// in "\r\n" from one that is too long.
		if room := maxLineBytes + 1 - len(o.cur); len(chunk) > room {
			o.cur = append(o.cur, chunk[:room]...)
			o.dropped += int64(len(chunk) - room)
			o.curCut = true
		} else {
			o.cur = append(o.cur, chunk...)
		}
		if i < 0 {
			break
		}
		o.endLine()
		p = p[i+1:]
	}
	return n, nil
}

// endLine keeps the line in cur, cut if need be, and empties cur.
func (o *boundedOutput) endLine() {
	b := o.cur
	if !o.curCut && len(b) > 0 && b[len(b)-1] == '\r' {
		b = b[:len(b)-1]
	}
	line := string(b)
	if len(b) > maxLineBytes {
		cut := maxLineBytes
		// Do not split a UTF-8 character: back up to its first byte.
		for i := maxLineBytes; i > maxLineBytes-utf8.UTFMax; i-- {
			if utf8.RuneStart(b[i]) {
				cut = i
				break
			}
		}
		o.dropped += int64(len(b) - cut)
		line = string(b[:cut]) + cutMark
	} else if o.curCut {
		line += cutMark
	}
	o.lines = append(o.lines, line)
	o.cur, o.curCut = o.cur[:0], false
}

// Lines returns the lines kept, the last one even without its newline,
// then, if anything was dropped, a line that says how much; nil if there
// was no output. Call it once the writes are over.
func (o *boundedOutput) Lines() []string {
	o.mu.Lock()
	defer o.mu.Unlock()
	if len(o.cur) > 0 || o.curCut {
		o.endLine()
	}
	ls := o.lines
	if o.dropped > 0 {
		ls = append(ls[:len(ls):len(ls)], fmt.Sprintf("(output cut: %d more bytes dropped)", o.dropped))
	}
	return ls
}
