package core

import (
	"fmt"
	"time"
)

// triggerOf names the trigger an input makes, with the detail for the
// row's log line; ok false: it makes none, and what it causes is in out.
func (c *Core) triggerOf(in Input, out *Output) (trig Trigger, extra string, ok bool) {
	switch in.Kind {
	case ReplicationDropInput:
		// Only the first failure comes early: once a heartbeat has failed,
		// the fault is known and the count goes on at the interval.
		if !c.probing && (c.failures == 0 || c.state == StandbyTakingOver) {
			c.nextProbe = in.At
		}
		return 0, "", false
	case ProbeInput:
		c.probing = false
		c.learnTLS(in.Probe, out)
		p := c.streamingCheck(c.fresh(in.At, in.Probe))
		trig, extra = c.probe(in.At, p, out)
		if why := confirms(p); c.state == MasterUnconfirmed && why != "" {
			trig, extra = c.confirmed(), why
		}
		return trig, extra, true
	case ActionInput:
		return c.actionResult(in, out)
	case RecoveryEndedInput:
		return RecoveryEnded, "", true
	case ConfirmInput:
		return c.confirmed(), in.Detail, true
	case RequestInput:
		trig, extra = c.request(in)
		return trig, extra, true
	case NoticeInput:
		out.Logs = append(out.Logs, LogLine{Warning, in.Detail})
		return 0, "", false
	case SettingsInput:
		return 0, "", false // what follows comes at the end of the step
	case WitnessInput:
		return c.witnessResult(in, out)
	}
	out.Logs = append(out.Logs, LogLine{Warning, fmt.Sprintf("ignored input of kind %d", in.Kind)})
	return 0, "", false
}

// actionResult takes an action's result as its kind's Follow says: a
// tracked one the state waits for becomes ActionDone or ActionFailed, a
// reported one is logged and recorded, an answering one answers.
func (c *Core) actionResult(in Input, out *Output) (Trigger, string, bool) {
	switch in.Action.Follow() {
	case Reported:
		c.reportCommand(in, out)
		return 0, "", false
	case Answers:
		if in.Action != c.answerer {
			break
		}
		c.answerer = NoAction
		info := actionInfo[in.Action]
		a := Answer{OK: true, Msg: info.done}
		if in.Err != "" {
			a = Answer{Msg: info.failed + in.Err}
		}
		c.give(a, in.At, out)
		return 0, "", false
	case Tracked:
		if in.Action != c.inFlight {
			break
		}
		c.inFlight = NoAction
		rep := Report{Kind: ActionReport, At: in.At, Action: in.Action, OK: in.Err == "", Detail: in.Detail,
			Duration: in.At.Sub(c.inFlightSince), ExitStatus: -1}
		trig, extra := ActionDone, in.Detail
		if in.Command != nil {
			c.logOutput(in, out)
			rep.ExitStatus = in.Command.ExitStatus
		}
		if in.Action == ClaimTerm || in.Action == LeaveSync {
			c.witnessActResult(in, out)
		}
		if in.Err != "" {
			trig, extra, rep.Detail = ActionFailed, in.Err, in.Err
			if in.Action == FenceMaster {
				c.fenceFailedAt = in.At
			}
		} else if in.Action == Promote {
			c.tookTerm(out)
			// Check the old master again now, not an interval later: as
			// long as it is lost, the new master's commits wait for it
			// until the next heartbeat switches replication to async.
			c.nextProbe = in.At
			rep.Detail = fmt.Sprintf("%s; now on timeline %d", in.Detail, in.Timeline)
		}
		out.Reports = append(out.Reports, rep)
		return trig, extra, true
	}
	out.Logs = append(out.Logs, LogLine{Warning, fmt.Sprintf("ignored result of action %s in state %s", in.Action, c.state)})
	return 0, "", false
}

// logOutput logs what a command printed, a line at a time.
func (c *Core) logOutput(in Input, out *Output) {
	if in.Command == nil {
		return
	}
	for _, line := range in.Command.Lines {
		out.Logs = append(out.Logs, LogLine{Info, in.Action.String() + ": " + line})
	}
}

// reportCommand logs and records how after_command or the state-change
// command ended: fire and forget, it decides nothing.
func (c *Core) reportCommand(in Input, out *Output) {
	oc := CommandOutcome{ExitStatus: -1}
	if in.Command != nil {
		oc = *in.Command
	}
	name := in.Action.String()
	if in.Action == DropStaleSlots {
		c.staleSlotsResult(in)
	}
	if in.Action == DropStaleSlots && in.Err == "" && in.Detail == "" {
		return // nothing to drop: the usual case, not worth a line
	}
	c.logOutput(in, out)
	outcome, level, verb := in.Detail, Info, "finished"
	if in.Err != "" {
		outcome, level, verb = in.Err, Warning, "failed"
	}
	rep := Report{Kind: CommandReport, At: in.At, Action: in.Action, OK: in.Err == "", Detail: outcome,
		Duration: oc.Duration, ExitStatus: oc.ExitStatus}
	if in.Action == RunStateChange {
		out.Logs = append(out.Logs, LogLine{level, fmt.Sprintf("%s %s for %s: %s", name, verb, oc.For, outcome)})
		rep.Detail = oc.For + ": " + outcome
	} else {
		out.Logs = append(out.Logs, LogLine{level, name + " " + verb + ": " + outcome})
	}
	out.Reports = append(out.Reports, rep)
}

// notePause logs and records a change of maintenance mode, whether set
// here or learnt from the master.
func (c *Core) notePause(at time.Time, out *Output) {
	on := c.paused()
	if on == c.pausedNoted {
		return
	}
	c.pausedNoted = on
	where := "set on this server"
	if c.state.Mode() == StandbyMode && !c.maintenance {
		where = "learnt from the master"
	}
	msg := "maintenance mode off: automatic actions resume"
	if on {
		msg = "maintenance mode on (" + where + "): no promotion, switchover or rejoin until pg_keeper.resume() on the master"
		if c.pauseReason != "" {
			msg += "; reason: " + c.pauseReason
		}
	}
	out.Logs = append(out.Logs, LogLine{Info, msg})
	out.Reports = append(out.Reports, Report{Kind: MaintenanceReport, At: at, OK: on, Detail: msg, ExitStatus: -1})
}
