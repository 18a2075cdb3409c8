package keeper

import (
	"encoding/json"
	"errors"
	"fmt"
	ct "github.com/pg-keeper/pg_keeper/keeper/core/coretest"
	"github.com/pg-keeper/pg_keeper/keeper/settings"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/pg-keeper/pg_keeper/keeper/internal/fakepg"

	"github.com/pg-keeper/pg_keeper/keeper/core"
	"github.com/pg-keeper/pg_keeper/keeper/publish"
	"github.com/stretchr/testify/require"
)

// pg_keeper.status(): what the runner publishes and how it is encoded.

// statusKeys are the keys sql/pg_keeper--1.0.sql reads from the status.
var statusKeys = []string{"worker_pid", "started_at", "updated_at", "mode", "state", "partner", "fence",
	"consecutive_failures", "keepalives_count", "keepalives_time", "on_partner_timeout", "max_failover_lag",
	"last_success", "last_failure", "last_failure_class", "last_failure_reason", "master_sync", "partner_lsn",
	"action_running", "next_heartbeat_at", "next_action", "next_action_at", "next_action_blocked",
	"maintenance", "auto_rejoin", "witness", "term", "lease_ends", "lease_holder"}

func hostStatuses(h *fakeHost) [][]byte {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([][]byte(nil), h.statuses...)
}

func decodeStatus(t *testing.T, b []byte) publish.Status {
	t.Helper()
	require.Less(t, len(b), publish.StatusMax)
	var s publish.Status
	require.NoError(t, json.Unmarshal(b, &s), "%s", b)
	return s
}

func TestStatusJSONHasTheKeysTheSQLReads(t *testing.T) {
	now := ct.T0
	full := publish.Status{WorkerPID: 1, StartedAt: now, UpdatedAt: now, Mode: "standby", State: "connected", Partner: "p",
		Fence: "open", Failures: 1, KeepalivesCount: 3, KeepalivesTime: 0.5, OnPartnerTimeout: "failover", MaxFailoverLag: 1,
		LastSuccess: &now, LastFailure: &now, FailureClass: "timeout", FailureWhy: "timeout: x", MasterSync: publish.Ptr(false),
		PartnerLSN: "0/1", ActionRunning: "promote", NextHeartbeatAt: &now, NextAction: "promote", NextActionAt: &now,
		Blocked: "b", Maintenance: true, AutoRejoin: true, Witness: "term 5 held by x", Term: 5,
		LeaseEnds: &now, LeaseHolder: "x:5432"}
	require.Equal(t, sorted(statusKeys), jsonKeys(t, publish.EncodeStatus(full)))
	require.True(t, decodeStatus(t, publish.EncodeStatus(full)).Maintenance)
	require.True(t, decodeStatus(t, publish.EncodeStatus(full)).AutoRejoin)
	require.Equal(t, full.MasterSync, decodeStatus(t, publish.EncodeStatus(full)).MasterSync)

	// The times the SQL turns into intervals are null rather than absent
	// when unknown; the texts are absent when empty; the booleans the SQL
	// casts are always there.
	require.Equal(t, sorted([]string{"worker_pid", "started_at", "updated_at", "mode", "state", "partner", "fence",
		"consecutive_failures", "keepalives_count", "keepalives_time", "on_partner_timeout", "max_failover_lag",
		"last_success", "last_failure", "next_heartbeat_at", "next_action_at", "maintenance", "auto_rejoin"}),
		jsonKeys(t, publish.EncodeStatus(publish.Status{})))
}

// statusRunner is a runner past the fence of its first turn whose next
// heartbeat is at next, as the core's scheduler would have left it.
func statusRunner(t *testing.T, raw settings.Raw, inRecovery, confirmed bool, next time.Time) (*runner, *fakeHost) {
	t.Helper()
	h := newFakeHost(raw)
	h.inRecovery = inRecovery
	if confirmed {
		h.fence = core.FenceOpen
	}
	r := newTestRunner(t, h)
	r.applyFence()
	setSchedule(r.core, next, false)
	return r, h
}

// setSchedule sets when c's next heartbeat is due, and whether one is
// under way, as its ticks would have (see TestTick*).
func setSchedule(c *core.Core, next time.Time, probing bool) {
	c.SetSchedule(next, probing)
}

