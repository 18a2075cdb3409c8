// Package keeper is the runner of pg_keeper's worker: its loop gathers what
// happened (heartbeat and action results, what the server shows), steps the
// core (keeper/core) with it, and routes the core's outputs to the packages
// that carry them out; it also keeps the settings, the state-change queue
// and what pg_keeper.status and events() show.
package keeper

import (
	"context"
	"fmt"
	"os"
	"runtime/debug"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/pg-keeper/pg_keeper/keeper/action"
	"github.com/pg-keeper/pg_keeper/keeper/command"
	"github.com/pg-keeper/pg_keeper/keeper/core"
	"github.com/pg-keeper/pg_keeper/keeper/publish"
	"golang.org/x/sys/unix"
)

// logPrefix starts every line the keeper writes to the server log.
const logPrefix = "pg_keeper: "

// replicationPoll is how often the runner looks at the server's own
// replication connections (shared memory, no session) between heartbeats:
// a drop there starts the next heartbeat at once.
const replicationPoll = 100 * time.Millisecond

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

// message is what a goroutine hands the main loop: an input for the core,
// or something for the runner alone.
type message struct {
	input    *core.Input
	timeline int             // after a promotion: the new timeline, for after_command
	command  *command.Result // after_command's or a state-change command's result
	hook     string          // a state-change command ended: the change it was for
	notice   string          // a goroutine has something to log
	answer   *core.Answer    // the answer to the request under way (pause, resume)
}

// runner carries out what the core decides: it gathers inputs (heartbeat
// results, action results, what the server shows), steps the core, and
// routes the core's outputs to the parts that act on them.
type runner struct {
	host     Host
	settings Settings
	core     *core.Core
	inbox    chan message
	wakeR    int // the main loop waits on this end of a pipe...
	wakeW    int // ...that goroutines write a byte to after sending a message
	ctx      context.Context
	cancel   context.CancelFunc

	probed *pgx.ConnConfig // the partner settings of the last heartbeat started
	// partnerName is the application_name the standby partner streams
	// with, from its last good heartbeat: it names its walsender here.
	partnerName string
	replication int // the server's own replication connections at the last look
	title       string
	timeline    int        // this server's timeline after it promoted itself
	fenceState  core.Fence // what the server holds (see bgworker/fence.c); -1: unknown
	// fenceFailedAt: when setting the fence to fenceFailedFor last failed
	// (zero: it did not).
	fenceFailedAt  time.Time
	fenceFailedFor core.Fence

	startedAt     time.Time
	hostname      string
	node          string // host:port, naming this server in pg_keeper.events()
	tag           string // names this node's own data directory (action.NodeTag)
	confirmStuck  bool   // the operator's confirmation file could not be removed
	hist          *publish.History
	actionSince   time.Time    // when the core's action in flight started
	hooks         chan hookJob // state-change commands waiting to run; nil before the first
	statusFailed  bool
	lastPublished time.Time
	publishedSig  string // what the last published status said, in short

	request       *Request // the SQL request under way, until answered
	answeredAt    time.Time
	requestName   string
	pauseReason   string // what pg_keeper.pause() was given
	paused        bool   // maintenance mode as last logged
	restartFailed string // the switchover's or rejoin's helper failed before this start
	rejoinWarned  string // the reason auto_rejoin cannot work, as last logged
}

func newRunner(host Host) (*runner, error) {
	var p [2]int
	if err := unix.Pipe2(p[:], unix.O_NONBLOCK|unix.O_CLOEXEC); err != nil {
		return nil, fmt.Errorf("could not create a pipe: %v", err)
	}
	r := &runner{host: host, inbox: make(chan message, 16), wakeR: p[0], wakeW: p[1],
		// Used until the settings can be read: the loop must never spin.
		// PartnerSet: settings that cannot be read are not an unset partner.
		settings:  Settings{Interval: 5 * time.Second, KeepalivesCount: 4, CommandTimeout: time.Minute, PartnerSet: true},
		startedAt: time.Now()}
	r.ctx, r.cancel = context.WithCancel(context.Background())

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
	r.reportRestart()
	r.applySettings(time.Now())
	// The fence outlives a restart of this worker, not of the server: a
	// server once confirmed stays so until it stops.
	fence, err := host.Fence()
	r.fenceState = fence
	if err != nil {
		// Unknown: the first turn of the loop sets what the core wants.
		r.log(core.Warning, "could not read the fence: "+err.Error())
		fence, r.fenceState = core.FenceUnconfirmed, -1
	}
	if mode == core.MasterMode {
		async, err := action.SavedAsync(r.settings.DataDir, r.tag)
		if err != nil {
			r.log(core.Warning, err.Error())
		}
		r.core.Resume(fence, async)
	}
	r.replication, _ = host.ReplicationState()
	started := fmt.Sprintf("started in %s mode: partner %q, keepalives_time %s, keepalives_count %d",
		mode, r.settings.PartnerDisplay, r.settings.Interval, r.settings.KeepalivesCount)
	r.log(core.Info, started)
	r.record(publish.Record{Kind: publish.KindStart, To: r.core.State().String(), Detail: started})
	r.setTitle()
	return r, nil
}

func (r *runner) close() {
	if r.hist != nil {
		r.hist.Close(2 * time.Second)
	}
	r.cancel()
	unix.Close(r.wakeR)
	// wakeW stays open: a goroutine still running may write to it.
}

