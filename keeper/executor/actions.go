package executor

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/pg-keeper/pg_keeper/keeper/action"
	"github.com/pg-keeper/pg_keeper/keeper/core"
)

// start starts action a; its result comes back as an ActionInput. Actions
// the fence carries out (core.Fenced) are the runner's.
func (e *Executor) start(a core.ActionKind, env Env) []core.LogLine {
	s := env.Settings
	local, dataDir, tag := s.Local.Config, s.DataDir, env.Tag
	switch a {
	case core.Promote:
		e.run(a, 70*time.Second, func(ctx context.Context) core.Input {
			detail, timeline, err := action.Promote(ctx, local)
			in := done(a, detail, err)
			in.Timeline = timeline
			if err == nil {
				e.mu.Lock()
				e.timeline = timeline
				e.mu.Unlock()
			}
			return in
		})
	case core.SwitchAsync:
		e.run(a, 30*time.Second, func(ctx context.Context) core.Input {
			detail, err := action.SwitchAsync(ctx, local, dataDir, tag)
			return done(a, detail, err)
		})
	case core.RestoreSync:
		e.run(a, 30*time.Second, func(ctx context.Context) core.Input {
			detail, err := action.RestoreSync(ctx, local, dataDir, tag)
			return done(a, detail, err)
		})
	case core.RunAfterCommand:
		return e.afterCommand(env)
	case core.DropStaleSlots:
		// The core asks only where slots are synchronized (SetSyncSlots).
		e.run(a, 30*time.Second, func(ctx context.Context) core.Input {
			detail, err := action.DropStaleSlots(ctx, local)
			return done(a, detail, err)
		})
	case core.FenceMaster:
		return e.fenceCommand(env)
	case core.ClaimTerm, core.LeaveSync:
		// Apply runs them with the output's WitnessAct; without one there
		// is nothing to send.
		e.box.Offer(done(a, "", errors.New("no request for the witness")))
	case core.PrepareSwitchover:
		partner, name := s.Partner.Config, e.partnerNameNow()
		// A CHECKPOINT may take long; with HandOver's 50 s this stays under
		// the 180 s the SQL caller waits.
		e.run(a, 120*time.Second, func(ctx context.Context) core.Input {
			detail, err := action.PrepareSwitchover(ctx, local, partner, name)
			return done(a, detail, err)
		})
	case core.HandOver:
		// The end of the WAL is read with writes refused: the runner set
		// the fence before it handed this output over.
		if env.Fence != core.FenceSwitching {
			e.box.Offer(done(a, "", errors.New("could not refuse writes (the fence)")))
			return nil
		}
		partner, name := s.Partner.Config, e.partnerNameNow()
		// A rewind first, when it can be done: after a clean shutdown it
		// finds nothing to do, after a crash it makes the old master able
		// to follow the new timeline.
		plan := e.restartPlan("switchover", action.RewindBlocked(s.DataDir, s.BinDir, s.WalLogHints, s.DataChecksums) == "", env)
		e.run(a, 50*time.Second, func(ctx context.Context) core.Input {
			e.waitCommitsDone()
			detail, err := action.HandOver(ctx, local, partner, name, plan)
			return done(a, detail, err)
		})
	case core.Rejoin:
		// The fence the new state wants stops the server: Close waits for
		// the helper's start (lingering).
		plan := e.restartPlan("rejoin", true, env)
		e.lingering.Add(1)
		e.spawn(core.Input{Kind: core.ActionInput, Action: a}, func() core.Input {
			defer e.lingering.Done()
			return done(a, "the rejoin helper runs", plan.Start())
		})
	case core.SetMaintenance, core.ClearMaintenance:
		on := a == core.SetMaintenance
		e.run(a, 20*time.Second, func(ctx context.Context) core.Input {
			return done(a, "", action.SetMaintenance(ctx, local, on))
		})
	}
	return nil
}

// run runs f in a goroutine with a deadline.
func (e *Executor) run(a core.ActionKind, timeout time.Duration, f func(ctx context.Context) core.Input) {
	e.spawn(core.Input{Kind: core.ActionInput, Action: a}, func() core.Input {
		ctx, cancel := context.WithTimeout(e.ctx, timeout)
		defer cancel()
		return f(ctx)
	})
}

// done is a's result as an input.
func done(a core.ActionKind, detail string, err error) core.Input {
	in := core.Input{Kind: core.ActionInput, At: time.Now(), Action: a, Detail: detail}
	if err != nil {
		in.Err = err.Error()
	}
	return in
}

func (e *Executor) partnerNameNow() string {
	name, _ := e.learnt()
	return name
}

// commitsDrain bounds the wait for commits that passed the fence's check
// before it closed: each is a few milliseconds from done.
const commitsDrain = 2 * time.Second

// waitCommitsDone waits until the commits that passed the fence before it
// closed are done: their records are then written, and where the WAL ends
// covers every commit this server will acknowledge.
func (e *Executor) waitCommitsDone() {
	deadline := time.Now().Add(commitsDrain)
	for {
		n := e.committing()
		if n <= 0 {
			return
		}
		if time.Now().After(deadline) {
			e.notice(fmt.Sprintf("switchover: %d commit(s) still under way after %s: going on, "+
				"a synchronous standby has them once they are acknowledged", n, commitsDrain))
			return
		}
		time.Sleep(time.Millisecond)
	}
}
