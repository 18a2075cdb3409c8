package keeper

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/pg-keeper/pg_keeper/keeper/action"
	"github.com/pg-keeper/pg_keeper/keeper/conninfo"
	"github.com/pg-keeper/pg_keeper/keeper/core"
	"github.com/pg-keeper/pg_keeper/keeper/publish"
)

// Requests come from SQL (bgworker/request.c): one at a time, and the
// session waits until the keeper answers. The core decides; the runner
// only hands the request over and the answer back.

// requests names each kind, for the log and events, and gives the core's.
var requests = map[RequestKind]struct {
	name string
	core core.Request
}{
	RequestSwitchover:     {"switchover", core.SwitchoverRequest},
	RequestPause:          {"pause", core.PauseRequest},
	RequestResume:         {"resume", core.ResumeRequest},
	RequestTakeover:       {"takeover", core.TakeoverRequest},
	RequestTakeoverCancel: {"takeover-cancel", core.TakeoverCancelRequest},
}

// takeRequest gives the core the request a session waits with, if any.
func (r *runner) takeRequest(now time.Time) {
	req, ok, err := r.host.TakeRequest()
	if err != nil || !ok {
		return
	}
	r.request, r.requestName = &req, requests[req.Kind].name
	in := core.Input{Kind: core.RequestInput, At: now, Request: requests[req.Kind].core}
	switch req.Kind {
	case RequestTakeover:
		lsn, err := parseLSN(req.Arg)
		if err != nil {
			r.answer(core.Answer{Msg: err.Error()})
			return
		}
		in.LSN = lsn
	case RequestPause:
		r.pauseReason = req.Arg
	}
	if in.Request == 0 {
		r.answer(core.Answer{Msg: fmt.Sprintf("unknown request %d", req.Kind)})
		return
	}
	r.step(in)
}

// answer ends the wait of the session whose request is under way.
func (r *runner) answer(a core.Answer) {
	if r.request == nil {
		return
	}
	req := r.request
	r.request, r.answeredAt = nil, time.Now()
	if err := r.host.AnswerRequest(req.Seq, a.OK, asciiOnly(a.Msg)); err != nil {
		r.log(core.Warning, "could not answer the "+r.requestName+" request: "+err.Error())
	}
	level := core.Info
	if !a.OK {
		level = core.Warning
	}
	r.log(level, r.requestName+" request: "+a.Msg)
	r.record(publish.Record{Kind: publish.KindRequest, Action: r.requestName, OK: publish.Ptr(a.OK), Detail: a.Msg})
}

// asciiOnly writes other characters as \uXXXX: the answer goes to a
// session in whatever encoding its database has, and a text of the
// partner's (a localized error) may not fit it.
func asciiOnly(s string) string {
	var b strings.Builder
	for _, r := range s {
		if r < 0x80 {
			b.WriteRune(r)
		} else {
			fmt.Fprintf(&b, "\\u%04X", r)
		}
	}
	return b.String()
}

// parseLSN reads a WAL position written as PostgreSQL writes it.
func parseLSN(s string) (int64, error) {
	hi, lo, ok := strings.Cut(strings.TrimSpace(s), "/")
	h, err1 := strconv.ParseUint(hi, 16, 32)
	l, err2 := strconv.ParseUint(lo, 16, 32)
	if !ok || err1 != nil || err2 != nil {
		return 0, fmt.Errorf("not a WAL position: %q", s)
	}
	return int64(h<<32 | l), nil
}

// setMaintenance carries out pause() and resume(): the result answers.
func (r *runner) setMaintenance(on bool) {
	local := r.settings.Local
	r.spawn(message{answer: &core.Answer{Msg: "the keeper stopped before it was done"}}, func() message {
		ctx, cancel := context.WithTimeout(r.ctx, 20*time.Second)
		defer cancel()
		if err := action.SetMaintenance(ctx, local, on); err != nil {
			return message{answer: &core.Answer{Msg: "could not set pg_keeper.maintenance: " + err.Error()}}
		}
		if on {
			return message{answer: &core.Answer{OK: true, Msg: "maintenance mode on: no promotion, switchover or rejoin " +
				"until SELECT pg_keeper.resume(); the standby learns it at its next heartbeat"}}
		}
		return message{answer: &core.Answer{OK: true, Msg: "maintenance mode off: automatic actions resume"}}
	})
}

