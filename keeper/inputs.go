package keeper

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/pg-keeper/pg_keeper/keeper/core"
)

// observe turns what the server shows into inputs: recovery ended, an
// operator's confirmation file, a replication connection that dropped, a
// SQL session's request.
func (r *runner) observe(now time.Time) []core.Input {
	var ins []core.Input
	if r.core.State().Mode() == core.StandbyMode {
		if inRecovery, err := r.host.InRecovery(); err == nil && !inRecovery {
			ins = append(ins, core.Input{Kind: core.RecoveryEndedInput, At: now})
		}
	}
	if why := r.confirmedByOperator(); why != "" {
		ins = append(ins, core.Input{Kind: core.ConfirmInput, At: now, Detail: why})
	}
	if n, err := r.host.ReplicationState(); err == nil {
		if n < r.replication {
			ins = append(ins, core.Input{Kind: core.ReplicationDropInput, At: now})
		}
		r.replication = n
	}
	if r.request == nil {
		if in, ok := r.takeRequest(now); ok {
			ins = append(ins, in)
		}
	}
	return ins
}

// An operator confirms an unconfirmed primary with a file in the data
// directory (core.ConfirmFile); the runner consumes it and tells the core,
// whatever the state: elsewhere the core says there is nothing to confirm,
// so a file copied from the partner or left from an earlier run goes too.

// confirmedByOperator consumes ConfirmFile, by which an operator confirms
// this server as the primary without its partner's answer, and says so.
func (r *runner) confirmedByOperator() string {
	path := filepath.Join(r.settings.DataDir, core.ConfirmFile)
	if _, err := os.Stat(path); err != nil {
		return ""
	}
	if err := os.Remove(path); err != nil {
		// A file that stays could confirm a later start that no one meant
		// to confirm: it counts only once consumed. Said once.
		if !r.confirmStuck {
			r.log(core.Warning, fmt.Sprintf("could not remove %s, so it confirms nothing: %v", path, err))
		}
		r.confirmStuck = true
		return ""
	}
	r.confirmStuck = false
	return "confirmed by the operator (" + path + "), without an answer from the partner"
}

// Requests come from SQL (bgworker/request.c): one at a time, and the
// session waits until the keeper answers. The core decides and answers;
// the runner only reads the request and hands the answer back.

// takeRequest reads the request a session waits with, if any, as an
// input. One whose argument does not parse is answered here.
func (r *runner) takeRequest(now time.Time) (core.Input, bool) {
	req, ok, err := r.host.TakeRequest()
	if err != nil || !ok {
		return core.Input{}, false
	}
	r.request = &req
	in := core.Input{Kind: core.RequestInput, At: now, Request: req.Kind}
	switch req.Kind {
	case core.TakeoverRequest:
		lsn, err := parseLSN(req.Arg)
		if err != nil {
			r.answer(core.Answer{Msg: err.Error()})
			return core.Input{}, false
		}
		in.LSN = lsn
	case core.PauseRequest:
		in.Detail = req.Arg // the reason
	}
	return in, true
}

// answer ends the wait of the session whose request is under way.
func (r *runner) answer(a core.Answer) {
	if r.request == nil {
		return
	}
	req := r.request
	r.request = nil
	if err := r.host.AnswerRequest(req.Seq, a.OK, asciiOnly(a.Msg)); err != nil {
		r.log(core.Warning, "could not answer the "+req.Kind.String()+" request: "+err.Error())
	}
	level := core.Info
	if !a.OK {
		level = core.Warning
	}
	r.log(level, req.Kind.String()+" request: "+a.Msg)
	r.record(publishRequest(req.Kind, a))
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
