package core

import (
	"testing"

	"github.com/stretchr/testify/require"
)

func TestModeNames(t *testing.T) {
	require.Equal(t, "standby", StandbyMode.String())
	require.Equal(t, "master", MasterMode.String())
	require.Equal(t, "master", StandbyMode.partner())
	require.Equal(t, "standby", MasterMode.partner())
}

func TestStateNamesAndTitles(t *testing.T) {
	want := []struct {
		mode  Mode
		name  string
		title string
	}{
		StandbyReady:             {StandbyMode, "standby:ready", "(standby mode:ready)"},
		StandbyConnected:         {StandbyMode, "standby:connected", "(standby mode:connected)"},
		StandbyHeartbeatLost:     {StandbyMode, "standby:heartbeat-lost", "(standby mode:heartbeat-lost)"},
		StandbyPromoting:         {StandbyMode, "standby:promoting", "(standby mode:promoting)"},
		StandbyNotPromoting:      {StandbyMode, "standby:not-promoting", "(standby mode:not-promoting)"},
		MasterReady:              {MasterMode, "master:ready", "(master mode:ready)"},
		MasterConnected:          {MasterMode, "master:connected", "(master mode:connected)"},
		MasterHeartbeatLost:      {MasterMode, "master:heartbeat-lost", "(master mode:heartbeat-lost)"},
		MasterSwitching:          {MasterMode, "master:switching", "(master mode:switching)"},
		MasterAsync:              {MasterMode, "master:async", "(master mode:async)"},
		MasterRestoring:          {MasterMode, "master:restoring", "(master mode:restoring)"},
		MasterKeepingSync:        {MasterMode, "master:keeping-sync", "(master mode:keeping-sync)"},
		MasterFenced:             {MasterMode, "master:fenced", "(master mode:fenced)"},
		MasterUnconfirmed:        {MasterMode, "master:unconfirmed", "(master mode:unconfirmed)"},
		MasterHandingOver:        {MasterMode, "master:handing-over", "(master mode:handing-over)"},
		MasterSwitchingOver:      {MasterMode, "master:switching-over", "(master mode:switching-over)"},
		MasterHandedOver:         {MasterMode, "master:handed-over", "(master mode:handed-over)"},
		MasterRejoining:          {MasterMode, "master:rejoining", "(master mode:rejoining)"},
		StandbyTakingOver:        {StandbyMode, "standby:taking-over", "(standby mode:taking-over)"},
		StandbyTakeoverPromoting: {StandbyMode, "standby:switchover-promoting", "(standby mode:switchover-promoting)"},
		StandbyFencingPartner:    {StandbyMode, "standby:fencing-partner", "(standby mode:fencing-partner)"},
		StandbyClaiming:          {StandbyMode, "standby:claiming", "(standby mode:claiming)"},
		MasterLeavingSync:        {MasterMode, "master:leaving-sync", "(master mode:leaving-sync)"},
	}
	require.Len(t, want, int(NumStates))
	require.Equal(t, 23, int(NumStates))
	for s := range NumStates {
		require.Equal(t, want[s].mode, s.Mode(), "mode of %d", s)
		require.Equal(t, want[s].name, s.String())
		require.Equal(t, want[s].title, s.Title())
	}
}

