package cluster

import (
	"os"
	"regexp"
	"strings"
	"testing"
	"time"
)

// Log returns the whole server log written so far ("" before the first start).
func (n *Node) Log() string {
	b, _ := os.ReadFile(n.LogFile)
	return string(b)
}

// LogMark returns the current size of the log, to pass to LogSince or
// WaitForLog so that only lines written after this point are considered.
func (n *Node) LogMark() int {
	st, err := os.Stat(n.LogFile)
	if err != nil {
		return 0
	}
	return int(st.Size())
}

// LogSince returns the log written after mark.
func (n *Node) LogSince(mark int) string {
	s := n.Log()
	if mark < 0 || mark > len(s) {
		mark = 0
	}
	return s[mark:]
}

// LogTail returns the last lines lines of the log.
func (n *Node) LogTail(lines int) string {
	s := strings.TrimRight(n.Log(), "\n")
	all := strings.Split(s, "\n")
	if len(all) > lines {
		all = all[len(all)-lines:]
	}
	return strings.Join(all, "\n")
}

// WaitForLog polls the log after mark until a line matches re and returns
// that line. On timeout it fails the test and shows the log tail.
func (n *Node) WaitForLog(t testing.TB, mark int, re *regexp.Regexp, timeout time.Duration) string {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		if line, ok := findLine(n.LogSince(mark), re); ok {
			return line
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: no log line matched %q within %v; log tail:\n%s",
				n.Name, re, timeout, n.LogTail(60))
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// findLine returns the first complete or partial line of s matching re.
func findLine(s string, re *regexp.Regexp) (string, bool) {
	for _, line := range strings.Split(s, "\n") {
		if re.MatchString(line) {
			return line, true
		}
	}
	return "", false
}

// KeeperLines returns the last n lines pg_keeper wrote (all of them when n
// is negative), which a busy server's own lines (a WAL receiver retrying,
// say) push out of a tail.
func KeeperLines(log string, n int) string {
	var lines []string
	for _, l := range strings.Split(log, "\n") {
		if strings.Contains(l, "pg_keeper: ") {
			lines = append(lines, l)
		}
	}
	if n >= 0 {
		lines = lines[max(0, len(lines)-n):]
	}
	return strings.Join(lines, "\n")
}