// next_action_at: each heartbeat still to fail times out after an
// interval, and the last also checks replication for up to one more. A
// heartbeat under way ends by the next one's start.
func TestRunnerStatusNextActionAt(t *testing.T) {
	fakepg.CleanEnv(t)
	raw := runRaw(t, fakepg.ClosedPort(t), fakepg.ClosedPort(t))
	raw.KeepalivesCount = 4
	const iv = 50 * time.Millisecond
	next := ct.T0.Add(time.Hour)
	r, _ := statusRunner(t, raw, false, false, next)
	for _, tc := range []struct {
		failures int
		probing  bool
		want     time.Duration // from next
	}{
		{0, false, iv + 4*iv},
		{0, true, 4 * iv},
		{1, false, iv + 3*iv},
		{1, true, 3 * iv},
		{3, false, iv + iv},
		{3, true, iv},
	} {
		t.Run(fmt.Sprintf("%d failed, probing %v", tc.failures, tc.probing), func(t *testing.T) {
			r.core = core.NewCore(core.MasterMode, 4)
			for range tc.failures {
				r.core.Step(ct.FailProbe(false))
			}
			setSchedule(r.core, next, tc.probing)
			require.Equal(t, tc.probing, r.core.View().Probing)
			s := r.statusOf(ct.T0)
			require.Equal(t, tc.failures, s.Failures)
			require.Equal(t, 4, s.KeepalivesCount)
			require.Equal(t, &next, s.NextHeartbeatAt)
			require.Equal(t, "switch-async", s.NextAction)
			require.Equal(t, publish.Ptr(next.Add(tc.want)), s.NextActionAt)
		})
	}

	// At the count the decision is taken: nothing more to wait for.
	r.core.Step(ct.FailProbe(false))
	s := r.statusOf(ct.T0)
	require.Equal(t, "switching", s.State)
	require.Equal(t, "switch-async", s.ActionRunning)
	require.Equal(t, "", s.NextAction)
	require.Nil(t, s.NextActionAt)
	require.Equal(t, &next, s.NextHeartbeatAt)
}

