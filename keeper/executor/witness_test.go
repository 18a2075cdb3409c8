package executor

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/pg-keeper/pg_keeper/keeper/core"
)

// What an action on the witness comes back as: done with the term, or
// failed with why the compare-and-set changed nothing, in words.
func TestWitnessOutcome(t *testing.T) {
	claim := witnessJob{req: core.WitnessRequest{Op: core.WitnessClaim, Term: 4}, action: core.ClaimTerm}
	row := core.WitnessRow{Found: true, Term: 5, Holder: "b:5433", Sync: true}
	in := witnessOutcome(claim, core.WitnessResult{Op: core.WitnessClaim, Changed: true, Row: row})
	require.Equal(t, core.ActionInput, in.Kind)
	require.Equal(t, core.ClaimTerm, in.Action)
	require.Equal(t, "term 5, held by b:5433", in.Detail)
	require.Empty(t, in.Err)

	for _, tc := range []struct {
		row  core.WitnessRow
		want string
	}{
		{core.WitnessRow{}, "the witness has no row for this pair (rebuilt empty?): nothing to claim until the master renews it"},
		{core.WitnessRow{Found: true, Term: 6, Sync: true}, "the term moved on the witness (6, this standby saw 4)"},
		{core.WitnessRow{Found: true, Term: 4}, "the witness shows the master asynchronous: commits it acknowledged may be missing here"},
		{core.WitnessRow{Found: true, Term: 4, Sync: true, LeaseAge: 1200 * time.Millisecond, Lease: 3 * time.Second},
			"the master's lease is not over (renewed 1.2s ago, lease 3s): it may be alive"},
	} {
		in := witnessOutcome(claim, core.WitnessResult{Op: core.WitnessClaim, Row: tc.row})
		require.Equal(t, tc.want, in.Err)
	}
	in = witnessOutcome(claim, core.WitnessResult{Op: core.WitnessClaim, Err: "timeout"})
	require.Equal(t, "the witness did not answer: timeout", in.Err)

	leave := witnessJob{req: core.WitnessRequest{Op: core.WitnessLeaveSync, Term: 4}, action: core.LeaveSync}
	in = witnessOutcome(leave, core.WitnessResult{Op: core.WitnessLeaveSync, Row: row})
	require.Equal(t, "this server was deposed: the witness shows term 5 held by b:5433", in.Err)

	// A read or a renewal is a WitnessInput, whatever it found.
	in = witnessOutcome(witnessJob{req: core.WitnessRequest{Op: core.WitnessRead}}, core.WitnessResult{Op: core.WitnessRead, Row: row})
	require.Equal(t, core.WitnessInput, in.Kind)
	require.Equal(t, row, in.Witness.Row)
}
