package executor

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/pg-keeper/pg_keeper/keeper/command"
	"github.com/pg-keeper/pg_keeper/keeper/core"
)

// afterCommand runs pg_keeper.after_command after a promotion.
func (e *Executor) afterCommand(env Env) []core.LogLine {
	s := env.Settings
	cmdline, timeout := s.AfterCommand, s.CommandTimeout
	if cmdline == "" {
		return []core.LogLine{{Level: core.Info, Msg: "pg_keeper.after_command is not set: nothing to run after the promotion"}}
	}
	_, timeline := e.learnt()
	cmdEnv := append(commandEnv("promote", env),
		"PG_KEEPER_NEW_PRIMARY="+env.Hostname+":"+strconv.Itoa(s.Port),
		"PG_KEEPER_OLD_PRIMARY="+s.Partner.Display(),
		"PG_KEEPER_TIMELINE="+strconv.Itoa(timeline))
	fallback := core.Input{Kind: core.ActionInput, Action: core.RunAfterCommand, Command: &core.CommandOutcome{ExitStatus: -1}}
	e.spawn(fallback, func() core.Input {
		return commandResult(core.RunAfterCommand, command.Run(cmdline, timeout, "pg_keeper.after_command_timeout", cmdEnv), "")
	})
	// Only the program: fence agents take passwords as arguments.
	return []core.LogLine{{Level: core.Info, Msg: fmt.Sprintf("running after_command (timeout %s): %s", timeout, CommandName(cmdline))}}
}

// fenceCommand runs pg_keeper.fence_command before a promotion: exit status
// 0 says the master is powered off. It learns the master's address and this
// standby's last facts of it; its output comes back for the log.
func (e *Executor) fenceCommand(env Env) []core.LogLine {
	s := env.Settings
	cmdline, timeout := s.FenceCommand, s.FenceTimeout
	if cmdline == "" {
		// Set off by a reload since the core decided: no fencing, no promotion.
		e.box.Offer(done(core.FenceMaster, "", errors.New("pg_keeper.fence_command is not set")))
		return nil
	}
	cmdEnv := append(commandEnv("fence", env), "PG_KEEPER_PARTNER="+s.Partner.Display())
	if p := s.Partner.Config; p != nil {
		cmdEnv = append(cmdEnv, "PG_KEEPER_PARTNER_HOST="+p.Host, "PG_KEEPER_PARTNER_PORT="+strconv.Itoa(int(p.Port)))
	}
	fallback := core.Input{Kind: core.ActionInput, Action: core.FenceMaster, Command: &core.CommandOutcome{ExitStatus: -1},
		Err: "fence_command did not run"}
	e.spawn(fallback, func() core.Input {
		return commandResult(core.FenceMaster, command.Run(cmdline, timeout, "pg_keeper.fence_command_timeout", cmdEnv), "")
	})
	return []core.LogLine{{Level: core.Warning, Msg: fmt.Sprintf("running fence_command (timeout %s): %s", timeout, CommandName(cmdline))}}
}

// commandResult is how a command ended, as an input: the outcome in words,
// its output and exit status.
func commandResult(a core.ActionKind, res command.Result, change string) core.Input {
	ms := res.Duration.Milliseconds()
	in := core.Input{Kind: core.ActionInput, At: time.Now(), Action: a,
		Command: &core.CommandOutcome{Lines: res.Output, Duration: res.Duration, ExitStatus: res.ExitCode, For: change}}
	if res.Err != nil {
		in.Err = fmt.Sprintf("%v after %d ms", res.Err, ms)
	} else {
		in.Detail = fmt.Sprintf("exit status 0 after %d ms", ms)
	}
	return in
}

// CommandName is the program a command line runs, for the log.
func CommandName(cmdline string) string {
	if f := strings.Fields(cmdline); len(f) > 0 {
		if len(f) > 1 {
			return f[0] + " ..."
		}
		return f[0]
	}
	return ""
}

