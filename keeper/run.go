package keeper

import (
	"context"
	"errors"
	"fmt"
	"os"
	"runtime/debug"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"golang.org/x/sys/unix"
)

// logPrefix starts every line the keeper writes to the server log.
const logPrefix = "pg_keeper: "

// Run is the keeper's main loop. It must run on the goroutine that owns
// host (the worker's main thread) and returns the worker's exit code. It
// never panics: a panic here would abort the server process.
func Run(host Host) (code int) {
	defer func() {
		if p := recover(); p != nil {
			host.Log(Error, fmt.Sprintf("%sinternal error, the worker restarts: %v\n%s", logPrefix, p, debug.Stack()))
			code = 1
		}
	}()
	r, err := newRunner(host)
	if err != nil {
		host.Log(Error, logPrefix+err.Error())
		return 1
	}
	defer r.close()
	return r.loop()
}

type runner struct {
	host     Host
	settings Settings
	core     *Core
	events   chan Event
	wakeR    int // the main loop waits on this end of a pipe...
	wakeW    int // ...that goroutines write a byte to after sending an event
	ctx      context.Context
	cancel   context.CancelFunc

	probing bool
	probed  *pgx.ConnConfig // the partner settings of the last heartbeat started
	// partnerName is the application_name the standby partner streams
	// with, from its last good heartbeat: it names its walsender here.
	partnerName string
	nextProbe   time.Time
	title       string
	timeline    int   // this server's timeline after it promoted itself
	fenceState  Fence // whether client connections may proceed (see bgworker/fence.c)

	startedAt    time.Time
	hostname     string
	node         string // host:port, naming this server in pg_keeper.events()
	hist         *history
	actionSince  time.Time    // when the core's action in flight started
	hooks        chan hookJob // state-change commands waiting to run; nil before the first
	statusFailed bool
}

func newRunner(host Host) (*runner, error) {
	var p [2]int
	if err := unix.Pipe2(p[:], unix.O_NONBLOCK|unix.O_CLOEXEC); err != nil {
		return nil, fmt.Errorf("could not create a pipe: %v", err)
	}
	r := &runner{host: host, events: make(chan Event, 16), wakeR: p[0], wakeW: p[1],
		// Used until the settings can be read: the loop must never spin.
		settings:  Settings{Interval: 5 * time.Second, Count: 4, CommandTimeout: time.Minute},
		startedAt: time.Now()}
	r.ctx, r.cancel = context.WithCancel(context.Background())

	r.loadSettings(false)
	r.hostname, _ = os.Hostname()
	r.node = r.hostname + ":" + strconv.Itoa(r.settings.Port)
	r.openHistory()
	inRecovery, err := host.InRecovery()
	if err != nil {
		r.close()
		return nil, fmt.Errorf("could not tell whether the server is in recovery: %v", err)
	}
	mode := MasterMode
	if inRecovery {
		mode = StandbyMode
	}
	r.core = NewCore(mode, r.settings.Count)
	r.core.SetPolicy(r.settings.Policy)
	r.removeConfirmFile(mode == MasterMode)
	if mode == StandbyMode {
		r.openFence() // nothing to hold on a standby, nor once it is promoted
	} else {
		// The fence outlives a restart of this worker, not of the server:
		// a server once confirmed stays so until it stops.
		fence, err := host.Fence()
		if err != nil {
			r.log(Warning, "could not read the fence, taking this server as unconfirmed: "+err.Error())
		}
		r.fenceState = fence
		async, err := savedAsync(r.settings.DataDir, r.nodeTag())
		if err != nil {
			r.log(Warning, err.Error())
		}
		r.core.StartUnconfirmed(fence != FenceOpen, async)
	}
	started := fmt.Sprintf("started in %s mode: partner %q, keepalives_time %s, keepalives_count %d",
		mode, r.settings.PartnerDisplay, r.settings.Interval, r.settings.Count)
	r.log(Info, started)
	r.record(Record{Kind: KindStart, To: r.core.State().String(), Detail: started})
	r.setTitle()
	return r, nil
}

func (r *runner) close() {
	if r.hist != nil {
		r.hist.close(2 * time.Second)
	}
	r.cancel()
	unix.Close(r.wakeR)
	// wakeW stays open: a goroutine still running may write to it.
}