func TestRunnerStatusFields(t *testing.T) {
	fakepg.CleanEnv(t)
	next := ct.T0.Add(time.Hour)
	const iv = 50 * time.Millisecond
	ok := ct.OKWith(ct.StandbyFacts)
	ok.At = ct.T0.Add(time.Second)
	timeout := ct.FailWith(core.FailTimeout, "no answer", -1)
	timeout.At = ct.T0.Add(2 * time.Second)
	for _, tc := range []struct {
		name       string
		setup      func(raw *settings.Raw)
		inRecovery bool
		confirmed  bool         // the fence was open before this worker started
		events     []core.Input // delivered as the runner's goroutines would
		steps      []core.Input // given to the core alone: nothing is started
		want       func(s *publish.Status)
	}{
		// A master starts unconfirmed: losing the standby would switch nothing.
		{name: "master at start",
			setup: func(raw *settings.Raw) {
				raw.PartnerConninfo = "host=partner.example port=5433 user=rep password=hunter2 dbname=postgres sslmode=disable"
				raw.MaxFailoverLag, raw.FailoverOnTimeout, raw.OnPartnerTimeout = 16<<20, true, "failover"
			},
			want: func(s *publish.Status) {
				s.State = "unconfirmed"
				s.Partner = "host=partner.example port=5433 user=rep password=******** dbname=postgres sslmode=disable"
				s.MaxFailoverLag, s.OnPartnerTimeout = 16<<20, "failover"
			}},
		{name: "master at start, confirmed before", confirmed: true,
			setup: func(raw *settings.Raw) {
				raw.PartnerConninfo = "host=partner.example port=5433 user=rep password=hunter2 dbname=postgres sslmode=disable"
				raw.MaxFailoverLag, raw.FailoverOnTimeout, raw.OnPartnerTimeout = 16<<20, true, "failover"
			},
			want: func(s *publish.Status) {
				s.Fence = "open"
				s.Partner = "host=partner.example port=5433 user=rep password=******** dbname=postgres sslmode=disable"
				s.MaxFailoverLag, s.OnPartnerTimeout = 16<<20, "failover"
				s.NextAction, s.NextActionAt = "switch-async", publish.Ptr(next.Add(iv+2*iv))
			}},
		// The good heartbeat confirmed the master: ready, fence open.
		{name: "master after a good and a failed heartbeat",
			events: []core.Input{ok, timeout},
			want: func(s *publish.Status) {
				s.State, s.Fence, s.Failures = "ready", "open", 1
				s.LastSuccess, s.LastFailure = publish.Ptr(ok.At), publish.Ptr(timeout.At)
				s.FailureClass, s.FailureWhy = "timeout", "timeout: no answer"
				s.NextAction, s.NextActionAt = "switch-async", publish.Ptr(next.Add(iv+iv))
			}},
		{name: "master switching",
			steps: []core.Input{ok, ct.FailProbe(false), ct.FailProbe(false)},
			want: func(s *publish.Status) {
				s.State, s.Failures, s.ActionRunning = "switching", 2, "switch-async"
				s.LastSuccess, s.LastFailure = publish.Ptr(ok.At), publish.Ptr(ct.T0)
				s.FailureClass, s.FailureWhy = "refused", "refused: "+ct.Reason
			}},
		{name: "master without a usable partner",
			setup: func(raw *settings.Raw) { raw.PartnerConninfo = "" },
			want: func(s *publish.Status) {
				s.State = "unconfirmed"                // until the first tick
				s.Partner, s.NextHeartbeatAt = "", nil // no heartbeat, no action to announce
			}},
		{name: "standby never reached", inRecovery: true,
			want: func(s *publish.Status) {
				s.Mode, s.Fence, s.MasterSync = "standby", "open", publish.Ptr(false)
				s.Blocked = ct.RiskNeverReached
			}},
		{name: "standby of a synchronous master", inRecovery: true,
			events: []core.Input{ct.OKProbe()},
			want: func(s *publish.Status) {
				s.Mode, s.State, s.Fence, s.MasterSync, s.PartnerLSN = "standby", "connected", "open", publish.Ptr(true), "0/3000060"
				s.LastSuccess = publish.Ptr(ct.T0)
				s.NextAction, s.NextActionAt = "promote", publish.Ptr(next.Add(iv+2*iv))
			}},
		{name: "standby of an asynchronous master", inRecovery: true,
			events: []core.Input{ct.OKWith(ct.AsyncMaster)},
			want: func(s *publish.Status) {
				s.Mode, s.State, s.Fence, s.MasterSync, s.PartnerLSN = "standby", "connected", "open", publish.Ptr(false), "0/3000060"
				s.LastSuccess = publish.Ptr(ct.T0)
				s.Blocked = ct.RiskLSN("0/3000060", "unknown")
			}},
		{name: "standby promoting", inRecovery: true,
			steps: []core.Input{ct.OKProbe(), ct.FailProbe(false), ct.FailProbe(false)},
			want: func(s *publish.Status) {
				s.Mode, s.State, s.Fence, s.MasterSync, s.PartnerLSN = "standby", "promoting", "open", publish.Ptr(true), "0/3000060"
				s.Failures, s.ActionRunning = 2, "promote"
				s.LastSuccess, s.LastFailure = publish.Ptr(ct.T0), publish.Ptr(ct.T0)
				s.FailureClass, s.FailureWhy = "refused", "refused: "+ct.Reason
			}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			raw := runRaw(t, fakepg.ClosedPort(t), fakepg.ClosedPort(t))
			if tc.setup != nil {
				tc.setup(&raw)
			}
			r, _ := statusRunner(t, raw, tc.inRecovery, tc.confirmed, next)
			deliver(r, tc.events...)
			for _, ev := range tc.steps {
				r.core.Step(ev)
			}
			now := ct.T0.Add(time.Minute)
			want := publish.Status{WorkerPID: os.Getpid(), StartedAt: r.startedAt, UpdatedAt: now, Mode: "master", State: "ready",
				Partner: raw.PartnerConninfo, Fence: "unconfirmed", KeepalivesCount: 2, KeepalivesTime: 0.05,
				OnPartnerTimeout: "keep_master", NextHeartbeatAt: &next}
			tc.want(&want)
			got := r.statusOf(now)
			require.Equal(t, want, got)
			decoded := decodeStatus(t, publish.EncodeStatus(got))
			require.True(t, decoded.StartedAt.Equal(got.StartedAt))
			decoded.StartedAt = got.StartedAt // without its monotonic reading and location
			require.Equal(t, want, decoded, "the JSON round trip loses nothing")
		})
	}
}