// commandEnv is what every command learns about this node.
func commandEnv(event string, env Env) []string {
	return []string{
		"PG_KEEPER_EVENT=" + event,
		"PG_KEEPER_NODE=" + env.Hostname,
		"PG_KEEPER_PORT=" + strconv.Itoa(env.Settings.Port),
		"PG_KEEPER_DATA_DIR=" + env.Settings.DataDir,
	}
}

// A state-change command runs after every change of state, one at a time
// and in order: a pooler re-pointed by two commands racing could end up on
// the wrong server.
type hookJob struct {
	cmdline string
	timeout time.Duration
	env     []string
	change  string // "old -> new", for the log
}

// HookQueue bounds how far the commands may fall behind the keeper.
const HookQueue = 32

// stateChange queues the state-change command for ch, if one is set.
func (e *Executor) stateChange(ch *core.Change, env Env) []core.LogLine {
	s := env.Settings
	if s.StateChange == "" {
		return nil
	}
	job := hookJob{cmdline: s.StateChange, timeout: s.StateChangeTimeout, env: hookEnv(ch, env),
		change: ch.From.String() + " -> " + ch.To.String()}
	if e.hooks == nil {
		e.hooks = make(chan hookJob, HookQueue)
		go e.runHooks(e.hooks)
	}
	// When the commands fall behind, the newest change matters most (a
	// pooler must end up on the current primary): drop the oldest waiting.
	var logs []core.LogLine
	for {
		select {
		case e.hooks <- job:
			return logs
		default:
		}
		select {
		case old := <-e.hooks:
			logs = append(logs, core.LogLine{Level: core.Warning,
				Msg: fmt.Sprintf("state_change_command is %d changes behind: not running it for %s", HookQueue, old.change)})
		default:
		}
	}
}

// runHooks runs the queued commands; each result comes back as an input.
func (e *Executor) runHooks(jobs <-chan hookJob) {
	for job := range jobs {
		fallback := core.Input{Kind: core.ActionInput, Action: core.RunStateChange,
			Command: &core.CommandOutcome{ExitStatus: -1, For: job.change}}
		e.deliver(fallback, func() core.Input {
			res := command.Run(job.cmdline, job.timeout, "pg_keeper.state_change_command_timeout", job.env)
			return commandResult(core.RunStateChange, res, job.change)
		})
	}
}

// hookEnv describes a change to the state-change command. The primary is
// named only when this node knows it: itself once it acts as the master
// (not while it waits for its first heartbeat, keeps commits waiting for a
// standby that may be taking over, or is fenced), its partner while that
// one is a live master.
func hookEnv(ch *core.Change, env Env) []string {
	s := env.Settings
	vars := append(commandEnv("state-change", env),
		"PG_KEEPER_MODE="+ch.To.Mode().String(),
		"PG_KEEPER_OLD_STATE="+ch.From.String(),
		"PG_KEEPER_NEW_STATE="+ch.To.String(),
		"PG_KEEPER_TRIGGER="+ch.On.String(),
		"PG_KEEPER_REASON="+ch.Reason,
		"PG_KEEPER_PARTNER="+s.Partner.Display())
	var primaryHost string
	var primaryPort int
	switch ch.Primary {
	case core.PrimarySelf:
		primaryHost, primaryPort = SelfHost(env), s.Port
	case core.PrimaryPartner:
		if p := s.Partner.Config; p != nil {
			primaryHost, primaryPort = p.Host, int(p.Port)
		}
	}
	timeline := 0
	if ch.To.Mode() == core.MasterMode {
		timeline, _ = env.Timeline()
	}
	if primaryHost != "" {
		vars = append(vars, "PG_KEEPER_PRIMARY_HOST="+primaryHost, "PG_KEEPER_PRIMARY_PORT="+strconv.Itoa(primaryPort))
	}
	return append(vars, "PG_KEEPER_TIMELINE="+strconv.Itoa(timeline))
}

// SelfHost is the address others reach this server at: my_conninfo's host
// when it is a network address, else the machine's name.
func SelfHost(env Env) string {
	if l := env.Settings.Local.Config; l != nil && l.Host != "" && !strings.HasPrefix(l.Host, "/") && l.Host != "localhost" {
		return l.Host
	}
	return env.Hostname
}
