package keeper

import (
	"context"
	"errors"
	"fmt"
	ct "github.com/pg-keeper/pg_keeper/keeper/core/coretest"
	"github.com/pg-keeper/pg_keeper/keeper/settings"
	"net"
	"regexp"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pg-keeper/pg_keeper/keeper/probe"

	"github.com/pg-keeper/pg_keeper/keeper/internal/fakepg"

	"github.com/jackc/pgx/v5/pgproto3"
	"github.com/pg-keeper/pg_keeper/keeper/core"
	"github.com/pg-keeper/pg_keeper/keeper/publish"
	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"
)

// fakeHost is the server as Run sees it. Run calls it from its own
// goroutine only; the test reads what it recorded under mu.
type fakeHost struct {
	shutdown     chan struct{}
	shutdownOnce sync.Once

	mu           sync.Mutex
	raw          settings.Raw
	settingsErr  error
	inRecovery   bool
	recoveryErr  error
	timeline     int   // what Timeline returns
	timelineErr  error // what Timeline fails with, returning 0
	timelines    int   // Timeline calls
	keepalives   int   // EmitKeepalive calls
	fences       []core.Fence
	fenceAt      []int                    // len(logs) at each SetFence call
	fenceErr     func(f core.Fence) error // what SetFence(f) fails with; nil: it succeeds
	fence        core.Fence               // the fence as the server holds it: what the last successful SetFence set
	fenceReadErr error                    // what Fence fails with
	fenceReads   int                      // Fence calls
	replication  int                      // what ReplicationState returns
	replErr      error                    // what ReplicationState fails with, returning 0
	replReads    int                      // ReplicationState calls
	panicIn      string                   // a method name that panics with "boom"
	waitErr      error
	reload       bool // the next Wait reports WakeReload
	logs         []core.LogLine
	titles       []string
	waits        []time.Duration
	watches      []Watch
	watchWakes   int    // the Waits that ended for what they watched
	goroutine    uint64 // the goroutine of the first call
	strayCalls   []string
	statuses     [][]byte  // what PublishStatus got, in order
	events       [][]byte  // what pg_keeper.events() would show
	requests     []Request // SQL sessions' requests not yet taken: TakeRequest pops the first
	requestErr   error     // what TakeRequest fails with
	answers      []answer  // what AnswerRequest got, in order
}

// answer is one AnswerRequest call.
type answer struct {
	seq uint32
	ok  bool
	msg string
}

func newFakeHost(raw settings.Raw) *fakeHost {
	return &fakeHost{shutdown: make(chan struct{}), raw: raw}
}

// confirmedHost is a server whose fence an earlier worker opened: a master
// keeper (re)started on it is confirmed already and starts in MasterReady.
func confirmedHost(raw settings.Raw) *fakeHost {
	h := newFakeHost(raw)
	h.fence = core.FenceOpen
	return h
}

func goroutineID() uint64 {
	var buf [64]byte
	s := string(buf[:runtime.Stack(buf[:], false)]) // "goroutine 18 [running]: ..."
	id, _ := strconv.ParseUint(strings.Fields(s)[1], 10, 64)
	return id
}

// called records which goroutine calls the host; h.mu must be held.
func (h *fakeHost) called(method string) {
	id := goroutineID()
	if h.goroutine == 0 {
		h.goroutine = id
	} else if id != h.goroutine {
		h.strayCalls = append(h.strayCalls, method)
	}
	if h.panicIn == method {
		panic("boom")
	}
}

func (h *fakeHost) Log(level core.Level, msg string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.called("Log")
	h.logs = append(h.logs, core.LogLine{Level: level, Msg: msg})
}

func (h *fakeHost) SetTitle(title string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.called("SetTitle")
	h.titles = append(h.titles, title)
}

func (h *fakeHost) Settings() (settings.Raw, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.called("Settings")
	return h.raw, h.settingsErr
}

func (h *fakeHost) InRecovery() (bool, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.called("InRecovery")
	return h.inRecovery, h.recoveryErr
}

func (h *fakeHost) Timeline() (int, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.called("Timeline")
	h.timelines++
	if h.timelineErr != nil {
		return 0, h.timelineErr // as pgext's Bridge does
	}
	return h.timeline, nil
}

// SetFence records every call, the failed ones too.
func (h *fakeHost) SetFence(f core.Fence) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.called("SetFence")
	h.fences = append(h.fences, f)
	h.fenceAt = append(h.fenceAt, len(h.logs))
	if h.fenceErr != nil {
		if err := h.fenceErr(f); err != nil {
			return err
		}
	}
	h.fence = f
	return nil
}

// Fence is what the last successful SetFence set: the fence outlives a
// runner (a worker restart), as the server's shared memory does.
func (h *fakeHost) Fence() (core.Fence, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.called("Fence")
	h.fenceReads++
	if h.fenceReadErr != nil {
		return core.FenceUnconfirmed, h.fenceReadErr
	}
	return h.fence, nil
}

// ReplicationState is what the test set: the server's own streaming
// replication connections (a standby's WAL receiver, a master's walsenders).
func (h *fakeHost) ReplicationState() (int, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.called("ReplicationState")
	h.replReads++
	if h.replErr != nil {
		return 0, h.replErr // as pgext's Bridge does
	}
	return h.replication, nil
}

// CommitCounter: no commit is ever under way on the fake server.
func (h *fakeHost) CommitCounter() func() int { return func() int { return 0 } }

func (h *fakeHost) EmitKeepalive() (bool, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.keepalives++
	return true, nil
}

func (h *fakeHost) PublishStatus(json []byte) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.called("PublishStatus")
	h.statuses = append(h.statuses, append([]byte(nil), json...))
	return nil
}

func (h *fakeHost) AddEvent(json []byte) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.called("AddEvent")
	h.events = append(h.events, append([]byte(nil), json...))
	if len(h.events) > publish.EventSlots {
		h.events = h.events[len(h.events)-publish.EventSlots:]
	}
	return nil
}

func (h *fakeHost) ResetEvents() error {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.called("ResetEvents")
	h.events = nil
	return nil
}

// TakeRequest pops the first request a test pushed (pushRequest).
func (h *fakeHost) TakeRequest() (Request, bool, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.called("TakeRequest")
	if h.requestErr != nil {
		return Request{}, false, h.requestErr
	}
	if len(h.requests) == 0 {
		return Request{}, false, nil
	}
	req := h.requests[0]
	h.requests = h.requests[1:]
	return req, true, nil
}

func (h *fakeHost) AnswerRequest(seq uint32, ok bool, msg string) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.called("AnswerRequest")
	h.answers = append(h.answers, answer{seq: seq, ok: ok, msg: msg})
	return nil
}

