package core

// The rows of the witness (witness.go). Its operations cannot be called
// back: once sent, their result decides, whatever the heartbeats say
// meanwhile.

const (
	whyClaiming = "master lost: asking the witness for the next term before promoting"
	whyLeaving  = "standby lost: recording on the witness that this server leaves synchronous replication"
)

var witnessRows = []Transition{
	{From: StandbyClaiming, On: PartnerUp, To: StandbyClaiming, Level: Warning,
		Why: "master answers again, but the claim on the witness is under way: its result decides"},
	unexpected(StandbyClaiming, PartnerCaughtUp),
	stay(StandbyClaiming, PartnerDown),
	stay(StandbyClaiming, HeartbeatLost),
	stay(StandbyClaiming, PartnerLost),
	stay(StandbyClaiming, PartnerLostUnsafe),
	stay(StandbyClaiming, PartnerLostWitness),
	{From: StandbyClaiming, On: ActionDone, To: StandbyPromoting, Do: Promote, Level: Warning,
		Why: "took the next term on the witness, which showed the master synchronous: promoting this standby"},
	{From: StandbyClaiming, On: ActionFailed, To: StandbyNotPromoting, Level: Warning,
		Why: "the witness did not give this standby the term: not promoting"},
	stay(StandbyClaiming, RecoveryEnded), // the claim's result decides first
	unexpected(StandbyClaiming, Superseded),
	refuseSwitchover(StandbyClaiming, whyNotStandby),
	refuseTakeover(StandbyClaiming, whyTakeoverHeartbeat),

	stay(MasterLeavingSync, PartnerUp),
	unexpected(MasterLeavingSync, PartnerCaughtUp),
	stay(MasterLeavingSync, PartnerDown),
	stay(MasterLeavingSync, HeartbeatLost),
	stay(MasterLeavingSync, PartnerLost),
	stay(MasterLeavingSync, PartnerLostUnsafe),
	unexpected(MasterLeavingSync, PartnerLostWitness), // only a master about to go asynchronous asks
	{From: MasterLeavingSync, On: ActionDone, To: MasterSwitching, Do: SwitchAsync, Level: Warning,
		Why: "the witness records that this server leaves synchronous replication: switching to asynchronous replication"},
	{From: MasterLeavingSync, On: ActionFailed, To: MasterKeepingSync, Level: Warning,
		Why: "could not record on the witness that this server leaves synchronous replication: keeping it, commits wait"},
	unexpected(MasterLeavingSync, RecoveryEnded),
	{From: MasterLeavingSync, On: Superseded, To: MasterFenced, Do: FenceSelf, Level: Error, Why: whySuperseded},
	refuseSwitchover(MasterLeavingSync, whyNotSync),
}

// witnessRow is s's row for PartnerLostWitness: a standby that would
// promote takes the term first, a master that would go asynchronous
// records it first; a node promoting or fencing already goes on. The core
// names it nowhere else (see witnessFirst).
func witnessRow(s State) []Transition {
	switch s {
	case StandbyClaiming, MasterLeavingSync:
		return nil // in witnessRows
	case StandbyConnected, StandbyHeartbeatLost, StandbyNotPromoting:
		return []Transition{{From: s, On: PartnerLostWitness, To: StandbyClaiming, Do: ClaimTerm, Level: Warning, Why: whyClaiming}}
	case MasterReady, MasterConnected, MasterHeartbeatLost, MasterKeepingSync:
		return []Transition{{From: s, On: PartnerLostWitness, To: MasterLeavingSync, Do: LeaveSync, Level: Warning, Why: whyLeaving}}
	case StandbyPromoting, StandbyTakeoverPromoting, StandbyFencingPartner:
		return []Transition{stay(s, PartnerLostWitness)}
	}
	return []Transition{unexpected(s, PartnerLostWitness)}
}
