package keeper

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/pg-keeper/pg_keeper/keeper/action"
	"github.com/pg-keeper/pg_keeper/keeper/command"
	"github.com/pg-keeper/pg_keeper/keeper/core"
	"github.com/pg-keeper/pg_keeper/keeper/publish"
)

// start carries out an action in a goroutine; its result comes back as an
// ActionInput. Fencing is carried out by syncFence.
func (r *runner) start(a core.ActionKind) {
	local, dataDir, tag := r.settings.Local, r.settings.DataDir, r.tag
	if a == r.core.InFlight() {
		r.actionSince = time.Now()
	}
	switch a {
	case core.Promote:
		fallback := message{input: &core.Input{Kind: core.ActionInput, Action: a}}
		r.spawn(fallback, func() message {
			ctx, cancel := context.WithTimeout(r.ctx, 70*time.Second)
			defer cancel()
			detail, timeline, err := action.Promote(ctx, local)
			return message{input: actionInput(a, detail, err), timeline: timeline}
		})
	case core.SwitchAsync:
		r.runAction(a, 30*time.Second, func(ctx context.Context) (string, error) {
			return action.SwitchAsync(ctx, local, dataDir, tag)
		})
	case core.RestoreSync:
		r.runAction(a, 30*time.Second, func(ctx context.Context) (string, error) {
			return action.RestoreSync(ctx, local, dataDir, tag)
		})
	case core.RunAfterCommand:
		r.runAfterCommand()
	case core.PrepareSwitchover:
		name, partner := r.partnerName, r.settings.Partner
		// A CHECKPOINT may take long; with HandOver's 50 s this stays under
		// the 180 s the SQL caller waits.
		r.runAction(a, 120*time.Second, func(ctx context.Context) (string, error) {
			return action.PrepareSwitchover(ctx, local, partner, name)
		})
	case core.HandOver:
		// Writes must be refused before the end of the WAL is read: the
		// fence is set now, not at the end of this turn.
		if r.syncFence(); r.fenceState != core.FenceSwitching {
			r.post(message{input: actionInput(a, "", errors.New("could not refuse writes (the fence)"))})
			return
		}
		r.waitCommitsDone()
		// A rewind first, when it can be done: after a clean shutdown it
		// finds nothing to do, after a crash it makes the old master able
		// to follow the new timeline.
		partner, name := r.settings.Partner, r.partnerName
		plan := r.restartPlan("switchover", r.settings.RewindBlocked == "")
		r.runAction(a, 50*time.Second, func(ctx context.Context) (string, error) {
			return action.HandOver(ctx, local, partner, name, plan)
		})
	case core.Rejoin:
		// Here, not in a goroutine: the fence the new state wants stops the
		// server within this turn, and the helper must be running by then.
		err := r.restartPlan("rejoin", true).Start()
		r.post(message{input: actionInput(a, "the rejoin helper runs", err)})
	case core.SetMaintenance, core.ClearMaintenance:
		r.setMaintenance(a == core.SetMaintenance)
	case core.FenceSelf, core.OpenFence:
		// Carried out by syncFence, which the loop runs after every turn.
	}
}

// answerGrace is how long the fast shutdown that ends a switchover waits
// after the answer to pg_keeper.switchover(): writes are refused already.
const answerGrace = 100 * time.Millisecond

// commitsDrain bounds the wait for commits that passed the fence's check
// before it closed: each is a few milliseconds from done.
const commitsDrain = 2 * time.Second

// waitCommitsDone waits, on the main thread, until the commits that passed
// the fence before it closed are done: their records are then written, and
// where the WAL ends covers every commit this server will acknowledge.
func (r *runner) waitCommitsDone() {
	deadline := time.Now().Add(commitsDrain)
	for {
		n, err := r.host.Committing()
		if err != nil || n == 0 {
			return
		}
		if time.Now().After(deadline) {
			r.log(core.Warning, fmt.Sprintf("switchover: %d commit(s) still under way after %s: going on, "+
				"a synchronous standby has them once they are acknowledged", n, commitsDrain))
			return
		}
		time.Sleep(time.Millisecond)
	}
}

// runAction runs an action that reports only a detail or an error, within
// timeout, in a goroutine; its result comes back as an ActionInput.
func (r *runner) runAction(a core.ActionKind, timeout time.Duration, f func(ctx context.Context) (string, error)) {
	fallback := message{input: &core.Input{Kind: core.ActionInput, Action: a}}
	r.spawn(fallback, func() message {
		ctx, cancel := context.WithTimeout(r.ctx, timeout)
		defer cancel()
		detail, err := f(ctx)
		return message{input: actionInput(a, detail, err)}
	})
}

