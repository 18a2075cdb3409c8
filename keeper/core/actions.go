package core

// How the core follows each action, declared once: the core reads it to
// know which result it waits for, the executor to know what it runs, and
// docs/state-machine.md shows it.

// Follow says what the core does with an action's result.
type Follow int

const (
	// Tracked: the state waits for the result (the action is in flight
	// until it comes back as ActionDone or ActionFailed). One at a time.
	Tracked Follow = iota
	// Reported: the result is logged and recorded, and decides nothing
	// (after_command, the state-change command).
	Reported
	// Answers: the result answers the SQL request that asked for it
	// (pause, resume); it changes no state.
	Answers
	// Fenced: not run by the executor at all: the fence in the output
	// carries it out (Output.Fence), and the runner applies that.
	Fenced
)

var followNames = [...]string{Tracked: "the state waits for its result", Reported: "its result is logged and recorded",
	Answers: "its result answers the SQL caller", Fenced: "carried out by the fence the state wants"}

func (f Follow) String() string { return followNames[f] }

type actionDesc struct {
	name   string
	follow Follow
	// For Answers: the answer when it worked, and the start of the one
	// when it failed (the error follows).
	done, failed string
}

var actionInfo = [NumActions]actionDesc{
	NoAction:          {name: "none", follow: Tracked}, // a result of nothing: the row says it is unexpected
	Promote:           {name: "promote", follow: Tracked},
	SwitchAsync:       {name: "switch-async", follow: Tracked},
	RunAfterCommand:   {name: "after_command", follow: Reported},
	RestoreSync:       {name: "restore-sync", follow: Tracked},
	FenceSelf:         {name: "fence", follow: Fenced},
	OpenFence:         {name: "open-fence", follow: Fenced},
	PrepareSwitchover: {name: "prepare-switchover", follow: Tracked},
	HandOver:          {name: "hand-over", follow: Tracked},
	Rejoin:            {name: "rejoin", follow: Tracked},
	SetMaintenance: {name: "set-maintenance", follow: Answers,
		done: "maintenance mode on: no promotion, switchover or rejoin until SELECT pg_keeper.resume(); " +
			"the standby learns it at its next heartbeat",
		failed: "could not set pg_keeper.maintenance: "},
	ClearMaintenance: {name: "clear-maintenance", follow: Answers,
		done: "maintenance mode off: automatic actions resume", failed: "could not set pg_keeper.maintenance: "},
	RunStateChange: {name: "state_change_command", follow: Reported},
	FenceMaster:    {name: "fence_command", follow: Tracked},
	ClaimTerm:      {name: "claim-term", follow: Tracked},
	LeaveSync:      {name: "leave-sync", follow: Tracked},
	DropStaleSlots: {name: "drop-stale-slots", follow: Reported},
}

// Follow says how the core follows a's result.
func (a ActionKind) Follow() Follow { return actionInfo[a].follow }
