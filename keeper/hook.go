package keeper

import (
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/pg-keeper/pg_keeper/keeper/command"
	"github.com/pg-keeper/pg_keeper/keeper/core"
	"github.com/pg-keeper/pg_keeper/keeper/publish"
)

// A state-change command runs after every change of state, one at a time
// and in order: a pooler re-pointed by two commands racing could end up on
// the wrong server.
type hookJob struct {
	cmdline string
	timeout time.Duration
	env     []string
	change  string // "old -> new", for the log
}

// hookQueue bounds how far the commands may fall behind the keeper.
const hookQueue = 32

// stateChanged records a change of state and queues the state-change command.
func (r *runner) stateChanged(ch *core.Change) {
	r.record(publish.Record{Kind: publish.KindTransition, From: ch.From.String(), To: ch.To.String(),
		Trigger: ch.On.String(), Detail: ch.Reason})
	if r.settings.StateChange == "" {
		return
	}
	job := hookJob{cmdline: r.settings.StateChange, timeout: r.settings.StateChangeTimeout,
		env: r.hookEnv(ch), change: ch.From.String() + " -> " + ch.To.String()}
	if r.hooks == nil {
		r.hooks = make(chan hookJob, hookQueue)
		go r.runHooks(r.hooks)
	}
	// When the commands fall behind, the newest change matters most (a
	// pooler must end up on the current primary): drop the oldest waiting.
	for {
		select {
		case r.hooks <- job:
			return
		default:
		}
		select {
		case old := <-r.hooks:
			r.log(core.Warning, fmt.Sprintf("state_change_command is %d changes behind: not running it for %s", hookQueue, old.change))
		default:
		}
	}
}

// runHooks runs the queued commands; each result comes back as an event.
func (r *runner) runHooks(jobs <-chan hookJob) {
	for job := range jobs {
		r.deliver(message{hook: job.change, command: &command.Result{}}, func() message {
			res := command.Run(job.cmdline, job.timeout, "pg_keeper.state_change_command_timeout", job.env)
			return message{hook: job.change, command: &res}
		})
	}
}

// hookEnv describes a change to the state-change command. The primary is
// named only when this node knows it: itself once it acts as the master
// (not while it waits for its first heartbeat, keeps commits waiting for a
// standby that may be taking over, or is fenced), its partner while that
// one is a live master.
func (r *runner) hookEnv(ch *core.Change) []string {
	env := append(r.commandEnv("state-change"),
		"PG_KEEPER_MODE="+ch.To.Mode().String(),
		"PG_KEEPER_OLD_STATE="+ch.From.String(),
		"PG_KEEPER_NEW_STATE="+ch.To.String(),
		"PG_KEEPER_TRIGGER="+ch.On.String(),
		"PG_KEEPER_REASON="+ch.Reason,
		"PG_KEEPER_PARTNER="+r.settings.PartnerDisplay)
	var primaryHost string
	var primaryPort int
	switch ch.Primary {
	case core.PrimarySelf:
		primaryHost, primaryPort = r.selfHost(r.hostname), r.settings.Port
	case core.PrimaryPartner:
		if p := r.settings.Partner; p != nil {
			primaryHost, primaryPort = p.Host, int(p.Port)
		}
	}
	timeline := 0
	if ch.To.Mode() == core.MasterMode {
		timeline, _ = r.host.Timeline()
	}
	if primaryHost != "" {
		env = append(env, "PG_KEEPER_PRIMARY_HOST="+primaryHost, "PG_KEEPER_PRIMARY_PORT="+strconv.Itoa(primaryPort))
	}
	return append(env, "PG_KEEPER_TIMELINE="+strconv.Itoa(timeline))
}

// selfHost is the address others reach this server at: my_conninfo's
// host when it is a network address, else the machine's name.
func (r *runner) selfHost(hostname string) string {
	if l := r.settings.Local; l != nil && l.Host != "" && !strings.HasPrefix(l.Host, "/") && l.Host != "localhost" {
		return l.Host
	}
	return hostname
}

// hookDone logs and records how a state-change command ended.
func (r *runner) hookDone(change string, res command.Result) {
	for _, line := range res.Output {
		r.log(core.Info, "state_change_command: "+line)
	}
	rec := commandRecord(publish.KindStateChange, res)
	if res.Err != nil {
		r.log(core.Warning, fmt.Sprintf("state_change_command failed for %s: %s", change, rec.Detail))
	} else {
		r.log(core.Info, fmt.Sprintf("state_change_command finished for %s: %s", change, rec.Detail))
	}
	rec.Detail = change + ": " + rec.Detail
	r.record(rec)
}

// commandRecord describes how a command ended, for pg_keeper.events().
func commandRecord(kind string, res command.Result) publish.Record {
	ms := res.Duration.Milliseconds()
	rec := publish.Record{Kind: kind, OK: publish.Ptr(res.Err == nil), DurationMS: &ms,
		Detail: fmt.Sprintf("exit status 0 after %d ms", ms)}
	if res.ExitCode >= 0 {
		rec.ExitStatus = publish.Ptr(res.ExitCode)
	}
	if res.Err != nil {
		rec.Detail = fmt.Sprintf("%v after %d ms", res.Err, ms)
	}
	return rec
}
