package core

// Mode is the role the keeper plays, found from the server itself: in
// recovery means standby mode, otherwise master mode.
type Mode int

const (
	StandbyMode Mode = iota
	MasterMode
)

func (m Mode) String() string {
	if m == StandbyMode {
		return "standby"
	}
	return "master"
}

// partner names the other node from this mode's point of view.
func (m Mode) partner() string {
	if m == StandbyMode {
		return "master"
	}
	return "standby"
}

// State is the keeper's state. Each state belongs to one mode.
type State int

const (
	StandbyReady         State = iota // the master was not reached yet
	StandbyConnected                  // the last heartbeat to the master succeeded
	StandbyHeartbeatLost              // heartbeats fail but replication from the master is alive
	StandbyPromoting                  // pg_promote() is under way
	StandbyNotPromoting               // the master is lost, but promoting could lose data or make two primaries
	MasterReady                       // the standby was not reached yet
	MasterConnected                   // the last heartbeat to the standby succeeded
	MasterHeartbeatLost               // heartbeats fail but the standby still streams
	MasterSwitching                   // synchronous_standby_names is being cleared
	MasterAsync                       // replication was switched to asynchronous
	MasterRestoring                   // synchronous_standby_names is being restored
	MasterKeepingSync                 // the standby is unreachable and may be taking over: commits keep waiting
	MasterFenced                      // superseded by the partner: connections refused, server shutting down
	// MasterUnconfirmed: the server started as a primary and its partner has
	// not yet answered as its standby (or as an older primary), so the
	// partner may have replaced it: writes are refused until it does, or
	// until an operator confirms this server (see bgworker/fence.c).
	MasterUnconfirmed
	// A planned switchover (pg_keeper.switchover()), on the master:
	// HandingOver checks and checkpoints while writes go on, SwitchingOver
	// refuses writes until the standby has every byte of WAL and has agreed
	// to take over, HandedOver stops the server, which restarts as a standby.
	MasterHandingOver
	MasterSwitchingOver
	MasterHandedOver
	// MasterRejoining: superseded, with pg_keeper.auto_rejoin on: the server
	// stops, a helper rewinds it and starts it as the new primary's standby.
	MasterRejoining
	// StandbyTakingOver: the master announced a switchover; this standby
	// promotes as soon as the master has stopped and its last WAL is here.
	StandbyTakingOver
	StandbyTakeoverPromoting // pg_promote() for a switchover: no after_command
	// StandbyFencingPartner: the master was lost in a way that cannot tell a
	// dead master from a cut network; pg_keeper.fence_command runs to power
	// it off, and this standby promotes only if it says it did.
	StandbyFencingPartner
	// StandbyClaiming: the master was lost; this standby asks the witness
	// for the next term, and promotes only if it gets it.
	StandbyClaiming
	// MasterLeavingSync: the standby was lost; this master records on the
	// witness that it leaves synchronous replication before it does.
	MasterLeavingSync
	NumStates
)

// Primary says which node a state knows to be the primary, for the
// state-change command: a pooler must never be pointed at a server that
// refuses writes or may have been replaced.
type Primary int

const (
	PrimaryUnknown Primary = iota
	PrimarySelf
	PrimaryPartner
)

var stateInfo = [NumStates]struct {
	mode    Mode
	name    string
	primary Primary
}{
	StandbyReady:             {StandbyMode, "ready", PrimaryUnknown},
	StandbyConnected:         {StandbyMode, "connected", PrimaryPartner},
	StandbyHeartbeatLost:     {StandbyMode, "heartbeat-lost", PrimaryPartner},
	StandbyPromoting:         {StandbyMode, "promoting", PrimaryUnknown},
	StandbyNotPromoting:      {StandbyMode, "not-promoting", PrimaryUnknown},
	MasterReady:              {MasterMode, "ready", PrimaryUnknown},
	MasterConnected:          {MasterMode, "connected", PrimarySelf},
	MasterHeartbeatLost:      {MasterMode, "heartbeat-lost", PrimarySelf},
	MasterSwitching:          {MasterMode, "switching", PrimarySelf},
	MasterAsync:              {MasterMode, "async", PrimarySelf},
	MasterRestoring:          {MasterMode, "restoring", PrimarySelf},
	MasterKeepingSync:        {MasterMode, "keeping-sync", PrimaryUnknown},
	MasterFenced:             {MasterMode, "fenced", PrimaryUnknown},
	MasterUnconfirmed:        {MasterMode, "unconfirmed", PrimaryUnknown},
	MasterHandingOver:        {MasterMode, "handing-over", PrimarySelf},
	MasterSwitchingOver:      {MasterMode, "switching-over", PrimaryUnknown},
	MasterHandedOver:         {MasterMode, "handed-over", PrimaryUnknown},
	MasterRejoining:          {MasterMode, "rejoining", PrimaryPartner},
	StandbyTakingOver:        {StandbyMode, "taking-over", PrimaryUnknown},
	StandbyTakeoverPromoting: {StandbyMode, "switchover-promoting", PrimaryUnknown},
	StandbyFencingPartner:    {StandbyMode, "fencing-partner", PrimaryUnknown},
	StandbyClaiming:          {StandbyMode, "claiming", PrimaryUnknown},
	MasterLeavingSync:        {MasterMode, "leaving-sync", PrimaryUnknown},
}