// The free texts are shortened until the status fits in shared memory
// (publish.StatusMax, NUL included); the rest is left alone.
func TestEncodeStatusFitsStatusMax(t *testing.T) {
	now := ct.T0
	base := publish.Status{WorkerPID: 4242, StartedAt: now, UpdatedAt: now, Mode: "standby", State: "not-promoting",
		Fence: "open", Failures: 9, KeepalivesCount: 3, KeepalivesTime: 1, OnPartnerTimeout: "failover",
		LastFailure: &now, FailureClass: "timeout", MasterSync: publish.Ptr(false), PartnerLSN: "0/3000060",
		NextHeartbeatAt: &now}
	want, err := json.Marshal(base)
	require.NoError(t, err)
	require.Equal(t, string(want), string(publish.EncodeStatus(base)), "what fits is not touched")

	long := map[string]string{
		"ascii":   strings.Repeat("host=partner.example ", 500),
		"runes":   strings.Repeat("日本🐘é", 1000),
		"escaped": strings.Repeat("<\"\\\n&", 2000),
	}
	for _, tc := range []struct {
		name                       string
		partner, failureWhy, block string
	}{
		{"long partner", long["ascii"], "timeout: short", ""},
		{"long reason", "host=p", long["runes"], ""},
		{"long blocked", "host=p", "timeout: short", long["escaped"]},
		{"all long", long["ascii"], long["runes"], long["escaped"]},
		{"all escaped", long["escaped"], long["escaped"], long["escaped"]},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := base
			s.Partner, s.FailureWhy, s.Blocked = tc.partner, tc.failureWhy, tc.block
			b := publish.EncodeStatus(s)
			require.Less(t, len(b), publish.StatusMax)
			require.True(t, json.Valid(b), "%s", b)
			got := decodeStatus(t, b)
			for _, f := range []struct{ got, orig string }{
				{got.Partner, s.Partner}, {got.FailureWhy, s.FailureWhy}, {got.Blocked, s.Blocked},
			} {
				if f.got != f.orig {
					require.True(t, strings.HasSuffix(f.got, "..."), f.got)
					require.True(t, strings.HasPrefix(f.orig, strings.TrimSuffix(f.got, "...")), "a prefix of %.20q", f.orig)
				}
			}
			got.Partner, got.FailureWhy, got.Blocked = s.Partner, s.FailureWhy, s.Blocked
			require.Equal(t, s, got)
		})
	}
}

// statusFailingHost fails PublishStatus while fail is set. The test sets
// it between calls on the runner's goroutine, its own.
type statusFailingHost struct {
	*fakeHost
	fail bool
}

func (h *statusFailingHost) PublishStatus(json []byte) error {
	if h.fail {
		return errors.New("no shared memory")
	}
	return h.fakeHost.PublishStatus(json)
}

