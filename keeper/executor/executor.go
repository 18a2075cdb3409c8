// Package executor carries out what the core's output asks for, off the
// main thread: the heartbeat, every action (promote, switch to async and
// back, the switchover's steps, rejoin, pause and resume), after_command and
// the state-change command. Each result comes back as a core.Input through
// the Mailbox, the one way back to the main loop. The executor decides
// nothing: the core chose what to run, and weighs what comes back.
//
// Apply itself runs on the main thread and returns at once: it only starts
// goroutines (and says what it started, for the log). Every goroutine
// recovers a panic into the result it owes.
package executor

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/pg-keeper/pg_keeper/keeper/conninfo"
	"github.com/pg-keeper/pg_keeper/keeper/core"
	"github.com/pg-keeper/pg_keeper/keeper/probe"
	"github.com/pg-keeper/pg_keeper/keeper/settings"
)

// Env is what an output is carried out with: the settings of the moment,
// and what the runner knows of the server. Apply calls Timeline and
// Keepalive, on the main thread, only when it needs them.
type Env struct {
	Settings *settings.Settings
	Timeline func() (int, error) // the timeline the server writes on; 0 in recovery
	// Keepalive writes a keepalive record (Host.EmitKeepalive).
	Keepalive func() (bool, error)
	Fence     core.Fence // the fence the server holds, this output's applied
	Hostname  string
	Node      string // host:port, naming this server
	Tag       string // names this node's data directory (action.NodeTag)
}

// Executor runs outputs. Its zero value is not usable: see New.
type Executor struct {
	box        *Mailbox
	ctx        context.Context
	cancel     context.CancelFunc
	committing func() int // may be called from any goroutine
	hooks      chan hookJob
	// witnessJobs are the witness's operations, run in order (witness.go).
	witnessJobs chan witnessJob
	// lingering are goroutines that must finish when the worker stops: the
	// start of a helper that outlives the server (a rejoin's).
	lingering sync.WaitGroup

	// What earlier results taught, for later actions: the standby
	// partner's walsender name from its last good heartbeat, and the
	// timeline a promotion led to.
	mu          sync.Mutex
	partnerName string
	timeline    int

	// The heartbeat's sessions with the partner and with this server, kept
	// open from one heartbeat to the next (probe.Session); one heartbeat
	// runs at a time.
	partner probe.Session
	local   probe.Local

	// plain is the partner setting tried without TLS first
	// (conninfo.PlainFirst), made once for the settings plainOf.
	plain   *pgx.ConnConfig
	plainOf *settings.Settings
}

// New is an executor that posts its results to box. committing counts the
// commits past the fence's check (Host.CommitCounter): it must be safe to
// call from any goroutine.
func New(box *Mailbox, committing func() int) *Executor {
	e := &Executor{box: box, committing: committing}
	e.ctx, e.cancel = context.WithCancel(context.Background())
	return e
}

// lingerMax bounds how long Close waits for the start of a helper.
const lingerMax = 5 * time.Second

// Close stops what can be stopped, and waits (lingerMax at most) for the
// start of a helper that must outlive the server. Commands run on: a
// STONITH half done is worse than one that finishes.
func (e *Executor) Close() {
	e.cancel()
	e.partner.Close()
	e.local.Close()
	done := make(chan struct{})
	go func() { e.lingering.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(lingerMax):
	}
}

// TidySessions closes the heartbeat's kept sessions that no heartbeat used
// for idle, and the one with this server at once when it is stopping (a
// smart shutdown waits for it). It returns at once: a session in use is
// left to its heartbeat, which checks the same after its query.
func (e *Executor) TidySessions(stopping bool, idle time.Duration) {
	e.partner.CloseIdle(idle)
	if stopping {
		idle = 0
	}
	e.local.CloseIdle(idle)
}

// Apply starts what out asks for: the state-change command for its change,
// its heartbeat, its actions. It returns at once, with the lines to log
// about what it started. It must run on the main thread (env.Timeline).
func (e *Executor) Apply(out core.Output, env Env) []core.LogLine {
	var logs []core.LogLine
	if out.Change != nil {
		logs = append(logs, e.stateChange(out.Change, env)...)
	}
	if out.Probe != nil {
		e.heartbeat(*out.Probe, env)
	}
	if out.Witness != nil {
		e.witness(*out.Witness, core.NoAction, env)
	}
	if out.SaveTerm != 0 {
		e.saveTerm(out.SaveTerm, env)
	}
	for _, a := range out.Actions {
		if (a == core.ClaimTerm || a == core.LeaveSync) && out.WitnessAct != nil {
			e.witness(*out.WitnessAct, a, env)
			continue
		}
		logs = append(logs, e.start(a, env)...)
	}
	return logs
}

// spawn runs f in a goroutine that cannot take the server down: a panic
// becomes fallback, with the panic as its error.
func (e *Executor) spawn(fallback core.Input, f func() core.Input) {
	go e.deliver(fallback, f)
}

func (e *Executor) deliver(fallback core.Input, f func() core.Input) {
	var in core.Input
	defer func() {
		if p := recover(); p != nil {
			in = fallback
			msg := fmt.Sprintf("internal error: %v", p)
			in.At, in.Err, in.Probe.Detail = time.Now(), msg, msg
			if in.Command != nil {
				c := *in.Command
				c.ExitStatus = -1
				in.Command = &c
			}
		}
		e.box.Post(in)
	}()
	in = f()
}

// notice logs msg as a warning, from any goroutine, through the mailbox.
func (e *Executor) notice(msg string) {
	e.box.Offer(core.Input{Kind: core.NoticeInput, At: time.Now(), Detail: msg})
}

// PartnerName is the application_name the standby partner streamed with at
// its last good heartbeat, which names its walsender here ("": not known).
func (e *Executor) PartnerName() string {
	name, _ := e.learnt()
	return name
}

func (e *Executor) learnt() (partnerName string, timeline int) {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.partnerName, e.timeline
}

// partnerConfig is the partner setting to probe with.
func (e *Executor) partnerConfig(s *settings.Settings, plainFirst bool) *pgx.ConnConfig {
	cfg := s.Partner.Config
	if !plainFirst || cfg == nil {
		return cfg
	}
	if e.plainOf != s {
		e.plain, e.plainOf = conninfo.PlainFirst(cfg), s
	}
	return e.plain
}