// KnowsPrimary is the node this state knows to be the primary, if any.
func (s State) KnowsPrimary() Primary { return stateInfo[s].primary }

func (s State) Mode() Mode     { return stateInfo[s].mode }
func (s State) Name() string   { return stateInfo[s].name }
func (s State) String() string { return s.Mode().String() + ":" + stateInfo[s].name }

// Title is the process title shown in ps, as the C pg_keeper showed it:
// "postgres: bgworker: pg_keeper (standby mode:connected)".
func (s State) Title() string {
	return "(" + s.Mode().String() + " mode:" + stateInfo[s].name + ")"
}

// Trigger is an event as the transition table sees it, after the core has
// counted failures against the threshold.
type Trigger int

const (
	PartnerUp         Trigger = iota // a heartbeat succeeded
	PartnerCaughtUp                  // a heartbeat succeeded and the standby streams, caught up
	PartnerDown                      // a heartbeat failed, fewer than keepalives_count in a row
	HeartbeatLost                    // keepalives_count failures, but replication shows the partner alive
	PartnerLost                      // keepalives_count failures and replication is down too
	PartnerLostUnsafe                // partner lost, but acting on it could lose commits or make two primaries
	ActionDone                       // the action this state started succeeded
	ActionFailed                     // the action this state started failed
	RecoveryEnded                    // the local server left recovery
	Superseded                       // the partner is a primary promoted after this one
	// Confirmed: the partner answered as a standby (or as an older
	// primary), or an operator confirmed this server: it is the primary.
	Confirmed
	// ConfirmedAsync: Confirmed, and replication had been switched to
	// asynchronous before this server started, so it is to be restored.
	ConfirmedAsync
	SwitchoverRequested // pg_keeper.switchover() on the master
	TakeoverRequested   // the master's keeper announced a switchover to this standby
	TakeoverCancelled   // ...and called it off
	// TakeoverReady: the master that announced the switchover has stopped,
	// and this standby has received its WAL up to the announced position.
	TakeoverReady
	TakeoverExpired // the master did not stop in time: the switchover is off
	// SupersededRejoin: Superseded, with pg_keeper.auto_rejoin on and
	// everything a rewind needs at hand.
	SupersededRejoin
	PauseRequested  // pg_keeper.pause()
	ResumeRequested // pg_keeper.resume()
	// RequestRefused: a request that a rule of requestRules refuses
	// whatever the state (maintenance mode on, a heartbeat failed, ...).
	RequestRefused
	// PartnerLostFence: partner lost, safe to act on but for one doubt: the
	// failure does not prove the master down (a timeout), and
	// pg_keeper.fence_command can make sure it is.
	PartnerLostFence
	// PartnerLostWitness: partner lost, and a witness is set and answers:
	// a standby takes the term there before it promotes, a master records
	// there that it leaves synchronous replication before it does.
	PartnerLostWitness
	NumTriggers
)

