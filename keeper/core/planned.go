package core

// Rows of the planned operations: switchover, maintenance and rejoin. A
// request that a state cannot honour is refused by its row: the row's log
// line is the ERROR the SQL caller gets.

const (
	whyNotStandby          = "this server is a standby: run pg_keeper.switchover() on the master"
	whyNoStandbyYet        = "the standby has not been reached since this server became the master"
	whyStandbySilent       = "the standby does not answer heartbeats"
	whyNotSync             = "replication with the standby is not synchronous (it was lost and has not caught up yet)"
	whyNotPrimary          = "this server is no longer the primary"
	whyUnconfirmedSwitch   = "this server is not confirmed as the primary yet"
	whySwitchoverUnderWay  = "a switchover is already under way"
	whyTakeoverNotStandby  = "this server is not a standby"
	whyTakeoverNoMaster    = "this standby has not reached the master since it started"
	whyTakeoverHeartbeat   = "this standby's heartbeats to the master fail"
	whyTakeoverPromoting   = "a promotion is under way"
	whyTakeoverUnderWay    = "this standby is already taking over"
	whySupersededRejoin    = "this server was superseded: its partner was promoted after it; stopping, and a helper rewinds it against the new primary and starts it as its standby (pg_keeper.auto_rejoin)"
	whySwitchoverPreparing = "switchover requested: checking the standby's walsender and checkpointing while writes go on"
)

func refuseSwitchover(s State, why string) Transition {
	return Transition{From: s, On: SwitchoverRequested, To: s, Level: Warning, Why: "switchover refused: " + why, Answer: Refuse}
}

func refuseTakeover(s State, why string) Transition {
	return Transition{From: s, On: TakeoverRequested, To: s, Level: Warning, Why: "takeover refused: " + why, Answer: Refuse}
}

// whyHandedOver is what pg_keeper.switchover() answers once the standby has
// agreed to take over.
const whyHandedOver = "switchover under way: this server stops and restarts as a standby; the partner promotes once it has all WAL"