// A status that cannot be published is logged once, not at every loop.
func TestRunnerPublishStatusErrorIsLoggedOnce(t *testing.T) {
	fakepg.CleanEnv(t)
	fh := newFakeHost(runRaw(t, fakepg.ClosedPort(t), fakepg.ClosedPort(t)))
	h := &statusFailingHost{fakeHost: fh, fail: true}
	r := newTestRunner(t, h)
	const failed = "pg_keeper: could not publish the status for pg_keeper.status(): no shared memory"

	// A second apart: each call writes the status (see
	// TestRunnerPublishesStatusOnChangeOrEverySecond).
	now := time.Now()
	publish := func() {
		now = now.Add(time.Second)
		r.publishStatus(now)
	}
	n := logCount(fh)
	for range 3 {
		publish()
	}
	require.Equal(t, []core.LogLine{ct.Warn(failed)}, logsSince(fh, n))

	h.fail = false
	publish()
	require.Equal(t, []core.LogLine{ct.Warn(failed)}, logsSince(fh, n))
	require.Len(t, hostStatuses(fh), 1)

	// Failing again after it worked is news again.
	h.fail = true
	publish()
	publish()
	require.Equal(t, []core.LogLine{ct.Warn(failed), ct.Warn(failed)}, logsSince(fh, n))

	// A failed publish is tried again at the next turn, within the second
	// and with nothing new to show.
	h.fail = false
	r.publishStatus(now.Add(time.Millisecond))
	require.Len(t, hostStatuses(fh), 2)
	r.publishStatus(now.Add(2 * time.Millisecond))
	require.Len(t, hostStatuses(fh), 2, "then nothing new within the second")

	// A change whose publish failed is shown at the next turn.
	h.fail = true
	r.core.Step(ct.FailProbe(false))
	r.publishStatus(now.Add(3 * time.Millisecond))
	require.Len(t, hostStatuses(fh), 2)
	h.fail = false
	r.publishStatus(now.Add(4 * time.Millisecond))
	require.Len(t, hostStatuses(fh), 3)
	require.Equal(t, 1, decodeStatus(t, hostStatuses(fh)[2]).Failures)
	r.publishStatus(now.Add(5 * time.Millisecond))
	require.Len(t, hostStatuses(fh), 3)
	require.Equal(t, []core.LogLine{ct.Warn(failed), ct.Warn(failed), ct.Warn(failed)}, logsSince(fh, n))
}

// A fence that could not be read at start is unknown until it is set; if
// it cannot be set either, the status still says what the keeper knows.
func TestRunnerPublishesStatusWithAnUnknownFence(t *testing.T) {
	fakepg.CleanEnv(t)
	h := newFakeHost(runRaw(t, fakepg.ClosedPort(t), fakepg.ClosedPort(t)))
	h.fenceReadErr = errors.New("no shared memory")
	h.fenceErr = func(core.Fence) error { return errors.New("no shared memory") }
	r := newTestRunner(t, h)
	r.applyFence()
	require.Equal(t, core.Fence(-1), r.fence.held, "still unknown")
	require.NotPanics(t, func() { r.publishStatus(time.Now()) })
	require.Len(t, hostStatuses(h), 1)
}

// The loop turns at each heartbeat and event: the status is written when
// what it shows changed, and at least once a second (for updated_at).
func TestRunnerPublishesStatusOnChangeOrEverySecond(t *testing.T) {
	fakepg.CleanEnv(t)
	h := newFakeHost(runRaw(t, fakepg.ClosedPort(t), fakepg.ClosedPort(t)))
	r := newTestRunner(t, h)
	at := time.Now()
	r.publishStatus(at)
	require.Len(t, hostStatuses(h), 1)
	r.publishStatus(at.Add(100 * time.Millisecond))
	r.publishStatus(at.Add(999 * time.Millisecond))
	require.Len(t, hostStatuses(h), 1, "nothing changed within the second")

	r.core.Step(ct.FailProbe(false))
	r.publishStatus(at.Add(999 * time.Millisecond))
	require.Len(t, hostStatuses(h), 2, "a failed heartbeat is shown at once")
	require.Equal(t, 1, decodeStatus(t, hostStatuses(h)[1]).Failures)

	r.publishStatus(at.Add(1998 * time.Millisecond))
	require.Len(t, hostStatuses(h), 2)
	r.publishStatus(at.Add(1999 * time.Millisecond))
	require.Len(t, hostStatuses(h), 3, "a second after the last")
	s := decodeStatus(t, hostStatuses(h)[2])
	require.True(t, s.UpdatedAt.Equal(at.Add(1999*time.Millisecond)), "%s", s.UpdatedAt)

	// A heartbeat that starts, the fence, the state: each is news.
	r.core.Step(core.Input{Kind: core.TickInput, At: at})
	r.publishStatus(at.Add(2 * time.Second))
	require.Len(t, hostStatuses(h), 4)
	deliver(r, ct.OKWith(ct.StandbyFacts)) // confirmed: the fence opens
	r.publishStatus(at.Add(2 * time.Second))
	require.Len(t, hostStatuses(h), 5)
	s = decodeStatus(t, hostStatuses(h)[4])
	require.Equal(t, "ready", s.State)
	require.Equal(t, "open", s.Fence)
}