func TestTriggerActionAndFailureNames(t *testing.T) {
	require.Equal(t, 23, int(NumTriggers))
	require.Equal(t, []string{"partner-up", "partner-caught-up", "partner-down", "heartbeat-lost", "partner-lost",
		"partner-lost-unsafe", "action-done", "action-failed", "recovery-ended", "superseded", "confirmed", "confirmed-async",
		"switchover-requested", "takeover-requested", "takeover-cancelled", "takeover-ready", "takeover-expired",
		"superseded-rejoin", "pause-requested", "resume-requested", "request-refused", "partner-lost-fence",
		"partner-lost-witness"},
		[]string{PartnerUp.String(), PartnerCaughtUp.String(), PartnerDown.String(), HeartbeatLost.String(),
			PartnerLost.String(), PartnerLostUnsafe.String(), ActionDone.String(), ActionFailed.String(), RecoveryEnded.String(),
			Superseded.String(), Confirmed.String(), ConfirmedAsync.String(), SwitchoverRequested.String(),
			TakeoverRequested.String(), TakeoverCancelled.String(), TakeoverReady.String(), TakeoverExpired.String(),
			SupersededRejoin.String(), PauseRequested.String(), ResumeRequested.String(), RequestRefused.String(),
			PartnerLostFence.String(), PartnerLostWitness.String()})
	for on := range NumTriggers {
		require.NotEmpty(t, on.String(), "trigger %d has no name", on)
	}
	require.Equal(t, []string{"none", "promote", "switch-async", "after_command", "restore-sync", "fence", "open-fence",
		"prepare-switchover", "hand-over", "rejoin", "set-maintenance", "clear-maintenance", "state_change_command",
		"fence_command", "claim-term", "leave-sync", "drop-stale-slots"},
		[]string{NoAction.String(), Promote.String(), SwitchAsync.String(), RunAfterCommand.String(), RestoreSync.String(),
			FenceSelf.String(), OpenFence.String(), PrepareSwitchover.String(), HandOver.String(), Rejoin.String(),
			SetMaintenance.String(), ClearMaintenance.String(), RunStateChange.String(), FenceMaster.String(),
			ClaimTerm.String(), LeaveSync.String(), DropStaleSlots.String()})
	require.Len(t, actionInfo, int(DropStaleSlots)+1)
}

// TestKnowsPrimary: which node each state knows to be the primary, for the
// state-change command. Never a server that refuses writes or may have
// been replaced: an unconfirmed, ready (not checked yet), keeping-sync or
// fenced master names none.
func TestKnowsPrimary(t *testing.T) {
	want := [NumStates]Primary{
		StandbyReady:         PrimaryUnknown,
		StandbyConnected:     PrimaryPartner,
		StandbyHeartbeatLost: PrimaryPartner,
		StandbyPromoting:     PrimaryUnknown,
		StandbyNotPromoting:  PrimaryUnknown,
		MasterReady:          PrimaryUnknown,
		MasterConnected:      PrimarySelf,
		MasterHeartbeatLost:  PrimarySelf,
		MasterSwitching:      PrimarySelf,
		MasterAsync:          PrimarySelf,
		MasterRestoring:      PrimarySelf,
		MasterKeepingSync:    PrimaryUnknown,
		MasterFenced:         PrimaryUnknown,
		MasterUnconfirmed:    PrimaryUnknown,
		// Handing over, writes go on; once they are refused the standby
		// may promote at any time, and a handed-over server is stopping.
		MasterHandingOver:   PrimarySelf,
		MasterSwitchingOver: PrimaryUnknown,
		MasterHandedOver:    PrimaryUnknown,
		// Rejoining, the partner answered as the newer primary.
		MasterRejoining: PrimaryPartner,
		// The master refuses writes until the standby has promoted.
		StandbyTakingOver:        PrimaryUnknown,
		StandbyTakeoverPromoting: PrimaryUnknown,
		// Fencing, the master may be alive or powered off.
		StandbyFencingPartner: PrimaryUnknown,
		// Claiming, the master may be alive; leaving synchronous
		// replication, the standby may be taking the term meanwhile.
		StandbyClaiming:   PrimaryUnknown,
		MasterLeavingSync: PrimaryUnknown,
	}
	require.Equal(t, 23, int(NumStates), "a new state needs its line above")
	for s := range NumStates {
		require.Equal(t, want[s], s.KnowsPrimary(), s.String())
		// A node names itself only in master mode, its partner only in
		// standby mode, or as a master superseded by it and rejoining it.
		switch s.KnowsPrimary() {
		case PrimarySelf:
			require.Equal(t, MasterMode, s.Mode(), s.String())
		case PrimaryPartner:
			if s != MasterRejoining {
				require.Equal(t, StandbyMode, s.Mode(), s.String())
			}
		}
	}
	require.Equal(t, Primary(0), PrimaryUnknown, "the zero value names no primary")
}

// TestFenceValues: the C shim reads the fence as PGK_FENCE_* (0, 1, 2).
func TestFenceValues(t *testing.T) {
	require.Equal(t, Fence(0), FenceUnconfirmed, "the zero value holds clients")
	require.Equal(t, Fence(1), FenceOpen)
	require.Equal(t, Fence(2), FenceFenced)
}
