package cluster

import (
	"os"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// proc is one entry of /proc, read as root or as the servers' own user.
type proc struct {
	pid, ppid int
	state     byte
	cmdline   string
	cwd       string
}

// readProc reads /proc/PID; ok is false if the process is gone.
func readProc(pid int) (p proc, ok bool) {
	dir := "/proc/" + strconv.Itoa(pid)
	stat, err := os.ReadFile(dir + "/stat")
	if err != nil {
		return p, false
	}
	// The command name in parentheses may hold spaces: parse after the last ')'.
	s := string(stat)
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		return p, false
	}
	fields := strings.Fields(s[i+1:])
	if len(fields) < 2 {
		return p, false
	}
	p.pid = pid
	p.state = fields[0][0]
	p.ppid, _ = strconv.Atoi(fields[1])
	if b, err := os.ReadFile(dir + "/cmdline"); err == nil {
		p.cmdline = strings.TrimSpace(strings.ReplaceAll(string(b), "\x00", " "))
	}
	p.cwd, _ = os.Readlink(dir + "/cwd")
	return p, true
}

// allProcs lists every live (non-zombie) process.
func allProcs() []proc {
	ents, _ := os.ReadDir("/proc")
	var ps []proc
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		if p, ok := readProc(pid); ok && p.state != 'Z' {
			ps = append(ps, p)
		}
	}
	return ps
}

// alive reports whether pid exists and is not a zombie. Zombies count as
// dead: our postmasters are reparented to PID 1 by pg_ctl, and whether that
// reaps promptly is not ours to control.
func alive(pid int) bool {
	if pid <= 0 {
		return false
	}
	p, ok := readProc(pid)
	return ok && p.state != 'Z'
}

// childrenOf returns the live direct children of pid.
func childrenOf(pid int) []proc {
	var out []proc
	for _, p := range allProcs() {
		if p.ppid == pid {
			out = append(out, p)
		}
	}
	return out
}

// underDir reports whether a cwd link points into dir; a removed directory
// reads as "path (deleted)", which still has the prefix.
func underDir(cwd, dir string) bool {
	return cwd == dir || strings.HasPrefix(cwd, dir+"/") || strings.HasPrefix(cwd, dir+" ")
}

// waitGone polls until none of pids is alive, or timeout; it returns the
// ones still alive.
func waitGone(pids []int, timeout time.Duration) []int {
	deadline := time.Now().Add(timeout)
	for {
		var left []int
		for _, pid := range pids {
			if alive(pid) {
				left = append(left, pid)
			}
		}
		if len(left) == 0 || time.Now().After(deadline) {
			return left
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// ProcessTitles returns the process titles (cmdlines) of the postmaster's
// direct children that start with prefix, e.g. "postgres: walsender".
func (n *Node) ProcessTitles(prefix string) []string {
	var out []string
	for _, c := range n.children(prefix) {
		out = append(out, c.cmdline)
	}
	return out
}

// ProcessPIDs is ProcessTitles' processes, by PID.
func (n *Node) ProcessPIDs(prefix string) []int {
	var out []int
	for _, c := range n.children(prefix) {
		out = append(out, c.pid)
	}
	return out
}

// children are the postmaster's live children whose title starts with prefix.
func (n *Node) children(prefix string) []proc {
	pm := n.PostmasterPID()
	if pm == 0 {
		return nil
	}
	var out []proc
	for _, c := range childrenOf(pm) {
		if strings.HasPrefix(c.cmdline, prefix) {
			out = append(out, c)
		}
	}
	return out
}

// WaitForTitle polls the postmaster's children until one title matches re
// and returns it; it fails the test with the titles seen on timeout.
func (n *Node) WaitForTitle(t testing.TB, re *regexp.Regexp, timeout time.Duration) string {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		titles := n.ProcessTitles("postgres: ")
		for _, s := range titles {
			if re.MatchString(s) {
				return s
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: no process title matched %q within %v; titles:\n%s",
				n.Name, re, timeout, strings.Join(titles, "\n"))
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// killLeftovers SIGKILLs every process that belongs to the cluster: those
// whose parent chain reaches one of the postmasters we started, whose cwd is
// under base (a postmaster and its children run in their data directory,
// even after being orphaned), or whose cmdline mentions base. It waits until
// they are gone and returns the ones that would not die.
func killLeftovers(base string, postmasters map[int]bool) []int {
	self := os.Getpid()
	ps := allProcs()
	parent := make(map[int]int, len(ps))
	for _, p := range ps {
		parent[p.pid] = p.ppid
	}
	ours := func(p proc) bool {
		if p.pid == self || p.pid == 1 {
			return false
		}
		if underDir(p.cwd, base) || strings.Contains(p.cmdline, base) {
			return true
		}
		for pid, hops := p.pid, 0; pid > 1 && hops < 64; pid, hops = parent[pid], hops+1 {
			if postmasters[pid] {
				return true
			}
		}
		return false
	}
	var victims []int
	for _, p := range ps {
		if ours(p) {
			victims = append(victims, p.pid)
			_ = syscall.Kill(p.pid, syscall.SIGKILL)
		}
	}
	return waitGone(victims, 10*time.Second)
}

// countProcsUnder counts live processes whose cwd or cmdline points into
// dir; tests use it to check that nothing is left behind.
func countProcsUnder(dir string) int {
	n := 0
	for _, p := range allProcs() {
		if underDir(p.cwd, dir) || strings.Contains(p.cmdline, dir) {
			n++
		}
	}
	return n
}

// Freeze stops the postmaster and all its children with SIGSTOP, as a hung
// machine would look from outside: connections are accepted by the kernel
// but nothing answers. Thaw (also run at cleanup) resumes them.
func (n *Node) Freeze(t testing.TB) {
	t.Helper()
	n.signalAll(t, syscall.SIGSTOP)
	t.Cleanup(func() { n.signalAll(t, syscall.SIGCONT) })
}

// Thaw resumes a frozen node.
func (n *Node) Thaw(t testing.TB) { n.signalAll(t, syscall.SIGCONT) }

func (n *Node) signalAll(t testing.TB, sig syscall.Signal) {
	pid := n.PostmasterPID()
	if pid == 0 {
		return
	}
	// The postmaster first, so that it forks nothing new meanwhile.
	_ = syscall.Kill(pid, sig)
	for _, p := range childrenOf(pid) {
		_ = syscall.Kill(p.pid, sig)
	}
}