func (r *runner) loop() int {
	for {
		now := time.Now()
		if !r.probing && !now.Before(r.nextProbe) {
			r.tick(now)
		}
		timeout := time.Until(r.nextProbe)
		if r.probing {
			timeout = r.settings.Interval // the probe's result wakes us earlier
		}
		wake, err := r.host.Wait(r.wakeR, max(timeout, 0))
		if err != nil {
			r.log(Error, "waiting failed, the worker restarts: "+err.Error())
			return 1
		}
		if wake&WakeShutdown != 0 {
			r.log(Info, "stopping")
			r.record(Record{Kind: KindStop, From: r.core.State().String(), Detail: "the server is stopping"})
			return 0
		}
		if wake&WakeReload != 0 {
			r.loadSettings(true)
		}
		if wake&WakeSocket != 0 {
			drain(r.wakeR)
		}
		r.handleEvents()
		r.publishStatus(time.Now())
	}
}

// tick starts a heartbeat, after checking whether the server left recovery.
func (r *runner) tick(now time.Time) {
	r.nextProbe = now.Add(r.settings.Interval)
	mode := r.core.State().Mode()
	if mode == StandbyMode {
		if inRecovery, err := r.host.InRecovery(); err == nil && !inRecovery {
			r.step(Event{Kind: RecoveryEndedEvent, At: now})
			mode = r.core.State().Mode()
		}
	}
	partner, local := r.settings.Partner, r.settings.Local
	if why := r.confirmedByOperator(); why != "" {
		if r.core.State() == MasterUnconfirmed {
			r.step(Event{Kind: ConfirmEvent, At: now, Detail: why})
		} else {
			r.log(Warning, "ignored "+ConfirmFile+": this server is "+r.core.State().String()+", there is nothing to confirm")
		}
	}
	if partner == nil {
		// Logged when the settings were read; a bad setting is no failure of
		// the partner. Only an unset one means that there is nothing to wait for.
		if strings.TrimSpace(r.settings.PartnerDisplay) == "" && r.core.State() == MasterUnconfirmed {
			r.step(Event{Kind: ConfirmEvent, At: now,
				Detail: "pg_keeper.partner_conninfo is not set: no partner to check, the keeper is inactive"})
		}
		return
	}
	interval, self := r.settings.Interval, r.settings.Self
	if mode == MasterMode {
		self.Timeline, _ = r.host.Timeline()
	}
	// Replication is checked at every failed heartbeat: whether it outlives
	// the failures tells a firewall from a stopped server (see Core.certain).
	checkCaughtUp := r.core.State() == MasterAsync
	receiverName, partnerName := r.settings.ReceiverName, r.partnerName
	r.probing, r.probed = true, partner
	r.spawn(Event{Kind: ProbeEvent, Probe: ProbeResult{Class: FailOther, LocalLSN: -1}}, func() Event {
		ctx, cancel := context.WithTimeout(r.ctx, interval)
		res := Probe(ctx, partner, self, mode, receiverName)
		cancel()
		if !res.OK {
			ctx, cancel := context.WithTimeout(r.ctx, max(interval, 100*time.Millisecond))
			res.ReplicationAlive, res.LocalLSN, _ = ReplicationAlive(ctx, local, mode, partnerName)
			cancel()
		}
		if res.OK && mode == MasterMode {
			ctx, cancel := context.WithTimeout(r.ctx, max(interval, 100*time.Millisecond))
			streaming, err := StandbyCaughtUp(ctx, local, res.Partner.ReceiverName)
			cancel()
			switch {
			case err != nil: // this server cannot tell: the heartbeat stands
			case checkCaughtUp:
				res.CaughtUp = streaming
			case !streaming:
				// Heartbeats get through but replication does not: with
				// synchronous replication every commit would hang.
				res = ProbeResult{Class: FailNotStreaming, LocalLSN: -1, Partner: res.Partner,
					Detail: "the standby answers but no walsender streams to it"}
			}
		}
		return Event{Kind: ProbeEvent, At: time.Now(), Probe: res}
	})
}