// pushRequest is a SQL session making a request: the next TakeRequest
// returns it after those pushed before.
func (h *fakeHost) pushRequest(req Request) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.requests = append(h.requests, req)
}

// answered is every AnswerRequest call so far, in order.
func (h *fakeHost) answered() []answer {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]answer(nil), h.answers...)
}

// timelineCalls is how often Timeline was called.
func (h *fakeHost) timelineCalls() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.timelines
}

// fenceCalls is every SetFence call so far, in order.
func (h *fakeHost) fenceCalls() []core.Fence {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]core.Fence(nil), h.fences...)
}

// Wait polls fd for at most timeout, in short slices so that a shutdown
// is noticed at once, and looks at what w watches between the slices (the
// C shim looks every w.Poll), returning WakeWatch when it changed.
func (h *fakeHost) Wait(fd int, timeout time.Duration, w Watch) (Wake, error) {
	h.mu.Lock()
	h.called("Wait")
	h.waits = append(h.waits, timeout)
	h.watches = append(h.watches, w)
	err := h.waitErr
	reload := h.reload
	h.reload = false
	h.mu.Unlock()
	if err != nil {
		return 0, err
	}
	if reload {
		return WakeReload, nil
	}
	deadline := time.Now().Add(timeout)
	for {
		select {
		case <-h.shutdown:
			return WakeShutdown, nil
		default:
		}
		left := time.Until(deadline)
		ms := 0
		if left > 0 {
			ms = int(min((left+time.Millisecond-1)/time.Millisecond, 5))
		}
		n, err := unix.Poll([]unix.PollFd{{Fd: int32(fd), Events: unix.POLLIN}}, ms)
		if errors.Is(err, unix.EINTR) {
			continue
		}
		if err != nil {
			return 0, err
		}
		if n > 0 {
			return WakeSocket, nil
		}
		if left <= 0 {
			return WakeTimeout, nil
		}
		h.mu.Lock()
		changed := w.Poll > 0 && ((w.Promoted && !h.inRecovery) || (w.Replication >= 0 && h.replication != w.Replication))
		h.mu.Unlock()
		if changed {
			h.mu.Lock()
			h.watchWakes++
			h.mu.Unlock()
			return WakeWatch, nil
		}
	}
}

func (h *fakeHost) stop() { h.shutdownOnce.Do(func() { close(h.shutdown) }) }

func (h *fakeHost) snapshot() (logs []core.LogLine, titles []string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]core.LogLine(nil), h.logs...), append([]string(nil), h.titles...)
}

func (h *fakeHost) set(f func(h *fakeHost)) {
	h.mu.Lock()
	defer h.mu.Unlock()
	f(h)
}

// running is a Run in a goroutine.
type running struct {
	finished chan struct{} // closed when Run returned
	code     int
}

// startRun runs Run(h) in a goroutine and stops it when the test ends.
func startRun(t *testing.T, h *fakeHost) *running {
	t.Helper()
	r := &running{finished: make(chan struct{})}
	go func() {
		defer close(r.finished)
		r.code = Run(h)
	}()
	t.Cleanup(func() {
		h.stop()
		select {
		case <-r.finished:
		case <-time.After(5 * time.Second):
			t.Error("Run did not return after the shutdown")
		}
	})
	return r
}