// TestRunPublishesStatus runs the loop against a fake partner: the status
// is published after each wake, and after a few heartbeats says what the
// keeper knows and what it would do.
func TestRunPublishesStatus(t *testing.T) {
	fakepg.CleanEnv(t)
	const iv = 50 * time.Millisecond
	for _, tc := range []struct {
		name       string
		inRecovery bool
		partner    []fakepg.Column
		want       func(s *publish.Status)
		extraKeys  []string
	}{
		{"master", false, fakepg.FactsRow(true, "7300000000000000001", fakepg.StartText, false, "-1", "0"),
			func(s *publish.Status) { s.Mode, s.NextAction = "master", "switch-async" }, nil},
		{"standby", true, fakepg.FactsRow(false, "7300000000000000001", fakepg.StartText, true, "50331744", "1"),
			func(s *publish.Status) {
				s.Mode, s.NextAction, s.MasterSync, s.PartnerLSN = "standby", "promote", publish.Ptr(true), "0/3000060"
			}, []string{"master_sync", "partner_lsn"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv := fakepg.Start(t, tc.partner...)
			raw := runRaw(t, srv.Port, fakepg.ClosedPort(t))
			raw.SystemID, raw.StartTime = 7300000000000000001, ct.T0
			h := newFakeHost(raw)
			h.inRecovery = tc.inRecovery
			h.timeline = 1
			done := startRun(t, h)
			connected := func() int {
				n := 0
				for _, b := range hostStatuses(h) {
					if decodeStatus(t, b).State == "connected" {
						n++
					}
				}
				return n
			}
			waitFor(t, "three statuses once connected", func() bool { return connected() >= 3 })
			require.Equal(t, 0, stopAndWait(t, h, done))

			statuses := hostStatuses(h)
			var first publish.Status
			for i, b := range statuses {
				s := decodeStatus(t, b)
				if i == 0 {
					first = s
					continue
				}
				require.Equal(t, first.StartedAt, s.StartedAt)
				require.False(t, s.UpdatedAt.Before(decodeStatus(t, statuses[i-1]).UpdatedAt), "updated_at moves forward")
			}
			last := statuses[len(statuses)-1]
			s := decodeStatus(t, last)
			require.Equal(t, sorted(append([]string{"worker_pid", "started_at", "updated_at", "mode", "state", "partner",
				"fence", "consecutive_failures", "keepalives_count", "keepalives_time", "on_partner_timeout",
				"max_failover_lag", "last_success", "last_failure", "next_heartbeat_at", "next_action",
				"next_action_at", "maintenance", "auto_rejoin"}, tc.extraKeys...)), jsonKeys(t, last))

			// The times depend on the run; checked, then set aside.
			require.False(t, s.UpdatedAt.Before(s.StartedAt))
			require.NotNil(t, s.LastSuccess)
			require.False(t, s.LastSuccess.Before(s.StartedAt) || s.LastSuccess.After(s.UpdatedAt))
			require.NotNil(t, s.NextHeartbeatAt)
			// Set when the last heartbeat started, an interval ahead; in the
			// past only while a heartbeat is slow to end.
			require.False(t, s.NextHeartbeatAt.After(s.UpdatedAt.Add(iv)), "%s after %s", s.NextHeartbeatAt, s.UpdatedAt)
			require.True(t, s.NextHeartbeatAt.After(s.UpdatedAt.Add(-time.Second)), "%s before %s", s.NextHeartbeatAt, s.UpdatedAt)
			require.NotNil(t, s.NextActionAt)
			// Two heartbeats to fail, the last checking replication: from
			// next_heartbeat_at, 2 intervals if one is under way, else 3.
			require.Contains(t, []time.Duration{2 * iv, 3 * iv}, s.NextActionAt.Sub(*s.NextHeartbeatAt))
			want := publish.Status{WorkerPID: os.Getpid(), State: "connected", Partner: raw.PartnerConninfo, Fence: "open",
				KeepalivesCount: 2, KeepalivesTime: 0.05, OnPartnerTimeout: "keep_master"}
			tc.want(&want)
			s.StartedAt, s.UpdatedAt, s.LastSuccess, s.NextHeartbeatAt, s.NextActionAt = time.Time{}, time.Time{}, nil, nil, nil
			require.Equal(t, want, s)
			h.mu.Lock()
			defer h.mu.Unlock()
			require.Nil(t, h.strayCalls)
		})
	}
}
