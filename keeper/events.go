package keeper

import (
	"fmt"
	"strconv"
	"time"

	"github.com/pg-keeper/pg_keeper/keeper/action"
	"github.com/pg-keeper/pg_keeper/keeper/core"
	"github.com/pg-keeper/pg_keeper/keeper/publish"
)

// openHistory puts the events saved in the data directory back into
// pg_keeper.events() and starts saving new ones. Shared memory outlives a
// restart of the worker but not of the server: it is refilled either way.
func (r *runner) openHistory() {
	if err := r.host.ResetEvents(); err != nil {
		r.log(core.Warning, "could not reset pg_keeper.events(): "+err.Error())
	}
	if r.settings.DataDir == "" {
		return
	}
	recs, err := publish.LoadHistory(r.settings.DataDir, r.node)
	if err != nil {
		r.log(core.Warning, "could not read the saved events: "+err.Error())
	}
	for _, rec := range recs {
		if err := r.host.AddEvent(rec); err != nil {
			r.log(core.Warning, "could not restore the saved events: "+err.Error())
			break
		}
	}
	// The writer's errors reach the log through the mailbox; should it be
	// full, the loop is far behind or gone, and the error is dropped.
	r.hist = publish.StartHistory(r.settings.DataDir, recs, func(err error) {
		r.box.Offer(core.Input{Kind: core.NoticeInput, At: time.Now(), Detail: err.Error()})
	})
}

// record adds an event to pg_keeper.events() and to the saved history.
func (r *runner) record(rec publish.Record) {
	if rec.At.IsZero() {
		rec.At = time.Now()
	}
	rec.Node = r.node
	b := publish.EncodeRecord(rec)
	if err := r.host.AddEvent(b); err != nil {
		r.log(core.Warning, "could not add to pg_keeper.events(): "+err.Error())
	}
	if r.hist != nil {
		r.hist.Add(b)
	}
}

// publishRequest is the event of an answered request.
func publishRequest(kind core.Request, a core.Answer) publish.Record {
	return publish.Record{Kind: publish.KindRequest, Action: kind.String(), OK: publish.Ptr(a.OK), Detail: a.Msg}
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