var triggerNames = [NumTriggers]string{
	PartnerUp:           "partner-up",
	PartnerCaughtUp:     "partner-caught-up",
	PartnerDown:         "partner-down",
	HeartbeatLost:       "heartbeat-lost",
	PartnerLost:         "partner-lost",
	PartnerLostUnsafe:   "partner-lost-unsafe",
	ActionDone:          "action-done",
	ActionFailed:        "action-failed",
	RecoveryEnded:       "recovery-ended",
	Superseded:          "superseded",
	Confirmed:           "confirmed",
	ConfirmedAsync:      "confirmed-async",
	SwitchoverRequested: "switchover-requested",
	TakeoverRequested:   "takeover-requested",
	TakeoverCancelled:   "takeover-cancelled",
	TakeoverReady:       "takeover-ready",
	TakeoverExpired:     "takeover-expired",
	SupersededRejoin:    "superseded-rejoin",
	PauseRequested:      "pause-requested",
	ResumeRequested:     "resume-requested",
	RequestRefused:      "request-refused",
	PartnerLostFence:    "partner-lost-fence",
	PartnerLostWitness:  "partner-lost-witness",
}

func (t Trigger) String() string { return triggerNames[t] }

// ActionKind is work the core asks the runner to carry out.
type ActionKind int

const (
	NoAction        ActionKind = iota
	Promote                    // SELECT pg_promote() on the local server
	SwitchAsync                // ALTER SYSTEM SET synchronous_standby_names = ''; reload
	RunAfterCommand            // run pg_keeper.after_command
	RestoreSync                // put back the synchronous_standby_names that SwitchAsync cleared
	FenceSelf                  // refuse client connections and shut this server down
	OpenFence                  // let clients write: this server is confirmed as the primary
	// PrepareSwitchover checks the standby's walsender (streaming,
	// synchronous, close behind) and runs a CHECKPOINT, so that the
	// shutdown's own is short; writes go on meanwhile.
	PrepareSwitchover
	// HandOver, with writes refused: waits until the standby has flushed
	// all WAL, has it agree to take over, and leaves a helper that restarts
	// this server as its standby once it has stopped.
	HandOver
	// Rejoin leaves a helper that, once this server has stopped, rewinds it
	// against the new primary and starts it as its standby.
	Rejoin
	SetMaintenance   // pg_keeper.pause(): ALTER SYSTEM SET pg_keeper.maintenance = on
	ClearMaintenance // pg_keeper.resume()
	// RunStateChange runs pg_keeper.state_change_command for a change of
	// state: the executor starts it for every Output.Change, in order.
	RunStateChange
	// FenceMaster runs pg_keeper.fence_command, which powers the master off
	// (exit status 0: it is off).
	FenceMaster
	// ClaimTerm takes the next term on the witness, for a standby about to
	// promote; LeaveSync records there that the master leaves synchronous
	// replication (Output.WitnessAct says with what).
	ClaimTerm
	LeaveSync
	// DropStaleSlots drops, on a standby of PostgreSQL 17 or later that
	// synchronizes slots, the failover slots of its own: left from when it
	// was the primary, they keep the slot sync worker from copying the
	// primary's (a standby cannot create one).
	DropStaleSlots
	NumActions
)

func (a ActionKind) String() string { return actionInfo[a].name }

// Fence says whether a primary takes writes: the C shim holds client
// connections and refuses commits unless it is FenceOpen (values of
// PGK_FENCE_* in bgworker/pg_keeper_bridge.h).
type Fence int

const (
	FenceUnconfirmed Fence = iota // not confirmed as the primary yet: no writes
	FenceOpen
	FenceFenced // superseded: refuse connections and shut the server down
	// FenceSwitching: a switchover is under way: no writes (sessions may
	// connect and read); it opens again if the switchover fails.
	FenceSwitching
	// FenceStopping: handed over, or rejoining: refuse connections and shut
	// down, for a helper to restart the server as a standby.
	FenceStopping
	// FenceNoLease: a master cut off from its standby whose lease on the
	// witness is over: no writes (sessions may connect and read), whatever
	// synchronous_commit says; it opens again with the next renewal.
	FenceNoLease
)

// FenceNames are the fences as pg_keeper.status shows them.
var FenceNames = [...]string{FenceUnconfirmed: "unconfirmed", FenceOpen: "open", FenceFenced: "fenced",
	FenceSwitching: "switching", FenceStopping: "stopping", FenceNoLease: "no-lease"}

// String names f; "unknown" for a fence not read (-1) or not known.
func (f Fence) String() string {
	if f < 0 || int(f) >= len(FenceNames) {
		return "unknown"
	}
	return FenceNames[f]
}
