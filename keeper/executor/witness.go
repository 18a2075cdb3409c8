package executor

import (
	"context"
	"fmt"
	"time"

	"github.com/pg-keeper/pg_keeper/keeper/action"
	"github.com/pg-keeper/pg_keeper/keeper/core"
	"github.com/pg-keeper/pg_keeper/keeper/witness"
)

// The witness's operations run on one goroutine, one at a time and in the
// order the core asked for them: a renewal that says "synchronous" must
// never overtake the leave-sync that follows it.
type witnessJob struct {
	req     core.WitnessRequest
	action  core.ActionKind // ClaimTerm or LeaveSync; NoAction: a read or a renewal
	env     Env
	timeout time.Duration
}

// witnessQueue bounds the operations waiting: the core has at most one
// read or renewal and one action under way.
const witnessQueue = 8

// witness queues req; its result comes back as a WitnessInput, or, for an
// action, as its ActionInput.
func (e *Executor) witness(req core.WitnessRequest, a core.ActionKind, env Env) {
	// A busy witness gets half a second at least: reads and renewals go
	// one at a time, and a lease counts from before the statement.
	timeout := max(env.Settings.Interval, 500*time.Millisecond)
	if a != core.NoAction {
		timeout = max(2*timeout, time.Second) // once, and it decides
	}
	if e.witnessJobs == nil {
		e.witnessJobs = make(chan witnessJob, witnessQueue)
		go e.runWitness(e.witnessJobs)
	}
	select {
	case e.witnessJobs <- witnessJob{req: req, action: a, env: env, timeout: timeout}:
	default:
		// The core waits for every result: this one too, from a goroutine
		// (Apply runs on the loop, which must not wait for its own mailbox).
		in := witnessOutcome(witnessJob{req: req, action: a}, core.WitnessResult{Op: req.Op, Start: time.Now(),
			Err: "too many operations waiting for the witness"})
		go e.box.Post(in)
	}
}

func (e *Executor) runWitness(jobs <-chan witnessJob) {
	var client *witness.Client
	var of string // the setting the client is for
	for job := range jobs {
		s := job.env.Settings
		if client == nil || of != s.Witness.Text+"\x00"+job.env.Node {
			if client != nil {
				client.Close()
			}
			client, of = witness.New(s.Witness.Config, s.Self.SystemID, job.env.Node), s.Witness.Text+"\x00"+job.env.Node
		}
		fallback := witnessOutcome(job, core.WitnessResult{Op: job.req.Op, Start: time.Now(), Err: "internal error"})
		e.deliver(fallback, func() core.Input {
			ctx, cancel := context.WithTimeout(e.ctx, job.timeout)
			res := client.Do(ctx, job.req)
			cancel()
			if job.action == core.ClaimTerm && res.Err == "" && res.Changed {
				// The term is taken: promote with it, whatever the disk says.
				if err := action.SaveTerm(s.DataDir, res.Row.Term); err != nil {
					e.notice(fmt.Sprintf("could not keep term %d in %s: %v", res.Row.Term, action.TermFile, err))
				}
			}
			return witnessOutcome(job, res)
		})
	}
}

// witnessOutcome is res as the input the core expects.
func witnessOutcome(job witnessJob, res core.WitnessResult) core.Input {
	in := core.Input{Kind: core.WitnessInput, At: time.Now(), Witness: res}
	if job.action == core.NoAction {
		return in
	}
	in.Kind, in.Action = core.ActionInput, job.action
	switch {
	case res.Err != "":
		in.Err = "the witness did not answer: " + res.Err
	case !res.Changed:
		in.Err = refusal(job.req, res.Row)
	default:
		in.Detail = fmt.Sprintf("term %d, held by %s", res.Row.Term, res.Row.Holder)
	}
	return in
}

// refusal says why the witness's compare-and-set changed nothing.
func refusal(req core.WitnessRequest, row core.WitnessRow) string {
	switch {
	case req.Op == core.WitnessLeaveSync:
		return fmt.Sprintf("this server was deposed: the witness shows term %d held by %s", row.Term, row.Holder)
	case !row.Found:
		return "the witness has no row for this pair (rebuilt empty?): nothing to claim until the master renews it"
	case row.Term != req.Term:
		return fmt.Sprintf("the term moved on the witness (%d, this standby saw %d)", row.Term, req.Term)
	case !row.Sync:
		return "the witness shows the master asynchronous: commits it acknowledged may be missing here"
	}
	return fmt.Sprintf("the master's lease is not over (renewed %s ago, lease %s): it may be alive",
		row.LeaseAge.Round(time.Millisecond), row.Lease)
}

// saveTerm keeps a term the core learnt.
func (e *Executor) saveTerm(term int64, env Env) {
	dataDir := env.Settings.DataDir
	go func() {
		if err := action.SaveTerm(dataDir, term); err != nil {
			e.notice(fmt.Sprintf("could not keep term %d in %s: %v", term, action.TermFile, err))
		}
	}()
}
