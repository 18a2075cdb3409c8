package keeper

import (
	"fmt"
	"time"

	"github.com/pg-keeper/pg_keeper/keeper/core"
	"github.com/pg-keeper/pg_keeper/keeper/publish"
)

// fenceApplier makes the server hold the fence the core's outputs ask for.
// want is the last one asked for, held what the server holds (-1: unknown).
// A failure is logged and recorded once, and tried again every second.
type fenceApplier struct {
	held, want core.Fence
	failedAt   time.Time  // when setting it to failedFor last failed (zero: it did not)
	failedFor  core.Fence // what failed
}

func (r *runner) applyFence() {
	f := &r.fence
	want := f.want
	if want != f.failedFor {
		f.failedAt = time.Time{} // a new wish: try at once, and say if it fails
	}
	if want == f.held || time.Since(f.failedAt) < time.Second {
		return
	}
	if err := r.host.SetFence(want); err != nil {
		if f.failedAt.IsZero() {
			r.log(core.Error, fmt.Sprintf("could not set the fence to %s: %v", want, err))
			if want == core.FenceFenced || want == core.FenceStopping {
				r.record(publish.Record{Kind: publish.KindAction, Action: core.FenceSelf.String(), OK: publish.Ptr(false), Detail: err.Error()})
			}
		}
		f.failedAt, f.failedFor = time.Now(), want
		return
	}
	f.held, f.failedAt = want, time.Time{}
	switch {
	case want == core.FenceStopping:
		r.record(publish.Record{Kind: publish.KindAction, Action: core.FenceSelf.String(), OK: publish.Ptr(true),
			Detail: "connections refused, fast shutdown requested; a helper restarts this server as a standby"})
	case want == core.FenceFenced:
		r.record(publish.Record{Kind: publish.KindAction, Action: core.FenceSelf.String(), OK: publish.Ptr(true),
			Detail: "connections refused, fast shutdown requested"})
		r.log(core.Error, fmt.Sprintf("to rejoin as a standby of the new primary: pg_rewind --target-pgdata=%s "+
			"--source-server=%q (or a new pg_basebackup), then touch %s/standby.signal, set primary_conninfo "+
			"to reach the new primary, and start this server", r.settings.DataDir, r.settings.Partner.Display(), r.settings.DataDir))
	case want == core.FenceOpen && r.core.State().Mode() == core.MasterMode:
		r.record(publish.Record{Kind: publish.KindAction, Action: core.OpenFence.String(), OK: publish.Ptr(true), Detail: "writes accepted"})
	}
}