// noticePause logs and records a change of maintenance mode, whether set
// here or learnt from the master.
func (r *runner) noticePause() {
	on := r.core.Paused()
	if on == r.paused {
		return
	}
	r.paused = on
	where := "set on this server"
	if r.core.State().Mode() == core.StandbyMode && !r.settings.Maintenance {
		where = "learnt from the master"
	}
	msg := "maintenance mode off: automatic actions resume"
	if on {
		msg = "maintenance mode on (" + where + "): no promotion, switchover or rejoin until pg_keeper.resume() on the master"
		if r.pauseReason != "" {
			msg += "; reason: " + r.pauseReason
		}
	}
	r.log(core.Info, msg)
	r.record(publish.Record{Kind: publish.KindMaintenance, OK: publish.Ptr(on), Detail: msg})
}

// restartPlan is the helper that restarts this server as its partner's
// standby after a switchover (no rewind) or a rejoin (rewind first).
func (r *runner) restartPlan(task string, rewind bool) action.RestartPlan {
	s := r.settings
	p := action.RestartPlan{Task: task, DataDir: s.DataDir, BinDir: s.BinDir, PostmasterPID: s.PostmasterPID,
		Home: s.Home, Rewind: rewind}
	if rewind {
		p.Source = conninfo.WithPassfile(s.PartnerRaw, s.Home)
	}
	if strings.TrimSpace(s.PrimaryConninfo) == "" {
		p.PrimaryConninfo = withAppName(s.PartnerRaw, r.standbyName())
	}
	return p
}

// standbyName is the application_name this server streams with once it is
// a standby, when its own primary_conninfo does not say: cluster_name, else
// the name its partner streamed with (pairs often use one name for
// whichever node is the standby), else PostgreSQL's default.
func (r *runner) standbyName() string {
	switch {
	case r.settings.ClusterName != "":
		return r.settings.ClusterName
	case r.partnerName != "":
		return r.partnerName
	}
	return "walreceiver"
}

// withAppName adds application_name to a conninfo, in its own syntax.
func withAppName(conninfoText, name string) string {
	if strings.Contains(conninfoText, "://") {
		sep := "?"
		switch {
		case strings.HasSuffix(conninfoText, "?"):
			sep = ""
		case strings.Contains(conninfoText, "?"):
			sep = "&"
		}
		return conninfoText + sep + "application_name=" + urlEscape(name)
	}
	return conninfoText + " application_name='" + conninfo.Quote(name) + "'"
}

func urlEscape(s string) string {
	var b strings.Builder
	for _, c := range []byte(s) {
		if c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_' || c == '.' {
			b.WriteByte(c)
		} else {
			fmt.Fprintf(&b, "%%%02X", c)
		}
	}
	return b.String()
}

// reportRestart tells what the switchover's or rejoin's helper did before
// this start, once. A failure stays in the file: it blocks auto_rejoin
// until an operator has looked.
func (r *runner) reportRestart() {
	res, err := action.ReadResult(r.settings.DataDir)
	if err != nil {
		r.log(core.Warning, "could not read "+action.ResultFile+": "+err.Error())
		return
	}
	if !res.Found {
		return
	}
	f := res.Fields
	task := f["task"]
	if f["ok"] != "yes" {
		r.restartFailed = fmt.Sprintf("the last %s failed: %s", task, f["detail"])
		r.log(core.Error, r.restartFailed+"; auto_rejoin stays off until $PGDATA/"+action.ResultFile+" is removed")
		r.record(publish.Record{Kind: publish.KindRestart, Action: task, OK: publish.Ptr(false), Detail: f["detail"]})
		return
	}
	msg := fmt.Sprintf("restarted as a standby by the %s helper: %s", task, f["detail"])
	level := core.Info
	if n, _ := strconv.Atoi(f["discarded_commits"]); n > 0 {
		level = core.Warning
		msg += fmt.Sprintf("; %d transaction(s) committed on this server after it diverged from the new primary at %s "+
			"were discarded by pg_rewind: the new primary never had them", n, f["fork"])
	} else if f["fork"] != "" {
		msg += fmt.Sprintf("; diverged at %s, no committed transaction discarded", f["fork"])
	}
	r.log(level, msg)
	r.record(publish.Record{Kind: publish.KindRestart, Action: task, OK: publish.Ptr(true), Detail: msg})
	if err := action.RemoveResult(r.settings.DataDir); err != nil {
		r.log(core.Warning, err.Error())
	}
}