// plannedRows are the rows of the planned operations: switchover,
// maintenance and rejoin. Every row that leaves handing-over or
// switching-over answers the switchover's caller (an Outcome rule).
var plannedRows = []Transition{
	// The switchover, on the master.
	{From: MasterConnected, On: SwitchoverRequested, To: MasterHandingOver, Do: PrepareSwitchover, Level: Info,
		Why: whySwitchoverPreparing, Answer: AwaitOutcome},
	refuseSwitchover(MasterReady, whyNoStandbyYet),
	refuseSwitchover(MasterHeartbeatLost, whyStandbySilent),
	refuseSwitchover(MasterKeepingSync, whyStandbySilent),
	refuseSwitchover(MasterSwitching, whyNotSync),
	refuseSwitchover(MasterAsync, whyNotSync),
	refuseSwitchover(MasterRestoring, whyNotSync),
	refuseSwitchover(MasterFenced, whyNotPrimary),
	refuseSwitchover(MasterHandedOver, whyNotPrimary),
	refuseSwitchover(MasterRejoining, whyNotPrimary),
	refuseSwitchover(MasterUnconfirmed, whyUnconfirmedSwitch),
	refuseSwitchover(MasterHandingOver, whySwitchoverUnderWay),
	refuseSwitchover(MasterSwitchingOver, whySwitchoverUnderWay),
	refuseSwitchover(StandbyReady, whyNotStandby),
	refuseSwitchover(StandbyConnected, whyNotStandby),
	refuseSwitchover(StandbyHeartbeatLost, whyNotStandby),
	refuseSwitchover(StandbyPromoting, whyNotStandby),
	refuseSwitchover(StandbyNotPromoting, whyNotStandby),
	refuseSwitchover(StandbyTakingOver, whyNotStandby),
	refuseSwitchover(StandbyTakeoverPromoting, whyNotStandby),

	// Writes go on while the action checks and checkpoints; the heartbeats
	// go on too, and a lost standby makes the action fail.
	stay(MasterHandingOver, PartnerUp),
	unexpected(MasterHandingOver, PartnerCaughtUp),
	stay(MasterHandingOver, PartnerDown),
	stay(MasterHandingOver, HeartbeatLost),
	stay(MasterHandingOver, PartnerLost),
	stay(MasterHandingOver, PartnerLostUnsafe),
	{From: MasterHandingOver, On: ActionDone, To: MasterSwitchingOver, Do: HandOver, Level: Info,
		Why: "switchover: refusing writes until the standby has flushed all WAL and agreed to take over"},
	{From: MasterHandingOver, On: ActionFailed, To: MasterConnected, Level: Warning, Answer: OutcomeFailed,
		Why: "switchover refused: nothing changed, this server stays the master"},
	unexpected(MasterHandingOver, RecoveryEnded),
	{From: MasterHandingOver, On: Superseded, To: MasterFenced, Do: FenceSelf, Level: Error, Why: whySuperseded, Answer: OutcomeFailed},

	stay(MasterSwitchingOver, PartnerUp),
	unexpected(MasterSwitchingOver, PartnerCaughtUp),
	stay(MasterSwitchingOver, PartnerDown),
	stay(MasterSwitchingOver, HeartbeatLost),
	stay(MasterSwitchingOver, PartnerLost),
	stay(MasterSwitchingOver, PartnerLostUnsafe),
	{From: MasterSwitchingOver, On: ActionDone, To: MasterHandedOver, Level: Info, Answer: OutcomeOK, Reply: whyHandedOver,
		Why: "switchover: the standby has all WAL and takes over once this server has stopped; stopping (fast), a helper restarts this server as its standby"},
	{From: MasterSwitchingOver, On: ActionFailed, To: MasterConnected, Level: Warning, Answer: OutcomeFailed,
		Why: "switchover failed before this server stopped: writes accepted again, this server stays the master"},
	unexpected(MasterSwitchingOver, RecoveryEnded),
	{From: MasterSwitchingOver, On: Superseded, To: MasterFenced, Do: FenceSelf, Level: Error, Why: whySuperseded, Answer: OutcomeFailed},

	// Handed over, like fenced, is the end: the server is stopping.
	stay(MasterHandedOver, PartnerUp),
	unexpected(MasterHandedOver, PartnerCaughtUp),
	stay(MasterHandedOver, PartnerDown),
	stay(MasterHandedOver, HeartbeatLost),
	stay(MasterHandedOver, PartnerLost),
	stay(MasterHandedOver, PartnerLostUnsafe),
	stay(MasterHandedOver, ActionDone),
	stay(MasterHandedOver, ActionFailed),
	unexpected(MasterHandedOver, RecoveryEnded),
	stay(MasterHandedOver, Superseded),

	// The takeover, on the standby.
	{From: StandbyConnected, On: TakeoverRequested, To: StandbyTakingOver, Level: Info, Answer: Agree,
		Why: "the master announced a switchover: promoting as soon as it has stopped and its WAL up to the announced position is here"},
	refuseTakeover(StandbyReady, whyTakeoverNoMaster),
	refuseTakeover(StandbyHeartbeatLost, whyTakeoverHeartbeat),
	refuseTakeover(StandbyNotPromoting, whyTakeoverHeartbeat),
	refuseTakeover(StandbyPromoting, whyTakeoverPromoting),
	refuseTakeover(StandbyTakeoverPromoting, whyTakeoverPromoting),
	refuseTakeover(StandbyTakingOver, whyTakeoverUnderWay),
	{From: StandbyTakingOver, On: TakeoverCancelled, To: StandbyConnected, Level: Warning, Answer: Agree, Reply: "takeover called off",
		Why: "the master called the switchover off: back to normal"},
	{From: StandbyTakingOver, On: TakeoverReady, To: StandbyTakeoverPromoting, Do: Promote, Level: Info,
		Why: "the master stopped for the switchover and its WAL is all here: promoting"},
	{From: StandbyTakingOver, On: TakeoverExpired, To: StandbyConnected, Level: Warning,
		Why: "the master did not stop in time for the switchover: called off, a lost master is handled as usual again"},

	// While the master stops, heartbeats fail without counting: the core
	// turns a failure into TakeoverReady once the WAL is here.
	stay(StandbyTakingOver, PartnerUp),
	unexpected(StandbyTakingOver, PartnerCaughtUp),
	stay(StandbyTakingOver, PartnerDown),
	unexpected(StandbyTakingOver, HeartbeatLost),
	unexpected(StandbyTakingOver, PartnerLost),
	unexpected(StandbyTakingOver, PartnerLostUnsafe),
	unexpected(StandbyTakingOver, ActionDone),
	unexpected(StandbyTakingOver, ActionFailed),
	{From: StandbyTakingOver, On: RecoveryEnded, To: MasterReady, Level: Warning,
		Why: "server left recovery without pg_keeper: switching to master mode"},
	unexpected(StandbyTakingOver, Superseded),

	stay(StandbyTakeoverPromoting, PartnerUp),
	unexpected(StandbyTakeoverPromoting, PartnerCaughtUp),
	stay(StandbyTakeoverPromoting, PartnerDown),
	// Heartbeats go on while pg_promote() runs, at the interval, and the
	// master has stopped: they reach the count (at once with
	// keepalives_count = 1). As in StandbyPromoting, only the result counts.
	stay(StandbyTakeoverPromoting, HeartbeatLost),
	stay(StandbyTakeoverPromoting, PartnerLost),
	stay(StandbyTakeoverPromoting, PartnerLostUnsafe),
	// The old master restarts as this server's standby: until it has
	// caught up, commits here must not wait for it.
	{From: StandbyTakeoverPromoting, On: ActionDone, To: MasterSwitching, Do: SwitchAsync, Level: Info, Deposes: true,
		Why: "promoted for the switchover: this server is now the master; replication is asynchronous until the old master, restarting as its standby, has caught up"},
	{From: StandbyTakeoverPromoting, On: ActionFailed, To: StandbyTakingOver, Level: Warning, Retry: true,
		Why: "promotion for the switchover failed: retrying at the next heartbeat"},
	stay(StandbyTakeoverPromoting, RecoveryEnded),
	unexpected(StandbyTakeoverPromoting, Superseded),

	// Rejoin: like fenced, and a helper rewinds and restarts the server.
	stay(MasterRejoining, PartnerUp),
	unexpected(MasterRejoining, PartnerCaughtUp),
	stay(MasterRejoining, PartnerDown),
	stay(MasterRejoining, HeartbeatLost),
	stay(MasterRejoining, PartnerLost),
	stay(MasterRejoining, PartnerLostUnsafe),
	{From: MasterRejoining, On: ActionDone, To: MasterRejoining, Level: Info,
		Why: "the rejoin helper waits for this server to stop; its steps go to this log, prefixed 'pg_keeper rejoin:'"},
	{From: MasterRejoining, On: ActionFailed, To: MasterFenced, Level: Error,
		Why: "could not start the rejoin helper: this server stays fenced and stops"},
	unexpected(MasterRejoining, RecoveryEnded),
	stay(MasterRejoining, Superseded),
}

// rejoinFrom are the states that a superseded server leaves for fenced, or
// with auto_rejoin, for rejoining.
// A switchover under way may start its own helper: such a server is only
// fenced (its helper may still restart it as a standby).
var rejoinFrom = []State{MasterReady, MasterConnected, MasterHeartbeatLost, MasterSwitching, MasterAsync,
	MasterRestoring, MasterKeepingSync, MasterUnconfirmed, MasterLeavingSync}
