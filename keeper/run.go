// Package keeper is the runner of pg_keeper's worker. Its loop waits (the
// latch, and the executor's mailbox), reads what happened into inputs for
// the core (keeper/core), steps the core, and applies each output: the log
// lines, the process title, the fence, the answer to a SQL request and the
// events on the main thread, the rest through the executor
// (keeper/executor), whose results come back to the loop as inputs. Then it
// publishes what pg_keeper.status shows. It decides nothing.
package keeper

import (
	"fmt"
	"os"
	"runtime/debug"
	"strconv"
	"strings"
	"time"

	"github.com/pg-keeper/pg_keeper/keeper/action"
	"github.com/pg-keeper/pg_keeper/keeper/core"
	"github.com/pg-keeper/pg_keeper/keeper/executor"
	"github.com/pg-keeper/pg_keeper/keeper/probe"
	"github.com/pg-keeper/pg_keeper/keeper/publish"
	"github.com/pg-keeper/pg_keeper/keeper/settings"
)

// logPrefix starts every line the keeper writes to the server log.
const logPrefix = "pg_keeper: "

// maxTurn is the longest the loop waits between two turns when nothing
// happens: the status is republished (updated_at) and an operator's
// confirmation file is looked for at least this often. What must be seen
// sooner, the end of a replication connection (it starts the next heartbeat
// at once) and of recovery, the wait watches for itself (Watch), in shared
// memory and without a turn of this loop, so an idle keeper turns once a
// heartbeat and once a second.
const maxTurn = time.Second

// watchPoll is how often a wait looks at the server's replication and
// recovery: a tenth of the interval, so a drop starts the next heartbeat
// that much sooner than the interval would; no more often than ten times
// a second, which a 100 ms interval needs, and no less often than twice.
func watchPoll(interval time.Duration) time.Duration {
	return min(max(interval/10, 100*time.Millisecond), 500*time.Millisecond)
}

// Run is the keeper's main loop. It must run on the goroutine that owns
// host (the worker's main thread) and returns the worker's exit code. It
// never panics: a panic here would abort the server process.
func Run(host Host) (code int) {
	defer func() {
		if p := recover(); p != nil {
			host.Log(core.Error, fmt.Sprintf("%sinternal error, the worker restarts: %v\n%s", logPrefix, p, debug.Stack()))
			code = 1
		}
	}()
	r, err := newRunner(host)
	if err != nil {
		host.Log(core.Error, logPrefix+err.Error())
		return 1
	}
	defer r.close()
	return r.loop()
}

// runner feeds the core and applies what it outputs.
type runner struct {
	host     Host
	settings *settings.Settings
	core     *core.Core
	box      *executor.Mailbox
	exec     *executor.Executor
	fence    fenceApplier
	title    string
	// replication is the server's own replication connections at the last
	// look (Host.ReplicationState).
	replication int

	startedAt    time.Time
	hostname     string
	node         string // host:port, naming this server in pg_keeper.events()
	tag          string // names this node's own data directory (action.NodeTag)
	confirmStuck bool   // the operator's confirmation file could not be removed
	hist         *publish.History
	status       statusPublisher

	request       *Request // the SQL request under way, until answered
	restartFailed string   // the switchover's or rejoin's helper failed before this start
	rejoinWarned  string   // the reason auto_rejoin cannot work, as last logged
}

func newRunner(host Host) (*runner, error) {
	box, err := executor.NewMailbox()
	if err != nil {
		return nil, err
	}
	r := &runner{host: host, box: box, settings: settings.Fallback(), startedAt: time.Now()}
	r.exec = executor.New(box, host.CommitCounter())
	r.loadSettings(false)
	r.hostname, _ = os.Hostname()
	r.node = r.hostname + ":" + strconv.Itoa(r.settings.Port)
	r.tag = action.NodeTag(r.hostname, r.settings.Port, r.settings.DataDir)
	r.openHistory()
	inRecovery, err := host.InRecovery()
	if err != nil {
		r.close()
		return nil, fmt.Errorf("could not tell whether the server is in recovery: %v", err)
	}
	mode := core.MasterMode
	if inRecovery {
		mode = core.StandbyMode
	}
	r.core = core.NewCore(mode, r.settings.KeepalivesCount)
	if term, err := action.LoadTerm(r.settings.DataDir); err != nil {
		r.log(core.Warning, err.Error())
	} else {
		r.core.SetTerm(term)
	}
	r.reportRestart()
	r.applySettings(time.Now())
	// The fence outlives a restart of this worker, not of the server: a
	// server once confirmed stays so until it stops.
	held, err := host.Fence()
	if err != nil {
		// Unknown: the first turn of the loop sets what the core wants.
		r.log(core.Warning, "could not read the fence: "+err.Error())
		held = -1
	}
	if mode == core.MasterMode {
		async, err := action.SavedAsync(r.settings.DataDir, r.tag)
		if err != nil {
			r.log(core.Warning, err.Error())
		}
		resumeFrom := held
		if held < 0 {
			resumeFrom = core.FenceUnconfirmed
		}
		r.core.Resume(resumeFrom, async)
	}
	r.fence = fenceApplier{held: held, want: r.core.Fence()}
	r.replication, _ = host.ReplicationState()
	started := fmt.Sprintf("started in %s mode: partner %q, keepalives_time %s, keepalives_count %d",
		mode, r.settings.Partner.Display(), r.settings.Interval, r.settings.KeepalivesCount)
	r.log(core.Info, started)
	r.record(publish.Record{Kind: publish.KindStart, To: r.core.State().String(), Detail: started})
	r.setTitle()
	return r, nil
}

func (r *runner) close() {
	if r.hist != nil {
		r.hist.Close(2 * time.Second)
	}
	r.exec.Close()
	r.box.Close()
}