// waitForLog waits until a log line matches and returns its index.
func waitForLog(t *testing.T, h *fakeHost, match func(core.LogLine) bool) int {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		logs, _ := h.snapshot()
		for i, l := range logs {
			if match(l) {
				return i
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("no such log line in:\n%s", formatLogs(logs))
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func hasPrefix(p string) func(core.LogLine) bool {
	return func(l core.LogLine) bool { return strings.HasPrefix(l.Msg, p) }
}

func formatLogs(logs []core.LogLine) string {
	var b strings.Builder
	for _, l := range logs {
		fmt.Fprintf(&b, "  %d %s\n", l.Level, l.Msg)
	}
	return b.String()
}

func stopAndWait(t *testing.T, h *fakeHost, run *running) int {
	t.Helper()
	start := time.Now()
	h.stop()
	select {
	case <-run.finished:
		require.Less(t, time.Since(start), time.Second, "Run returns promptly after the shutdown")
		return run.code
	case <-time.After(5 * time.Second):
		t.Fatal("Run did not return after the shutdown")
		return -1
	}
}

func refusedDetail(port int) string {
	return fmt.Sprintf("failed to connect to `user=x database=y`: 127.0.0.1:%d (127.0.0.1): "+
		"dial error: dial tcp 127.0.0.1:%d: connect: connection refused", port, port)
}

func runRaw(t *testing.T, partnerPort, localPort int) settings.Raw {
	return settings.Raw{
		PartnerConninfo:  fmt.Sprintf("host=127.0.0.1 port=%d user=x dbname=y sslmode=disable", partnerPort),
		MyConninfo:       fmt.Sprintf("host=127.0.0.1 port=%d user=x dbname=postgres sslmode=disable", localPort),
		KeepalivesTime:   0.05,
		KeepalivesCount:  2,
		OnPartnerTimeout: "keep_master", // as the server names it
		DataDir:          t.TempDir(),
	}
}

func TestRunMasterLosesStandby(t *testing.T) {
	fakepg.CleanEnv(t)
	partnerPort, localPort := fakepg.ClosedPort(t), fakepg.ClosedPort(t)
	h := confirmedHost(runRaw(t, partnerPort, localPort)) // a worker restart: an unconfirmed master switches nothing
	start := time.Now()
	done := startRun(t, h)

	waitForLog(t, h, hasPrefix("pg_keeper: switch to asynchronous replication failed"))
	code := stopAndWait(t, h, done)
	require.Equal(t, 0, code)
	elapsed := time.Since(start)

	logs, titles := h.snapshot()
	require.GreaterOrEqual(t, len(logs), 6, formatLogs(logs))
	localRefused := fmt.Sprintf("failed to connect to `user=x database=postgres`: 127.0.0.1:%d (127.0.0.1): "+
		"dial error: dial tcp 127.0.0.1:%d: connect: connection refused", localPort, localPort)
	require.Equal(t, []core.LogLine{
		ct.Info(fmt.Sprintf("pg_keeper: started in master mode: partner \"host=127.0.0.1 port=%d user=x dbname=y sslmode=disable\", "+
			"keepalives_time 50ms, keepalives_count 2", partnerPort)),
		ct.Warn("pg_keeper: heartbeat to standby failed (1/2): refused: " + refusedDetail(partnerPort)),
		ct.Warn("pg_keeper: heartbeat to standby failed (2/2): refused: " + refusedDetail(partnerPort)),
		ct.Warn("pg_keeper: " + core.Why(core.MasterReady, core.PartnerLost) + " (2 failed heartbeats in a row)"),
		ct.Warn("pg_keeper: " + core.Why(core.MasterSwitching, core.ActionFailed) +
			" (could not connect to this server (pg_keeper.my_conninfo): " + localRefused + ")"),
	}, logs[:5])
	require.Equal(t, ct.Info("pg_keeper: stopping"), logs[len(logs)-1])
	require.GreaterOrEqual(t, len(titles), 3)
	require.Equal(t, []string{"(master mode:ready)", "(master mode:switching)", "(master mode:connected)"}, titles[:3])

	h.mu.Lock()
	defer h.mu.Unlock()
	require.Nil(t, h.strayCalls, "the host is used from Run's goroutine only")
	// The loop waits until the next heartbeat is due, or, while one is
	// under way (its result wakes it), for maxTurn at most.
	for _, w := range h.waits {
		require.Greater(t, w, time.Duration(0))
		require.LessOrEqual(t, w, maxTurn)
	}
	// A heartbeat wakes the loop a few times (timeout, its result, an
	// action's result); a loop that spins would wake thousands of times.
	maxWaits := 5 * (int(elapsed/(50*time.Millisecond)) + 2)
	require.LessOrEqual(t, len(h.waits), maxWaits, "Wait calls in %s", elapsed)
}

func TestRunStandbyLeavesRecovery(t *testing.T) {
	fakepg.CleanEnv(t)
	raw := runRaw(t, fakepg.ClosedPort(t), fakepg.ClosedPort(t))
	raw.KeepalivesCount = 1000
	h := newFakeHost(raw)
	h.inRecovery = true
	done := startRun(t, h)

	waitForLog(t, h, hasPrefix("pg_keeper: heartbeat to master failed (1/1000): refused: "))
	_, titles := h.snapshot()
	require.Equal(t, []string{"(standby mode:ready)"}, titles)
	require.Zero(t, h.timelineCalls(), "a standby has no timeline to tell")

	h.set(func(h *fakeHost) { h.inRecovery = false })
	left := waitForLog(t, h, func(l core.LogLine) bool {
		return l == ct.Warn("pg_keeper: server left recovery without pg_keeper: switching to master mode")
	})
	next := waitForLog(t, h, hasPrefix("pg_keeper: heartbeat to standby failed ("))
	require.Greater(t, next, left)
	require.Equal(t, 0, stopAndWait(t, h, done))
	require.Positive(t, h.timelineCalls(), "in master mode each heartbeat needs the timeline")
	// Opened at start in standby mode, and left open once in master mode.
	require.Equal(t, []core.Fence{core.FenceOpen}, h.fenceCalls())

	logs, titles := h.snapshot()
	require.True(t, strings.HasPrefix(logs[0].Msg, "pg_keeper: started in standby mode: "), logs[0].Msg)
	require.Equal(t, []string{"(standby mode:ready)", "(master mode:ready)"}, titles)
	for _, l := range logs[:left] {
		require.False(t, strings.Contains(l.Msg, "to standby"), l.Msg)
	}
	for _, l := range logs[left+1:] {
		require.False(t, strings.Contains(l.Msg, "to master"), l.Msg)
	}
}

// TestRunIdleTurnsRarely: between heartbeats an idle keeper turns about
// once in maxTurn, not ten times a second, and its waits watch the server's
// replication (and, on a standby, its recovery) in its stead: the end of
// recovery is seen at once, not at the next turn.
func TestRunIdleTurnsRarely(t *testing.T) {
	fakepg.CleanEnv(t)
	srv := fakepg.Start(t, fakepg.FactsRow(false, "7300000000000000001", fakepg.StartText, true, "50331744", "1")...)
	raw := replicationRaw(t, srv.Port)
	raw.KeepalivesTime = 30
	h := confirmedHost(raw)
	h.inRecovery = true
	h.replication = 1
	done := startRun(t, h)
	waitForLog(t, h, func(l core.LogLine) bool { return l == ct.Info("pg_keeper: connected to master") })
	h.set(func(h *fakeHost) { h.waits, h.watches = nil, nil })
	time.Sleep(2500 * time.Millisecond)
	h.mu.Lock()
	waits, watches := len(h.waits), append([]Watch(nil), h.watches...)
	h.mu.Unlock()
	require.LessOrEqual(t, waits, 4, "Wait calls in 2.5 s")
	require.NotEmpty(t, watches)
	for _, w := range watches {
		require.Equal(t, Watch{Poll: 500 * time.Millisecond, Replication: 1, Promoted: true}, w)
	}

	h.set(func(h *fakeHost) { h.inRecovery = false })
	waitForLog(t, h, func(l core.LogLine) bool {
		return l == ct.Warn("pg_keeper: server left recovery without pg_keeper: switching to master mode")
	})
	require.Equal(t, 0, stopAndWait(t, h, done))
	h.mu.Lock()
	defer h.mu.Unlock()
	require.Equal(t, 1, h.watchWakes, "seen by the wait, not at the next turn")
	last := h.watches[len(h.watches)-1]
	require.False(t, last.Promoted, "a master has no recovery to watch")
}

func TestRunReload(t *testing.T) {
	fakepg.CleanEnv(t)
	raw := runRaw(t, fakepg.ClosedPort(t), fakepg.ClosedPort(t))
	raw.KeepalivesCount = 1000
	h := newFakeHost(raw)
	done := startRun(t, h)
	waitForLog(t, h, hasPrefix("pg_keeper: heartbeat to standby failed (1/1000): "))

	h.set(func(h *fakeHost) {
		h.raw.KeepalivesTime = 0.06
		h.raw.KeepalivesCount = 2000
		h.reload = true
	})
	i := waitForLog(t, h, func(l core.LogLine) bool { return strings.HasPrefix(l.Msg, "pg_keeper: settings reloaded: ") })
	j := waitForLog(t, h, func(l core.LogLine) bool { return strings.Contains(l.Msg, "/2000): refused: ") })
	require.Greater(t, j, i)
	require.Equal(t, 0, stopAndWait(t, h, done))

	logs, _ := h.snapshot()
	require.Equal(t, ct.Info(fmt.Sprintf("pg_keeper: settings reloaded: partner %q, keepalives_time 60ms, keepalives_count 2000",
		raw.PartnerConninfo)), logs[i])
}

func TestRunReloadWithoutChangeIsQuiet(t *testing.T) {
	fakepg.CleanEnv(t)
	raw := runRaw(t, fakepg.ClosedPort(t), fakepg.ClosedPort(t))
	raw.KeepalivesCount = 1000
	h := newFakeHost(raw)
	done := startRun(t, h)
	waitForLog(t, h, hasPrefix("pg_keeper: heartbeat to standby failed (1/1000): "))
	h.set(func(h *fakeHost) { h.reload = true })
	waitForLog(t, h, hasPrefix("pg_keeper: heartbeat to standby failed (3/1000): "))
	require.Equal(t, 0, stopAndWait(t, h, done))
	logs, _ := h.snapshot()
	for _, l := range logs {
		require.False(t, strings.HasPrefix(l.Msg, "pg_keeper: settings reloaded"), l.Msg)
	}
}

func TestRunInRecoveryError(t *testing.T) {
	fakepg.CleanEnv(t)
	h := newFakeHost(runRaw(t, fakepg.ClosedPort(t), fakepg.ClosedPort(t)))
	h.recoveryErr = errors.New("no answer")
	require.Equal(t, 1, Run(h))
	logs, titles := h.snapshot()
	require.Equal(t, []core.LogLine{{Level: core.Error, Msg: "pg_keeper: could not tell whether the server is in recovery: no answer"}}, logs)
	require.Nil(t, titles)
	require.Nil(t, h.waits)
}

func TestRunWaitError(t *testing.T) {
	fakepg.CleanEnv(t)
	h := newFakeHost(runRaw(t, fakepg.ClosedPort(t), fakepg.ClosedPort(t)))
	h.waitErr = errors.New("latch broken")
	require.Equal(t, 1, Run(h))
	logs, _ := h.snapshot()
	require.Equal(t, core.LogLine{Level: core.Error, Msg: "pg_keeper: waiting failed, the worker restarts: latch broken"}, logs[len(logs)-1])
}

func TestRunRecoversFromPanic(t *testing.T) {
	fakepg.CleanEnv(t)
	h := newFakeHost(runRaw(t, fakepg.ClosedPort(t), fakepg.ClosedPort(t)))
	h.panicIn = "InRecovery"
	require.Equal(t, 1, Run(h))
	logs, _ := h.snapshot()
	require.Len(t, logs, 1)
	require.Equal(t, core.Error, logs[0].Level)
	require.True(t, strings.HasPrefix(logs[0].Msg, "pg_keeper: internal error, the worker restarts: boom\ngoroutine "), logs[0].Msg)
}

func TestRunWithBadPartnerDoesNotProbe(t *testing.T) {
	fakepg.CleanEnv(t)
	raw := runRaw(t, fakepg.ClosedPort(t), fakepg.ClosedPort(t))
	raw.PartnerConninfo = ""
	h := newFakeHost(raw)
	done := startRun(t, h)
	waitForLog(t, h, hasPrefix("pg_keeper: started in master mode: "))
	// Several intervals pass without a heartbeat.
	time.Sleep(200 * time.Millisecond)
	require.Equal(t, 0, stopAndWait(t, h, done))
	logs, titles := h.snapshot()
	require.Equal(t, []core.LogLine{
		{Level: core.Error, Msg: "pg_keeper: pg_keeper.partner_conninfo is not set: set it to a connection string that reaches the other server"},
		ct.Info(`pg_keeper: started in master mode: partner "", keepalives_time 50ms, keepalives_count 2`),
		ct.Info("pg_keeper: " + core.Why(core.MasterUnconfirmed, core.Confirmed) + " (pg_keeper.partner_conninfo is not set: no partner to check, the keeper is inactive)"),
		ct.Info("pg_keeper: stopping"),
	}, logs)
	require.Equal(t, []string{"(master mode:unconfirmed)", "(master mode:ready)"}, titles)
	// No partner to wait for: the first tick confirms this server, and the
	// fence is opened once, then.
	require.Equal(t, []core.Fence{core.FenceOpen}, h.fenceCalls())
	require.Equal(t, []int{3}, h.fenceAt)
	require.Zero(t, h.timelines, "no heartbeat, no timeline")
}

// When the host cannot give the settings at start, the runner must not
// spin: Wait is never called with a 0 timeout again and again. Settings
// that cannot be read are no unset partner: they confirm nothing.
func TestRunSettingsErrorDoesNotSpin(t *testing.T) {
	fakepg.CleanEnv(t)
	h := newFakeHost(settings.Raw{})
	h.settingsErr = errors.New("no GUCs")
	done := startRun(t, h)
	time.Sleep(200 * time.Millisecond)
	require.Equal(t, 0, stopAndWait(t, h, done))
	h.mu.Lock()
	defer h.mu.Unlock()
	require.LessOrEqual(t, len(h.waits), 5, "Wait calls in 200ms")
	for _, w := range h.waits {
		require.Greater(t, w, time.Duration(0))
	}
	require.Equal(t, []string{"(master mode:unconfirmed)"}, h.titles, "still unconfirmed")
	require.Nil(t, h.fences, "the fence stays shut")
	require.Equal(t, 0, ct.CountPrefix(h.logs, "pg_keeper: "+core.Why(core.MasterUnconfirmed, core.Confirmed)), formatLogs(h.logs))
}

// Without a usable partner there is no heartbeat to wait for: the loop
// turns once in maxTurn (the status, the confirmation file), and no more
// often.
func TestRunWithoutUsablePartnerDoesNotSpin(t *testing.T) {
	fakepg.CleanEnv(t)
	for _, tc := range []struct{ name, conninfo string }{{"not set", ""}, {"unusable", "port=notaport"}} {
		t.Run(tc.name, func(t *testing.T) {
			raw := runRaw(t, fakepg.ClosedPort(t), fakepg.ClosedPort(t))
			raw.PartnerConninfo = tc.conninfo
			h := newFakeHost(raw)
			done := startRun(t, h)
			time.Sleep(300 * time.Millisecond)
			require.Equal(t, 0, stopAndWait(t, h, done))
			h.mu.Lock()
			defer h.mu.Unlock()
			require.Zero(t, h.timelines, "no heartbeat")
			require.LessOrEqual(t, len(h.waits), 6, "Wait calls in 300ms")
			for _, w := range h.waits {
				require.Greater(t, w, time.Duration(0))
				require.LessOrEqual(t, w, maxTurn)
			}
		})
	}
}

// A heartbeat that outlasts its interval (a partner that never answers,
// then a local server that does not either) ends by itself: the loop waits
// for it without spinning.
func TestRunDoesNotSpinWhileAHeartbeatIsSlow(t *testing.T) {
	fakepg.CleanEnv(t)
	raw := runRaw(t, fakepg.Silent(t), fakepg.Silent(t))
	raw.KeepalivesCount = 1000
	h := newFakeHost(raw)
	done := startRun(t, h)
	waitForLog(t, h, hasPrefix("pg_keeper: heartbeat to standby failed (2/1000): timeout: "))
	require.Equal(t, 0, stopAndWait(t, h, done))
	h.mu.Lock()
	defer h.mu.Unlock()
	zero := 0
	for _, w := range h.waits {
		if w <= 0 {
			zero++
		}
	}
	require.LessOrEqual(t, zero, 2, "Wait(0) calls of %d", len(h.waits))
}

// replicationRaw is a pair in which heartbeats are rare (an interval of
// two seconds): any heartbeat soon after another was started early.
func replicationRaw(t *testing.T, partnerPort int) settings.Raw {
	raw := runRaw(t, partnerPort, fakepg.ClosedPort(t))
	raw.KeepalivesTime = 2
	raw.SystemID, raw.StartTime = 7300000000000000001, ct.T0
	return raw
}

// TestRunReplicationDropProbesAtOnce: when the server's own replication
// connection drops (a standby's WAL receiver, a master's walsender), the
// next heartbeat starts at once, well before the interval; when one comes
// up, nothing changes.
func TestRunReplicationDropProbesAtOnce(t *testing.T) {
	fakepg.CleanEnv(t)
	for _, tc := range []struct {
		name       string
		inRecovery bool
		partner    []fakepg.Column
		up         string // the log line of the first good heartbeat
		before     int    // ReplicationState at start
	}{
		{"master", false, fakepg.FactsRow(true, "7300000000000000001", fakepg.StartText, false, "-1", "0"),
			"pg_keeper: connected to standby", 1},
		{"standby", true, fakepg.FactsRow(false, "7300000000000000001", fakepg.StartText, true, "50331744", "1"),
			"pg_keeper: connected to master", 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv := fakepg.Start(t, tc.partner...)
			h := confirmedHost(replicationRaw(t, srv.Port))
			h.inRecovery = tc.inRecovery
			h.timeline = 1
			h.replication = tc.before
			done := startRun(t, h)
			waitForLog(t, h, func(l core.LogLine) bool { return l == ct.Info(tc.up) })
			require.Len(t, srv.Received(), 1, "one heartbeat, at the start")

			// Replication comes up (a second walsender, a WAL receiver that
			// reconnects): nothing to check early.
			h.set(func(h *fakeHost) { h.replication = tc.before + 1 })
			time.Sleep(300 * time.Millisecond)
			require.Len(t, srv.Received(), 1, "a rise starts no heartbeat")

			// It drops: the next heartbeat starts at the next look.
			dropped := time.Now()
			h.set(func(h *fakeHost) { h.replication = tc.before })
			waitFor(t, "the second heartbeat", func() bool { return len(srv.Received()) >= 2 })
			took := time.Since(dropped)
			require.Less(t, took, time.Second, "well before the interval of 2s")
			time.Sleep(300 * time.Millisecond)
			require.Len(t, srv.Received(), 2, "one heartbeat per drop")

			// A drop to zero, from a count read at start, is one too.
			h.set(func(h *fakeHost) { h.replication = 0 })
			waitFor(t, "the third heartbeat", func() bool { return len(srv.Received()) >= 3 })
			require.Equal(t, 0, stopAndWait(t, h, done))
			h.mu.Lock()
			defer h.mu.Unlock()
			require.Nil(t, h.strayCalls)
			require.Greater(t, h.replReads, 5, "looked at between heartbeats")
		})
	}
}

// The runner looks at the server's replication connections at start and at
// each turn: only a drop below the last count is an input for the core.
func TestRunnerObservesReplicationDrops(t *testing.T) {
	fakepg.CleanEnv(t)
	raw := runRaw(t, fakepg.ClosedPort(t), fakepg.ClosedPort(t))
	h := confirmedHost(raw)
	h.replication = 2
	r := newTestRunner(t, h)
	require.Equal(t, 2, r.replication, "read at start")

	// The heartbeat of the start ended well; the next is due an interval
	// after it began. (After a failed one a drop changes nothing: see
	// TestReplicationDropProbesAtOnce.)
	at := time.Now()
	require.NotNil(t, r.core.Step(core.Input{Kind: core.TickInput, At: at}).Probe)
	r.core.Step(ct.OKWith(ct.StandbyFacts))
	require.Equal(t, 0, r.core.Failures())
	next := at.Add(r.settings.Interval)
	require.Equal(t, next, r.core.NextTick())

	n := logCount(h)
	h.set(func(h *fakeHost) { h.replication = 3 })
	observe(r, at.Add(time.Millisecond))
	require.Equal(t, 3, r.replication)
	require.Equal(t, next, r.core.NextTick(), "a rise changes nothing")

	h.set(func(h *fakeHost) { h.replErr = errors.New("no shared memory") })
	observe(r, at.Add(2*time.Millisecond))
	require.Equal(t, 3, r.replication, "a failed look keeps the last count")
	require.Equal(t, next, r.core.NextTick())

	h.set(func(h *fakeHost) { h.replErr, h.replication = nil, 1 })
	observe(r, at.Add(3*time.Millisecond))
	require.Equal(t, 1, r.replication)
	require.Equal(t, at.Add(3*time.Millisecond), r.core.NextTick(), "a drop makes the next heartbeat due at once")
	require.Empty(t, logsSince(h, n), "said by the heartbeat, not by the look")

	h.set(func(h *fakeHost) { h.replication = 1 })
	observe(r, at.Add(4*time.Millisecond))
	require.Equal(t, at.Add(3*time.Millisecond), r.core.NextTick(), "the same count is no drop")
}

var msRe = regexp.MustCompile(`after \d+ ms`)

func TestRunnerAfterCommand(t *testing.T) {
	fakepg.CleanEnv(t)
	raw := runRaw(t, fakepg.ClosedPort(t), fakepg.ClosedPort(t))
	raw.PartnerConninfo = "host=old-master user=x password=hunter22"
	raw.AfterCommand = `echo out1; echo "$PG_KEEPER_EVENT|$PG_KEEPER_OLD_PRIMARY|$PG_KEEPER_DATA_DIR"`
	raw.AfterCommandTimeout = 7
	h := confirmedHost(raw) // a promoted server is no unconfirmed master
	r := newTestRunner(t, h)
	before, _ := h.snapshot()

	startAction(r, core.RunAfterCommand)
	awaitMessage(t, r)

	logs, titles := h.snapshot()
	logs = logs[len(before):]
	require.Len(t, logs, 4, formatLogs(logs))
	// Only the program is logged: fence agents take passwords as arguments.
	require.Equal(t, ct.Info("pg_keeper: running after_command (timeout 7s): echo ..."), logs[0])
	require.Equal(t, ct.Info("pg_keeper: after_command: out1"), logs[1])
	require.Equal(t, ct.Info("pg_keeper: after_command: promote|host=old-master user=x password=********|"+raw.DataDir), logs[2])
	require.Equal(t, core.Info, logs[3].Level)
	require.Equal(t, "pg_keeper: after_command finished: exit status 0 after N", msRe.ReplaceAllString(logs[3].Msg, "after N"))
	require.Equal(t, core.MasterReady, r.core.State())
	require.Equal(t, []string{"(master mode:ready)"}, titles)
}

func TestRunnerAfterCommandFails(t *testing.T) {
	fakepg.CleanEnv(t)
	raw := runRaw(t, fakepg.ClosedPort(t), fakepg.ClosedPort(t))
	raw.AfterCommand = "echo oops >&2; exit 2"
	h := newFakeHost(raw)
	r := newTestRunner(t, h)
	before, _ := h.snapshot()

	startAction(r, core.RunAfterCommand)
	awaitMessage(t, r)

	logs, _ := h.snapshot()
	logs = logs[len(before):]
	require.Len(t, logs, 3, formatLogs(logs))
	require.Equal(t, ct.Info("pg_keeper: running after_command (timeout 1m0s): echo ..."), logs[0])
	require.Equal(t, ct.Info("pg_keeper: after_command: oops"), logs[1])
	require.Equal(t, core.Warning, logs[2].Level)
	require.Equal(t, "pg_keeper: after_command failed: exit status 2 after N", msRe.ReplaceAllString(logs[2].Msg, "after N"))
}

func TestRunnerAfterCommandNotSet(t *testing.T) {
	fakepg.CleanEnv(t)
	h := newFakeHost(runRaw(t, fakepg.ClosedPort(t), fakepg.ClosedPort(t)))
	r := newTestRunner(t, h)
	before, _ := h.snapshot()

	startAction(r, core.RunAfterCommand)

	logs, _ := h.snapshot()
	require.Equal(t, []core.LogLine{ct.Info("pg_keeper: pg_keeper.after_command is not set: nothing to run after the promotion")},
		logs[len(before):])
	require.Equal(t, 0, pollWake(t, r, 50*time.Millisecond), "nothing was started")
}

func TestRunnerActionWithoutLocalFails(t *testing.T) {
	fakepg.CleanEnv(t)
	raw := runRaw(t, fakepg.ClosedPort(t), fakepg.ClosedPort(t))
	raw.MyConninfo = "port=notaport"
	h := confirmedHost(raw)
	r := newTestRunner(t, h)
	require.False(t, r.settings.Local.Usable())

	// Drive the core to MasterSwitching as two failed heartbeats would.
	r.step(ct.FailProbe(false))
	r.step(ct.FailProbe(false))
	require.Equal(t, core.MasterSwitching, r.core.State())
	awaitMessage(t, r)
	require.Equal(t, core.MasterConnected, r.core.State())
	logs, titles := h.snapshot()
	require.Equal(t, ct.Warn("pg_keeper: "+core.Why(core.MasterSwitching, core.ActionFailed)+" (pg_keeper.my_conninfo is unusable)"),
		logs[len(logs)-1])
	require.Equal(t, []string{"(master mode:ready)", "(master mode:switching)", "(master mode:connected)"}, titles)
}

func TestRunnerSetsPolicyAtStartAndOnReload(t *testing.T) {
	fakepg.CleanEnv(t)
	raw := runRaw(t, fakepg.ClosedPort(t), fakepg.ClosedPort(t))
	raw.MaxFailoverLag = 16 << 20
	raw.FailoverOnTimeout = true
	h := newFakeHost(raw)
	r := newTestRunner(t, h)
	require.Equal(t, core.Policy{MaxLag: 16 << 20, FailoverOnTimeout: true}, r.core.View().Policy)
	require.Equal(t, core.Policy{MaxLag: 16 << 20, FailoverOnTimeout: true}, r.settings.Policy)
	require.Equal(t, core.Identity{}, r.settings.Self)
	reloaded := ct.Info(fmt.Sprintf("pg_keeper: settings reloaded: partner %q, keepalives_time 50ms, keepalives_count 2", raw.PartnerConninfo))

	reload := func(change func(raw *settings.Raw)) []core.LogLine {
		before, _ := h.snapshot()
		h.set(func(h *fakeHost) { change(&h.raw) })
		r.loadSettings(true)
		logs, _ := h.snapshot()
		return logs[len(before):]
	}

	// Nothing changed: quiet.
	require.Empty(t, reload(func(raw *settings.Raw) {}))
	require.Equal(t, core.Policy{MaxLag: 16 << 20, FailoverOnTimeout: true}, r.core.View().Policy)

	// Only the policy changed: logged, and the core follows.
	require.Equal(t, []core.LogLine{reloaded}, reload(func(raw *settings.Raw) { raw.MaxFailoverLag = 1 << 20 }))
	require.Equal(t, core.Policy{MaxLag: 1 << 20, FailoverOnTimeout: true}, r.core.View().Policy)
	require.Equal(t, []core.LogLine{reloaded}, reload(func(raw *settings.Raw) { raw.FailoverOnTimeout = false }))
	require.Equal(t, core.Policy{MaxLag: 1 << 20}, r.core.View().Policy)
	require.Equal(t, core.Policy{MaxLag: 1 << 20}, r.settings.Policy)

	// Only this server's identity changed: taken, not logged.
	start := time.Date(2024, 5, 1, 11, 0, 0, 0, time.UTC)
	require.Empty(t, reload(func(raw *settings.Raw) { raw.SystemID, raw.StartTime = 7300000000000000001, start }))
	require.Equal(t, core.Identity{SystemID: 7300000000000000001, StartTime: start}, r.settings.Self)
	require.Equal(t, core.Policy{MaxLag: 1 << 20}, r.core.View().Policy)

	// Settings that cannot be read change nothing.
	h.set(func(h *fakeHost) { h.settingsErr = errors.New("no GUCs"); h.raw.MaxFailoverLag = 5 })
	before, _ := h.snapshot()
	r.loadSettings(true)
	logs, _ := h.snapshot()
	require.Equal(t, []core.LogLine{{Level: core.Error, Msg: "pg_keeper: could not read the settings: no GUCs"}}, logs[len(before):])
	require.Equal(t, core.Policy{MaxLag: 1 << 20}, r.core.View().Policy)
}

// The core decides when to probe: the runner hands it keepalives_time and
// whether partner_conninfo is set and usable, at start and on reload.
func TestRunnerAppliesTheScheduleSettings(t *testing.T) {
	fakepg.CleanEnv(t)
	raw := runRaw(t, fakepg.ClosedPort(t), fakepg.ClosedPort(t))
	raw.KeepalivesTime = 30
	h := confirmedHost(raw)
	r := newTestRunner(t, h)
	require.Equal(t, 30*time.Second, r.core.View().Interval)
	require.True(t, r.core.View().PartnerSet)
	require.True(t, r.core.View().PartnerUsable)

	at := time.Now()
	require.NotNil(t, r.core.Step(core.Input{Kind: core.TickInput, At: at}).Probe)
	r.core.Step(ct.FailWith(core.FailRefused, "x", -1))
	require.Equal(t, at.Add(30*time.Second), r.core.NextTick())

	reload := func(change func(raw *settings.Raw)) {
		h.set(func(h *fakeHost) { change(&h.raw) })
		r.loadSettings(true)
	}
	// A shorter interval: the next heartbeat comes sooner.
	before := time.Now()
	reload(func(raw *settings.Raw) { raw.KeepalivesTime = 1 })
	require.Equal(t, time.Second, r.core.View().Interval)
	require.WithinDuration(t, before.Add(time.Second), r.core.NextTick(), time.Second)
	require.True(t, r.core.NextTick().Before(at.Add(30*time.Second)))

	reload(func(raw *settings.Raw) { raw.PartnerConninfo = "port=notaport" })
	require.True(t, r.core.View().PartnerSet)
	require.False(t, r.core.View().PartnerUsable)
	require.Equal(t, core.Never, r.core.NextTick(), "nothing to probe until a reload")
	for _, conninfo := range []string{"", "  "} {
		reload(func(raw *settings.Raw) { raw.PartnerConninfo = conninfo })
		require.False(t, r.core.View().PartnerSet, "%q", conninfo)
		require.False(t, r.core.View().PartnerUsable, "%q", conninfo)
	}
	reload(func(raw *settings.Raw) { raw.PartnerConninfo = "host=127.0.0.1 port=1 user=x dbname=y sslmode=disable" })
	require.True(t, r.core.View().PartnerSet)
	require.True(t, r.core.View().PartnerUsable)
}

func TestRunReloadOfPolicyOnly(t *testing.T) {
	fakepg.CleanEnv(t)
	raw := runRaw(t, fakepg.ClosedPort(t), fakepg.ClosedPort(t))
	raw.KeepalivesCount = 1000
	h := newFakeHost(raw)
	done := startRun(t, h)
	waitForLog(t, h, hasPrefix("pg_keeper: heartbeat to standby failed (1/1000): "))
	h.set(func(h *fakeHost) {
		h.raw.FailoverOnTimeout = true
		h.reload = true
	})
	i := waitForLog(t, h, hasPrefix("pg_keeper: settings reloaded: "))
	require.Equal(t, 0, stopAndWait(t, h, done))
	logs, _ := h.snapshot()
	require.Equal(t, ct.Info(fmt.Sprintf("pg_keeper: settings reloaded: partner %q, keepalives_time 50ms, keepalives_count 1000",
		raw.PartnerConninfo)), logs[i])
}

// TestRunProbesWithIdentityAndMode runs the loop against a fake partner:
// tick passes this server's identity and the mode on to Probe.
func TestRunProbesWithIdentityAndMode(t *testing.T) {
	fakepg.CleanEnv(t)
	t.Run("good standby", func(t *testing.T) {
		srv := fakepg.Start(t, fakepg.FactsRow(true, "7300000000000000001", fakepg.StartText, false, "-1", "0")...)
		raw := runRaw(t, srv.Port, fakepg.ClosedPort(t))
		raw.SystemID, raw.StartTime = 7300000000000000001, ct.T0
		h := newFakeHost(raw)
		done := startRun(t, h)
		waitForLog(t, h, func(l core.LogLine) bool { return l == ct.Info("pg_keeper: connected to standby") })
		require.Equal(t, 0, stopAndWait(t, h, done))
		logs, titles := h.snapshot()
		// The first good heartbeat confirms this server, the next finds the standby connected.
		require.Equal(t, ct.Info("pg_keeper: "+core.Why(core.MasterUnconfirmed, core.Confirmed)+" (the partner answered as a standby)"), logs[1], formatLogs(logs))
		require.Equal(t, ct.Info("pg_keeper: connected to standby"), logs[2], formatLogs(logs))
		require.Equal(t, []string{"(master mode:unconfirmed)", "(master mode:ready)", "(master mode:connected)"}, titles)
		require.Equal(t, []core.Fence{core.FenceOpen}, h.fenceCalls(), "the first good heartbeat opens the fence")
		for _, q := range srv.Received() {
			require.Equal(t, probeSQL(core.MasterMode, ""), q)
		}
	})
	t.Run("this server", func(t *testing.T) {
		srv := fakepg.Start(t, fakepg.FactsRow(true, "7300000000000000001", fakepg.StartText, false, "-1", "0")...)
		raw := runRaw(t, srv.Port, fakepg.ClosedPort(t))
		raw.SystemID, raw.StartTime = 7300000000000000001, fakepg.StartTime
		h := newFakeHost(raw)
		done := startRun(t, h)
		waitForLog(t, h, hasPrefix("pg_keeper: "+core.Why(core.MasterUnconfirmed, core.PartnerLost)))
		require.Equal(t, 0, stopAndWait(t, h, done))
		logs, titles := h.snapshot()
		const self = "this server: pg_keeper.partner_conninfo reaches this very server: point it at the other node"
		// This server answering confirms nothing.
		require.Equal(t, []core.LogLine{
			{Level: core.Error, Msg: "pg_keeper: heartbeat to standby failed (1/2): " + self},
			{Level: core.Error, Msg: "pg_keeper: heartbeat to standby failed (2/2): " + self},
			ct.Warn("pg_keeper: " + core.Why(core.MasterUnconfirmed, core.PartnerLost)),
		}, logs[1:4], formatLogs(logs))
		require.Equal(t, []string{"(master mode:unconfirmed)"}, titles)
		require.Nil(t, h.fenceCalls())
	})
	t.Run("both primaries", func(t *testing.T) {
		srv := fakepg.Start(t, fakepg.FactsRow(false, "7300000000000000001", fakepg.StartText, false, "1", "1")...)
		raw := runRaw(t, srv.Port, fakepg.ClosedPort(t))
		raw.SystemID, raw.StartTime = 7300000000000000001, ct.T0
		h := newFakeHost(raw)
		h.timeline = 1 // the partner's too: neither was promoted after the other
		done := startRun(t, h)
		i := waitForLog(t, h, hasPrefix("pg_keeper: heartbeat to standby failed (1/2): "))
		require.Equal(t, 0, stopAndWait(t, h, done))
		logs, _ := h.snapshot()
		require.Equal(t, core.LogLine{Level: core.Error, Msg: "pg_keeper: heartbeat to standby failed (1/2): two primaries: the partner is a primary too: " +
			"both nodes are primaries of one cluster; keep the one promoted last and rebuild the other as its standby " +
			"(pg_rewind or pg_basebackup, standby.signal)"}, logs[i])
	})
}

// TestRunStandbyHoldsWithTheLSNs runs a standby against a fake master that
// was not synchronous, then stops: the received position comes from
// ReplicationAlive on the local server and ends up in the log.
func TestRunStandbyHoldsWithTheLSNs(t *testing.T) {
	fakepg.CleanEnv(t)
	partner := fakepg.Start(t, fakepg.FactsRow(false, "7300000000000000001", fakepg.StartText, false, "50331744", "1")...)
	local := fakepg.Start(t, fakepg.Col(fakepg.OIDBool, "f"), fakepg.Col(fakepg.OIDInt8, "50331648"), fakepg.Col(fakepg.OIDBool, "f"))
	raw := runRaw(t, partner.Port, local.Port)
	raw.SystemID, raw.StartTime = 7300000000000000001, ct.T0
	h := newFakeHost(raw)
	h.inRecovery = true
	done := startRun(t, h)
	waitForLog(t, h, func(l core.LogLine) bool { return l == ct.Info("pg_keeper: connected to master") })

	// The master is shutting down: it says so on the kept session
	// (pg_keeper.server_state), and refuses new sessions with 57P03.
	stopping := fakepg.Facts{SysID: "7300000000000000001", StartTime: fakepg.StartText, LSN: "50331744", Timeline: "1",
		KV: fakepg.Null, URI: fakepg.Null, Stopping: true}
	partner.Set(func(s *fakepg.Server) {
		s.Columns = stopping.Columns()
		s.StartupErr = &pgproto3.ErrorResponse{Severity: "FATAL", Code: "57P03", Message: "the database system is shutting down"}
	})
	i := waitForLog(t, h, hasPrefix("pg_keeper: heartbeat to master failed (1/2): "))
	waitForLog(t, h, hasPrefix("pg_keeper: master lost"))
	require.Equal(t, 0, stopAndWait(t, h, done))
	logs, titles := h.snapshot()
	failed := fmt.Sprintf("server starting or stopping: failed to connect to `user=x database=y`: 127.0.0.1:%d (127.0.0.1): "+
		"server error: FATAL: the database system is shutting down (SQLSTATE 57P03)", partner.Port)
	require.Equal(t, []core.LogLine{
		ct.Warn("pg_keeper: heartbeat to master failed (1/2): " + failed),
		ct.Warn("pg_keeper: heartbeat to master failed (2/2): " + failed),
		ct.Warn("pg_keeper: master lost, but promoting could lose acknowledged commits or make a second primary: not promoting " +
			"(2 failed heartbeats in a row; " + ct.RiskLSN("0/3000060", "0/3000000") + ")"),
	}, logs[i:i+3], formatLogs(logs))
	require.Equal(t, []string{"(standby mode:ready)", "(standby mode:connected)", "(standby mode:not-promoting)"}, titles)
	// The local server was asked at each failed heartbeat (the two logged
	// at least), not only once the threshold was near.
	require.GreaterOrEqual(t, len(local.Received()), 2)
	for _, q := range local.Received() {
		require.Equal(t, fakepg.SimpleSQL(probe.ReplicationAliveSQL[core.StandbyMode], "0"), q, "an older master: no window")
	}
}

// TestRunnerProbePanicBecomesAFailure: a panic in the heartbeat goroutine
// is a failed heartbeat of class other, which under keep_master is no
// reason to promote.
func TestRunnerProbePanicBecomesAFailure(t *testing.T) {
	fakepg.CleanEnv(t)
	raw := runRaw(t, fakepg.ClosedPort(t), fakepg.ClosedPort(t))
	raw.KeepalivesCount = 1
	h := newFakeHost(raw)
	h.inRecovery = true
	r := newTestRunner(t, h)
	r.step(ct.OKProbe())
	r.settings.Partner.Config.DialFunc = func(context.Context, string, string) (net.Conn, error) { panic("dial exploded") }
	before, _ := h.snapshot()
	heartbeat(t, r)
	awaitMessage(t, r)
	require.False(t, r.core.View().Probing)
	require.Equal(t, core.StandbyNotPromoting, r.core.State())
	logs, _ := h.snapshot()
	require.Equal(t, []core.LogLine{
		ct.Warn("pg_keeper: heartbeat to master failed (1/1): other: internal error: dial exploded"),
		ct.Warn("pg_keeper: master lost, but promoting could lose acknowledged commits or make a second primary: not promoting " +
			"(1 failed heartbeats in a row; other is no proof the master is down (pg_keeper.on_partner_timeout = keep_master); " +
			"if it is, promote by hand: SELECT pg_promote())"),
	}, logs[len(before):])
}

// BUG: the input the runner falls back on when the heartbeat goroutine
// panics had LocalLSN 0, not -1 (unknown): Core.risk took it for 0/0.
func TestRunnerProbePanicLeavesLocalLSNUnknown(t *testing.T) {
	fakepg.CleanEnv(t)
	raw := runRaw(t, fakepg.ClosedPort(t), fakepg.ClosedPort(t))
	raw.KeepalivesCount = 1
	raw.FailoverOnTimeout = true
	raw.MaxFailoverLag = 1 << 30
	h := newFakeHost(raw)
	h.inRecovery = true
	r := newTestRunner(t, h)
	r.step(ct.OKWith(ct.AsyncMaster))
	r.settings.Partner.Config.DialFunc = func(context.Context, string, string) (net.Conn, error) { panic("dial exploded") }
	before, _ := h.snapshot()
	heartbeat(t, r)
	awaitMessage(t, r)
	logs, _ := h.snapshot()
	require.Equal(t, []core.LogLine{
		ct.Warn("pg_keeper: heartbeat to master failed (1/1): other: internal error: dial exploded"),
		ct.Warn("pg_keeper: master lost, but promoting could lose acknowledged commits or make a second primary: not promoting " +
			"(1 failed heartbeats in a row; " + ct.RiskLSN("0/3000060", "unknown") + ")"),
	}, logs[len(before):])
	require.Equal(t, core.StandbyNotPromoting, r.core.State())
}

// watchPoll: a tenth of the interval, between 100 ms and 500 ms.
func TestWatchPoll(t *testing.T) {
	for iv, want := range map[time.Duration]time.Duration{
		50 * time.Millisecond: 100 * time.Millisecond, 100 * time.Millisecond: 100 * time.Millisecond,
		time.Second: 100 * time.Millisecond, 2 * time.Second: 200 * time.Millisecond,
		5 * time.Second: 500 * time.Millisecond, time.Minute: 500 * time.Millisecond,
	} {
		require.Equal(t, want, watchPoll(iv), "%s", iv)
	}
}