func (r *runner) handleEvents() {
	for {
		select {
		case ev := <-r.events:
			switch ev.Kind {
			case HookEvent:
				r.hookDone(ev)
				continue
			case NoticeEvent:
				r.log(Warning, ev.Detail)
				continue
			case ProbeEvent:
				r.probing = false
				r.learnTLS(ev.Probe)
				if ev.Probe.Partner.ReceiverName != "" {
					r.partnerName = ev.Probe.Partner.ReceiverName
				}
			case ActionEvent:
				// A result the core ignores (no longer in flight) is not history.
				if ev.Action == RunAfterCommand || ev.Action == r.core.InFlight() {
					r.actionDone(ev)
				}
			}
			if ev.Action == Promote && ev.Err == "" {
				r.timeline = ev.Timeline
				// Check the old master again now, not an interval later: as
				// long as it is lost, the new master's commits wait for it
				// until the next heartbeat switches replication to async.
				r.nextProbe = time.Now()
			}
			for _, line := range ev.Output {
				r.log(Info, "after_command: "+line)
			}
			r.step(ev)
		default:
			return
		}
	}
}

func (r *runner) step(ev Event) {
	out := r.core.Step(ev)
	for _, l := range out.Logs {
		r.log(l.Level, l.Msg)
	}
	if out.Change != nil {
		r.stateChanged(out.Change)
	}
	for _, a := range out.Actions {
		r.start(a)
	}
	r.setTitle()
}

// start carries out an action in a goroutine; its result comes back as an event.
func (r *runner) start(a ActionKind) {
	local, dataDir, tag := r.settings.Local, r.settings.DataDir, r.nodeTag()
	if a == r.core.InFlight() {
		r.actionSince = time.Now()
	}
	switch a {
	case Promote:
		r.spawn(Event{Kind: ActionEvent, Action: a}, func() Event {
			ctx, cancel := context.WithTimeout(r.ctx, 70*time.Second)
			defer cancel()
			detail, timeline, err := promote(ctx, local)
			ev := actionEvent(a)(detail, err)
			ev.Timeline = timeline
			return ev
		})
	case SwitchAsync:
		r.spawn(Event{Kind: ActionEvent, Action: a}, func() Event {
			ctx, cancel := context.WithTimeout(r.ctx, 30*time.Second)
			defer cancel()
			return actionEvent(a)(switchAsync(ctx, local, dataDir, tag))
		})
	case RestoreSync:
		r.spawn(Event{Kind: ActionEvent, Action: a}, func() Event {
			ctx, cancel := context.WithTimeout(r.ctx, 30*time.Second)
			defer cancel()
			return actionEvent(a)(restoreSync(ctx, local, dataDir, tag))
		})
	case RunAfterCommand:
		r.runAfterCommand()
	case FenceSelf:
		r.fenceSelf()
	case OpenFence:
		r.openFence()
	}
}

func (r *runner) openFence() {
	if r.fenceState == FenceOpen {
		return
	}
	if err := r.host.SetFence(FenceOpen); err != nil {
		r.log(Warning, "could not open the fence for client connections: "+err.Error())
		return
	}
	r.fenceState = FenceOpen
	if r.core != nil && r.core.State().Mode() == MasterMode {
		r.record(Record{Kind: KindAction, Action: OpenFence.String(), OK: ptr(true), Detail: "writes accepted"})
	}
}

// fence refuses client connections and asks for a fast shutdown, and says
// how to bring this server back as a standby of the new primary.
func (r *runner) fenceSelf() {
	if err := r.host.SetFence(FenceFenced); err != nil {
		r.log(Error, "could not fence this server: "+err.Error())
		r.record(Record{Kind: KindAction, Action: FenceSelf.String(), OK: ptr(false), Detail: err.Error()})
		return
	}
	r.fenceState = FenceFenced
	r.record(Record{Kind: KindAction, Action: FenceSelf.String(), OK: ptr(true),
		Detail: "connections refused, fast shutdown requested"})
	r.log(Error, fmt.Sprintf("to rejoin as a standby of the new primary: pg_rewind --target-pgdata=%s "+
		"--source-server=%q (or a new pg_basebackup), then touch %s/standby.signal, set primary_conninfo "+
		"to reach the new primary, and start this server", r.settings.DataDir, r.settings.PartnerDisplay, r.settings.DataDir))
}

