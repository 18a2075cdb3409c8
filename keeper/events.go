package keeper

import (
	"fmt"
	"time"

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
	r.hist = publish.StartHistory(r.settings.DataDir, recs, r.notice)
}

// notice logs err from any goroutine, through the main loop.
func (r *runner) notice(err error) {
	select {
	case r.inbox <- message{notice: err.Error()}:
		r.wake()
	default: // the main loop is far behind or gone: drop it
	}
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

// actionDone records how a promotion, switch, restore or after_command ended.
func (r *runner) actionDone(in core.Input, m message) {
	if in.Action == core.RunAfterCommand {
		rec := commandRecord(publish.KindAfterCmd, *m.command)
		rec.At = in.At
		r.record(rec)
		return
	}
	rec := publish.Record{At: in.At, Kind: publish.KindAction, Action: in.Action.String(), OK: publish.Ptr(in.Err == ""), Detail: in.Detail}
	if in.Err != "" {
		rec.Detail = in.Err
	}
	if !r.actionSince.IsZero() {
		rec.DurationMS = publish.Ptr(in.At.Sub(r.actionSince).Milliseconds())
		r.actionSince = time.Time{}
	}
	if in.Action == core.Promote && in.Err == "" {
		rec.Detail = fmt.Sprintf("%s; now on timeline %d", rec.Detail, m.timeline)
	}
	r.record(rec)
}