// post hands the main loop a message from the main loop itself: it must
// not block, as only the main loop empties the inbox.
func (r *runner) post(m message) {
	select {
	case r.inbox <- m:
	default:
		r.log(core.Warning, "the keeper's inbox is full: a result was lost")
	}
}

func actionInput(a core.ActionKind, detail string, err error) *core.Input {
	in := &core.Input{Kind: core.ActionInput, At: time.Now(), Action: a, Detail: detail}
	if err != nil {
		in.Err = err.Error()
	}
	return in
}

// syncFence makes the server hold the fence the core wants. A failure is
// logged and recorded once, and tried again every second.
func (r *runner) syncFence() {
	want := r.core.Fence()
	if want != r.fenceFailedFor {
		r.fenceFailedAt = time.Time{} // a new wish: try at once, and say if it fails
	}
	if want == r.fenceState || time.Since(r.fenceFailedAt) < time.Second {
		return
	}
	if want == core.FenceStopping && time.Since(r.answeredAt) < answerGrace {
		return // let the session that asked return its answer before the shutdown ends it
	}
	if err := r.host.SetFence(want); err != nil {
		if r.fenceFailedAt.IsZero() {
			r.log(core.Error, fmt.Sprintf("could not set the fence to %s: %v", publish.FenceName(want), err))
			if want == core.FenceFenced || want == core.FenceStopping {
				r.record(publish.Record{Kind: publish.KindAction, Action: core.FenceSelf.String(), OK: publish.Ptr(false), Detail: err.Error()})
			}
		}
		r.fenceFailedAt, r.fenceFailedFor = time.Now(), want
		return
	}
	r.fenceState, r.fenceFailedAt = want, time.Time{}
	switch {
	case want == core.FenceStopping:
		r.record(publish.Record{Kind: publish.KindAction, Action: core.FenceSelf.String(), OK: publish.Ptr(true),
			Detail: "connections refused, fast shutdown requested; a helper restarts this server as a standby"})
	case want == core.FenceFenced:
		r.record(publish.Record{Kind: publish.KindAction, Action: core.FenceSelf.String(), OK: publish.Ptr(true),
			Detail: "connections refused, fast shutdown requested"})
		r.log(core.Error, fmt.Sprintf("to rejoin as a standby of the new primary: pg_rewind --target-pgdata=%s "+
			"--source-server=%q (or a new pg_basebackup), then touch %s/standby.signal, set primary_conninfo "+
			"to reach the new primary, and start this server", r.settings.DataDir, r.settings.PartnerDisplay, r.settings.DataDir))
	case want == core.FenceOpen && r.core.State().Mode() == core.MasterMode:
		r.record(publish.Record{Kind: publish.KindAction, Action: core.OpenFence.String(), OK: publish.Ptr(true), Detail: "writes accepted"})
	}
}

func (r *runner) runAfterCommand() {
	cmdline, timeout := r.settings.AfterCommand, r.settings.CommandTimeout
	if cmdline == "" {
		r.log(core.Info, "pg_keeper.after_command is not set: nothing to run after the promotion")
		return
	}
	env := append(r.commandEnv("promote"),
		"PG_KEEPER_NEW_PRIMARY="+r.hostname+":"+strconv.Itoa(r.settings.Port),
		"PG_KEEPER_OLD_PRIMARY="+r.settings.PartnerDisplay,
		"PG_KEEPER_TIMELINE="+strconv.Itoa(r.timeline))
	// Only the program: fence agents take passwords as arguments.
	r.log(core.Info, fmt.Sprintf("running after_command (timeout %s): %s", timeout, commandName(cmdline)))
	fallback := message{input: &core.Input{Kind: core.ActionInput, Action: core.RunAfterCommand}, command: &command.Result{}}
	r.spawn(fallback, func() message {
		res := command.Run(cmdline, timeout, "pg_keeper.after_command_timeout", env)
		in := &core.Input{Kind: core.ActionInput, At: time.Now(), Action: core.RunAfterCommand}
		if outcome := commandRecord(publish.KindAfterCmd, res).Detail; res.Err != nil {
			in.Err = outcome
		} else {
			in.Detail = outcome
		}
		return message{input: in, command: &res}
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