func (r *runner) runAfterCommand() {
	cmdline, timeout := r.settings.AfterCommand, r.settings.CommandTimeout
	if cmdline == "" {
		r.log(Info, "pg_keeper.after_command is not set: nothing to run after the promotion")
		return
	}
	env := append(r.commandEnv("promote"),
		"PG_KEEPER_NEW_PRIMARY="+r.hostname+":"+strconv.Itoa(r.settings.Port),
		"PG_KEEPER_OLD_PRIMARY="+r.settings.PartnerDisplay,
		"PG_KEEPER_TIMELINE="+strconv.Itoa(r.timeline))
	// Only the program: fence agents take passwords as arguments.
	r.log(Info, fmt.Sprintf("running after_command (timeout %s): %s", timeout, commandName(cmdline)))
	r.spawn(Event{Kind: ActionEvent, Action: RunAfterCommand}, func() Event {
		res := runCommand(cmdline, timeout, "pg_keeper.after_command_timeout", env)
		ev := Event{Kind: ActionEvent, At: time.Now(), Action: RunAfterCommand, Output: res.Output, Command: res}
		if outcome := commandRecord(KindAfterCmd, res).Detail; res.Err != nil {
			ev.Err = outcome
		} else {
			ev.Detail = outcome
		}
		return ev
	})
}

// commandName is the program a command line runs, for the log.
func commandName(cmdline string) string {
	if f := strings.Fields(cmdline); len(f) > 0 {
		if len(f) > 1 {
			return f[0] + " ..."
		}
		return f[0]
	}
	return ""
}

// commandEnv is what every command learns about this node.
func (r *runner) commandEnv(event string) []string {
	return []string{
		"PG_KEEPER_EVENT=" + event,
		"PG_KEEPER_NODE=" + r.hostname,
		"PG_KEEPER_PORT=" + strconv.Itoa(r.settings.Port),
		"PG_KEEPER_DATA_DIR=" + r.settings.DataDir,
	}
}

func actionEvent(a ActionKind) func(string, error) Event {
	return func(detail string, err error) Event {
		ev := Event{Kind: ActionEvent, At: time.Now(), Action: a, Detail: detail}
		if err != nil {
			ev.Err = err.Error()
		}
		return ev
	}
}

// spawn runs f in a goroutine that cannot take the server down: a panic
// becomes the fallback event, with the panic as its error.
func (r *runner) spawn(fallback Event, f func() Event) { go r.deliver(fallback, f) }

// deliver runs f and hands its event to the main loop.
func (r *runner) deliver(fallback Event, f func() Event) {
	var ev Event
	defer func() {
		if p := recover(); p != nil {
			ev = fallback
			ev.At = time.Now()
			msg := fmt.Sprintf("internal error: %v", p)
			ev.Err, ev.Probe.Detail = msg, msg
			ev.Command = CommandResult{Err: errors.New(msg), ExitCode: -1}
		}
		r.events <- ev
		r.wake()
	}()
	ev = f()
}

func (r *runner) wake() { _, _ = unix.Write(r.wakeW, []byte{0}) }

func (r *runner) loadSettings(reload bool) {
	raw, err := r.host.Settings()
	if err != nil {
		r.log(Error, "could not read the settings: "+err.Error())
		return
	}
	s, errs := ParseSettings(raw)
	for _, e := range errs {
		r.log(Error, e.Error())
	}
	if reload {
		old := r.settings
		if s.Interval != old.Interval || s.Count != old.Count || s.PartnerDisplay != old.PartnerDisplay || s.Policy != old.Policy {
			r.log(Info, fmt.Sprintf("settings reloaded: partner %q, keepalives_time %s, keepalives_count %d",
				s.PartnerDisplay, s.Interval, s.Count))
		}
		if next := time.Now().Add(s.Interval); next.Before(r.nextProbe) {
			r.nextProbe = next
		}
		r.core.SetThreshold(s.Count)
		r.core.SetPolicy(s.Policy)
	}
	r.settings = s
}

// learnTLS stops asking for TLS first once the partner has refused it
// (see plainFirst), until the settings are reloaded.
func (r *runner) learnTLS(p ProbeResult) {
	// A reload since the heartbeat started may have asked for TLS for sure.
	if !p.TLSRefused || r.settings.Partner == nil || r.settings.Partner != r.probed {
		return
	}
	next := plainFirst(r.settings.Partner)
	if next == r.settings.Partner {
		return // nothing to reorder: TLS is required, or not asked for
	}
	r.settings.Partner = next
	r.log(Info, "the partner refused TLS (sslmode=prefer): heartbeats now try without it first; "+
		"set sslmode in pg_keeper.partner_conninfo to choose")
}

func (r *runner) log(level Level, msg string) { r.host.Log(level, logPrefix+msg) }

func (r *runner) setTitle() {
	if t := r.core.State().Title(); t != r.title {
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