func (r *runner) loop() int {
	for {
		now := time.Now()
		r.observe(now)
		r.step(core.Input{Kind: core.TickInput, At: now})
		r.noticePause()
		r.syncFence()
		r.publishStatus(now)

		timeout := min(time.Until(r.core.NextTick()), replicationPoll)
		wake, err := r.host.Wait(r.wakeR, max(timeout, 0))
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
		if wake&WakeSocket != 0 {
			drain(r.wakeR)
		}
		r.handleMessages()
	}
}

// observe turns what the server shows into inputs: recovery ended, an
// operator's confirmation file, a replication connection that dropped.
func (r *runner) observe(now time.Time) {
	if r.core.State().Mode() == core.StandbyMode {
		if inRecovery, err := r.host.InRecovery(); err == nil && !inRecovery {
			r.step(core.Input{Kind: core.RecoveryEndedInput, At: now})
		}
	}
	if why := r.confirmedByOperator(); why != "" {
		r.step(core.Input{Kind: core.ConfirmInput, At: now, Detail: why})
	}
	if n, err := r.host.ReplicationState(); err == nil {
		if n < r.replication {
			r.step(core.Input{Kind: core.ReplicationDropInput, At: now})
		}
		r.replication = n
	}
	if r.request == nil {
		r.takeRequest(now)
	}
}

func (r *runner) handleMessages() {
	for {
		select {
		case m := <-r.inbox:
			r.handle(m)
		default:
			return
		}
	}
}

func (r *runner) handle(m message) {
	switch {
	case m.notice != "":
		r.log(core.Warning, m.notice)
		return
	case m.hook != "":
		r.hookDone(m.hook, *m.command)
		return
	case m.answer != nil:
		r.answer(*m.answer)
		return
	case m.input == nil:
		return
	}
	in := *m.input
	switch in.Kind {
	case core.ProbeInput:
		r.learnTLS(in.Probe)
		if in.Probe.Partner.ReceiverName != "" {
			r.partnerName = in.Probe.Partner.ReceiverName
		}
	case core.ActionInput:
		// A result the core ignores (no longer in flight) is not history.
		if in.Action == core.RunAfterCommand || in.Action == r.core.InFlight() {
			r.actionDone(in, m)
		}
		if in.Action == core.Promote && in.Err == "" {
			r.timeline = m.timeline
		}
		if m.command != nil {
			for _, line := range m.command.Output {
				r.log(core.Info, "after_command: "+line)
			}
		}
	}
	r.step(in)
}

// step gives the core one input and routes what it asks for.
func (r *runner) step(in core.Input) {
	out := r.core.Step(in)
	for _, l := range out.Logs {
		r.log(l.Level, l.Msg)
	}
	if out.Change != nil {
		r.stateChanged(out.Change)
	}
	if out.Probe != nil {
		r.startProbe(*out.Probe)
	}
	for _, a := range out.Actions {
		r.start(a)
	}
	if out.Answer != nil {
		r.answer(*out.Answer)
	}
	r.setTitle()
}

func (r *runner) loadSettings(reload bool) {
	raw, err := r.host.Settings()
	if err != nil {
		r.log(core.Error, "could not read the settings: "+err.Error())
		return
	}
	s, errs := ParseSettings(raw)
	for _, e := range errs {
		r.log(core.Error, e.Error())
	}
	old := r.settings
	r.settings = s
	if reload {
		if s.Interval != old.Interval || s.KeepalivesCount != old.KeepalivesCount || s.PartnerDisplay != old.PartnerDisplay || s.Policy != old.Policy {
			r.log(core.Info, fmt.Sprintf("settings reloaded: partner %q, keepalives_time %s, keepalives_count %d",
				s.PartnerDisplay, s.Interval, s.KeepalivesCount))
		}
		r.applySettings(time.Now())
	}
}

// applySettings hands the core the settings it decides with.
func (r *runner) applySettings(now time.Time) {
	r.core.SetThreshold(r.settings.KeepalivesCount)
	r.core.SetPolicy(r.settings.Policy)
	r.core.SetInterval(r.settings.Interval, now)
	r.core.SetPartner(r.settings.PartnerSet, r.settings.Partner != nil)
	r.core.SetMaintenance(r.settings.Maintenance)
	if r.restartFailed != "" {
		if res, err := action.ReadResult(r.settings.DataDir); err == nil && !res.Found {
			r.restartFailed = "" // the operator removed it: rejoining is allowed again
			r.log(core.Info, action.ResultFile+" was removed: pg_keeper.auto_rejoin applies again")
		}
	}
	blocked := r.settings.RewindBlocked
	if blocked == "" && r.restartFailed != "" {
		blocked = r.restartFailed + "; remove $PGDATA/" + action.ResultFile + " once it is dealt with"
	}
	r.core.SetRejoin(r.settings.AutoRejoin, blocked)
	if r.settings.AutoRejoin && blocked != "" && blocked != r.rejoinWarned {
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
	if t != r.title {
		r.host.SetTitle(t)
		r.title = t
	}
}

func drain(fd int) {
	var buf [64]byte
	for {
		if n, err := unix.Read(fd, buf[:]); n <= 0 || err != nil {
			return
		}
	}
}