// loop: wait, read inputs, step, apply, publish.
func (r *runner) loop() int {
	for {
		now := time.Now()
		for _, in := range r.observe(now) {
			r.step(in)
		}
		r.step(core.Input{Kind: core.TickInput, At: now})
		r.publishStatus(now)
		r.exec.TidySessions(probe.ServerStopping(r.settings.DataDir), 2*r.settings.Interval+time.Second)

		timeout := min(time.Until(r.core.NextTick()), maxTurn)
		watch := Watch{Poll: watchPoll(r.settings.Interval), Replication: r.replication,
			Promoted: r.core.State().Mode() == core.StandbyMode}
		wake, err := r.host.Wait(r.box.Fd(), max(timeout, 0), watch)
		if err != nil {
			r.log(core.Error, "waiting failed, the worker restarts: "+err.Error())
			return 1
		}
		if wake&WakeShutdown != 0 {
			r.log(core.Info, "stopping")
			r.record(publish.Record{Kind: publish.KindStop, From: r.core.State().String(), Detail: "the server is stopping"})
			return 0
		}
		if wake&WakeReload != 0 {
			r.loadSettings(true)
		}
		for _, in := range r.box.Drain() {
			r.step(in)
		}
	}
}

// step gives the core one input and applies what it outputs.
func (r *runner) step(in core.Input) { r.apply(r.core.Step(in)) }

// apply carries out an output: on the main thread what calls PostgreSQL
// (the log, the events, the fence, the answer, the title), and the rest
// through the executor, after the fence: an action may need the fence the
// same output asks for (the hand-over reads where the WAL ends once writes
// are refused).
func (r *runner) apply(out core.Output) {
	for _, l := range out.Logs {
		r.log(l.Level, l.Msg)
	}
	for _, rep := range out.Reports {
		r.record(publish.FromReport(rep))
	}
	if ch := out.Change; ch != nil {
		r.record(publish.Record{Kind: publish.KindTransition, From: ch.From.String(), To: ch.To.String(),
			Trigger: ch.On.String(), Detail: ch.Reason})
	}
	if out.Fence != nil {
		r.fence.want = *out.Fence
	}
	r.applyFence()
	for _, l := range r.exec.Apply(out, r.env()) {
		r.log(l.Level, l.Msg)
	}
	if out.Answer != nil {
		r.answer(*out.Answer)
	}
	r.setTitle()
}

// env is what the executor carries out an output with.
func (r *runner) env() executor.Env {
	return executor.Env{Settings: r.settings, Timeline: r.host.Timeline, Keepalive: r.host.EmitKeepalive, Fence: r.fence.held,
		Hostname: r.hostname, Node: r.node, Tag: r.tag}
}

func (r *runner) loadSettings(reload bool) {
	raw, err := r.host.Settings()
	if err != nil {
		r.log(core.Error, "could not read the settings: "+err.Error())
		return
	}
	s, errs := settings.Parse(raw)
	for _, e := range errs {
		r.log(core.Error, e.Error())
	}
	old := r.settings
	r.settings = s
	if reload {
		if s.Interval != old.Interval || s.KeepalivesCount != old.KeepalivesCount ||
			s.Partner.Display() != old.Partner.Display() || s.Policy != old.Policy {
			r.log(core.Info, fmt.Sprintf("settings reloaded: partner %q, keepalives_time %s, keepalives_count %d",
				s.Partner.Display(), s.Interval, s.KeepalivesCount))
		}
		r.applySettings(time.Now())
		r.step(core.Input{Kind: core.SettingsInput, At: time.Now()})
	}
}

// applySettings hands the core the settings it decides with.
func (r *runner) applySettings(now time.Time) {
	s := r.settings
	r.core.SetThreshold(s.KeepalivesCount)
	r.core.SetPolicy(s.Policy)
	r.core.SetFenceCommand(s.FenceCommand != "")
	r.core.SetWitness(s.Witness.Set())
	r.core.SetInterval(s.Interval, now)
	r.core.SetPartner(s.Partner.Set(), s.Partner.Usable())
	r.core.SetMaintenance(s.Maintenance)
	r.core.SetSyncSlots(s.SyncSlots)
	if r.restartFailed != "" {
		if res, err := action.ReadResult(s.DataDir); err == nil && !res.Found {
			r.restartFailed = "" // the operator removed it: rejoining is allowed again
			r.log(core.Info, action.ResultFile+" was removed: pg_keeper.auto_rejoin applies again")
		}
	}
	// What a rewind needs is looked for only when a rejoin may need it.
	blocked := ""
	if s.AutoRejoin {
		blocked = action.RewindBlocked(s.DataDir, s.BinDir, s.WalLogHints, s.DataChecksums)
	}
	if blocked == "" && r.restartFailed != "" {
		blocked = r.restartFailed + "; remove $PGDATA/" + action.ResultFile + " once it is dealt with"
	}
	r.core.SetRejoin(s.AutoRejoin, blocked)
	if s.AutoRejoin && blocked != "" && blocked != r.rejoinWarned {
		r.log(core.Warning, "pg_keeper.auto_rejoin is on, but a superseded server here would stay fenced: "+blocked)
	}
	r.rejoinWarned = blocked
}

func (r *runner) log(level core.Level, msg string) { r.host.Log(level, logPrefix+msg) }

func (r *runner) setTitle() {
	t := r.core.State().Title()
	if r.core.Paused() {
		t = strings.TrimSuffix(t, ")") + ", maintenance)"
	}
	if r.fence.held == core.FenceNoLease {
		t = strings.TrimSuffix(t, ")") + ", no lease)"
	}
	if t != r.title {
		r.host.SetTitle(t)
		r.title = t
	}
}
