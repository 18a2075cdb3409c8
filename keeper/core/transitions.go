package core

// Transition is one row of the keeper's state machine. The table (built in
// table.go from the rows here and in planned.go) describes what the keeper
// does: the core follows it, the tests check that it covers every state and
// trigger, and docs/state-machine.md is generated from it (StateMachineDoc).
// What the rows leave to code is in named functions that the document
// lists (Decisions).
type Transition struct {
	From State
	On   Trigger
	To   State
	Do   ActionKind
	// Why is the log line for the transition; empty for a silent one.
	Why   string
	Level Level
	// Unexpected marks a trigger that cannot happen in this state when the
	// runner works as designed: it is logged loudly and changes nothing.
	Unexpected bool
	// Retry: the failed action is tried again at the next failed
	// heartbeat (the count is set one short of keepalives_count); a good
	// heartbeat calls it off.
	Retry bool
	// Deposes: this node has just promoted itself over a lost master, which
	// must not take writes: until it answers again, losing it is no reason
	// to keep commits waiting for it.
	Deposes bool
	// Answer is what the SQL caller of the request under way gets; Reply
	// its text when not the row's log line.
	Answer AnswerRule
	Reply  string
}

// AnswerRule says whether and how a row answers the request under way.
type AnswerRule int

const (
	NoAnswer      AnswerRule = iota
	Refuse                   // an ERROR
	Agree                    // success
	AwaitOutcome             // the caller of pg_keeper.switchover() waits for an Outcome row
	AwaitResult              // the row's action answers with its result (Answers)
	OutcomeOK                // the switchover's caller learns it is under way
	OutcomeFailed            // ...or that it failed
)

var answerNames = [...]string{NoAnswer: "", Refuse: "refuse", Agree: "agree", AwaitOutcome: "await the outcome",
	AwaitResult: "await the result", OutcomeOK: "outcome: ok", OutcomeFailed: "outcome: failed"}

func (a AnswerRule) String() string { return answerNames[a] }

// Rows that every state shares unless the table says otherwise.
func stay(s State, on Trigger) Transition { return Transition{From: s, On: on, To: s} }

func unexpected(s State, on Trigger) Transition {
	return Transition{From: s, On: on, To: s, Unexpected: true, Level: Warning,
		Why: "ignored unexpected event " + on.String() + " in state " + s.String()}
}

// failoverRows are the rows of failover: heartbeats, promotion, the
// switch to asynchronous replication and back, fencing, confirmation.
var failoverRows = []Transition{
	// Standby mode: poll the master, promote when it is gone for good.
	{From: StandbyReady, On: PartnerUp, To: StandbyConnected, Why: "connected to master"},
	unexpected(StandbyReady, PartnerCaughtUp),
	stay(StandbyReady, PartnerDown),
	{From: StandbyReady, On: HeartbeatLost, To: StandbyHeartbeatLost, Level: Warning,
		Why: "heartbeat to master failing but the master is alive: not promoting"},
	// Never promote without having seen the master since start: this standby
	// may be far behind a master that is merely unreachable from here. The
	// core calls such a loss unsafe, so PartnerLost cannot happen here.
	unexpected(StandbyReady, PartnerLost),
	{From: StandbyReady, On: PartnerLostUnsafe, To: StandbyReady, Level: Warning,
		Why: "master unreachable and never reached since start: not promoting"},
	unexpected(StandbyReady, ActionDone),
	unexpected(StandbyReady, ActionFailed),
	{From: StandbyReady, On: RecoveryEnded, To: MasterReady, Level: Warning,
		Why: "server left recovery without pg_keeper: switching to master mode"},

	stay(StandbyConnected, PartnerUp),
	unexpected(StandbyConnected, PartnerCaughtUp),
	stay(StandbyConnected, PartnerDown),
	{From: StandbyConnected, On: HeartbeatLost, To: StandbyHeartbeatLost, Level: Warning,
		Why: "heartbeat to master failing but the master is alive: not promoting"},
	{From: StandbyConnected, On: PartnerLost, To: StandbyPromoting, Do: Promote, Level: Warning,
		Why: "master lost: promoting this standby"},
	{From: StandbyConnected, On: PartnerLostUnsafe, To: StandbyNotPromoting, Level: Warning,
		Why: "master lost, but promoting could lose acknowledged commits or make a second primary: not promoting"},
	unexpected(StandbyConnected, ActionDone),
	unexpected(StandbyConnected, ActionFailed),
	{From: StandbyConnected, On: RecoveryEnded, To: MasterReady, Level: Warning,
		Why: "server left recovery without pg_keeper: switching to master mode"},

	{From: StandbyHeartbeatLost, On: PartnerUp, To: StandbyConnected, Why: "heartbeat to master restored"},
	unexpected(StandbyHeartbeatLost, PartnerCaughtUp),
	stay(StandbyHeartbeatLost, PartnerDown),
	stay(StandbyHeartbeatLost, HeartbeatLost),
	{From: StandbyHeartbeatLost, On: PartnerLost, To: StandbyPromoting, Do: Promote, Level: Warning,
		Why: "master lost: heartbeat and replication both down: promoting this standby"},
	{From: StandbyHeartbeatLost, On: PartnerLostUnsafe, To: StandbyNotPromoting, Level: Warning,
		Why: "master lost, but promoting could lose acknowledged commits or make a second primary: not promoting"},
	unexpected(StandbyHeartbeatLost, ActionDone),
	unexpected(StandbyHeartbeatLost, ActionFailed),
	{From: StandbyHeartbeatLost, On: RecoveryEnded, To: MasterReady, Level: Warning,
		Why: "server left recovery without pg_keeper: switching to master mode"},

	// A promotion cannot be taken back: heartbeats only wait for its result.
	{From: StandbyPromoting, On: PartnerUp, To: StandbyPromoting, Level: Warning,
		Why: "master answers again but the promotion is already under way"},
	unexpected(StandbyPromoting, PartnerCaughtUp),
	stay(StandbyPromoting, PartnerDown),
	stay(StandbyPromoting, HeartbeatLost),
	stay(StandbyPromoting, PartnerLost),
	stay(StandbyPromoting, PartnerLostUnsafe),
	{From: StandbyPromoting, On: ActionDone, To: MasterReady, Do: RunAfterCommand, Level: Info, Deposes: true,
		Why: "promoted: this server is now the master"},
	{From: StandbyPromoting, On: ActionFailed, To: StandbyConnected, Level: Warning, Retry: true,
		Why: "promotion failed: retrying at the next failed heartbeat"},
	// The action's own result decides; pg_promote() reports after recovery ended.
	stay(StandbyPromoting, RecoveryEnded),

	// Not promoting is re-decided at every failed heartbeat: a certain
	// failure, or a setting changed by reload, can make it safe.
	{From: StandbyNotPromoting, On: PartnerUp, To: StandbyConnected, Why: "master answers again"},
	unexpected(StandbyNotPromoting, PartnerCaughtUp),
	stay(StandbyNotPromoting, PartnerDown),
	{From: StandbyNotPromoting, On: HeartbeatLost, To: StandbyHeartbeatLost, Level: Warning,
		Why: "heartbeat to master failing but the master is alive: not promoting"},
	{From: StandbyNotPromoting, On: PartnerLost, To: StandbyPromoting, Do: Promote, Level: Warning,
		Why: "master lost: promoting this standby"},
	stay(StandbyNotPromoting, PartnerLostUnsafe),
	unexpected(StandbyNotPromoting, ActionDone),
	unexpected(StandbyNotPromoting, ActionFailed),
	{From: StandbyNotPromoting, On: RecoveryEnded, To: MasterReady, Level: Warning,
		Why: "server left recovery without pg_keeper: switching to master mode"},

	// Master mode: poll the standby, stop commits hanging when it is gone.
	{From: MasterReady, On: PartnerUp, To: MasterConnected, Why: "connected to standby"},
	// The core names a standby caught up only in MasterAsync, where it matters.
	unexpected(MasterReady, PartnerCaughtUp),
	stay(MasterReady, PartnerDown),
	{From: MasterReady, On: HeartbeatLost, To: MasterHeartbeatLost, Level: Warning,
		Why: "heartbeat to standby failing but it is alive: keeping synchronous replication"},
	// A master started alone, or just promoted, must not hang its commits;
	// synchronous replication comes back once the standby has caught up.
	{From: MasterReady, On: PartnerLost, To: MasterSwitching, Do: SwitchAsync, Level: Warning,
		Why: "standby not reached: switching to asynchronous replication until it has caught up"},
	{From: MasterReady, On: PartnerLostUnsafe, To: MasterKeepingSync, Level: Warning,
		Why: "standby unreachable and perhaps taking over: keeping synchronous replication, commits wait"},
	unexpected(MasterReady, ActionDone),
	unexpected(MasterReady, ActionFailed),
	unexpected(MasterReady, RecoveryEnded),

	stay(MasterConnected, PartnerUp),
	unexpected(MasterConnected, PartnerCaughtUp),
	stay(MasterConnected, PartnerDown),
	{From: MasterConnected, On: HeartbeatLost, To: MasterHeartbeatLost, Level: Warning,
		Why: "heartbeat to standby failing but it is alive: keeping synchronous replication"},
	{From: MasterConnected, On: PartnerLost, To: MasterSwitching, Do: SwitchAsync, Level: Warning,
		Why: "standby lost: switching to asynchronous replication"},
	{From: MasterConnected, On: PartnerLostUnsafe, To: MasterKeepingSync, Level: Warning,
		Why: "standby unreachable and perhaps taking over: keeping synchronous replication, commits wait"},
	unexpected(MasterConnected, ActionDone),
	unexpected(MasterConnected, ActionFailed),
	unexpected(MasterConnected, RecoveryEnded),

	{From: MasterHeartbeatLost, On: PartnerUp, To: MasterConnected, Why: "heartbeat to standby restored"},
	unexpected(MasterHeartbeatLost, PartnerCaughtUp),
	stay(MasterHeartbeatLost, PartnerDown),
	stay(MasterHeartbeatLost, HeartbeatLost),
	{From: MasterHeartbeatLost, On: PartnerLost, To: MasterSwitching, Do: SwitchAsync, Level: Warning,
		Why: "standby lost: heartbeat and replication both down: switching to asynchronous replication"},
	{From: MasterHeartbeatLost, On: PartnerLostUnsafe, To: MasterKeepingSync, Level: Warning,
		Why: "standby unreachable and perhaps taking over: keeping synchronous replication, commits wait"},
	unexpected(MasterHeartbeatLost, ActionDone),
	unexpected(MasterHeartbeatLost, ActionFailed),
	unexpected(MasterHeartbeatLost, RecoveryEnded),

	stay(MasterSwitching, PartnerUp),
	unexpected(MasterSwitching, PartnerCaughtUp),
	stay(MasterSwitching, PartnerDown),
	stay(MasterSwitching, HeartbeatLost),
	stay(MasterSwitching, PartnerLost),
	stay(MasterSwitching, PartnerLostUnsafe),
	{From: MasterSwitching, On: ActionDone, To: MasterAsync, Level: Info,
		Why: "replication is now asynchronous: commits no longer wait for the standby"},
	{From: MasterSwitching, On: ActionFailed, To: MasterConnected, Level: Warning, Retry: true,
		Why: "switch to asynchronous replication failed: retrying at the next failed heartbeat"},
	unexpected(MasterSwitching, RecoveryEnded),

	// Synchronous replication comes back only once the standby has caught
	// up: restoring it earlier would stall every commit until it has.
	{From: MasterAsync, On: PartnerUp, To: MasterAsync, Level: Info,
		Why: "standby reachable again; waiting for it to stream and catch up before restoring synchronous replication"},
	{From: MasterAsync, On: PartnerCaughtUp, To: MasterRestoring, Do: RestoreSync, Level: Info,
		Why: "standby caught up: restoring synchronous replication"},
	stay(MasterAsync, PartnerDown),
	stay(MasterAsync, HeartbeatLost),
	stay(MasterAsync, PartnerLost),
	stay(MasterAsync, PartnerLostUnsafe),
	unexpected(MasterAsync, ActionDone),
	unexpected(MasterAsync, ActionFailed),
	unexpected(MasterAsync, RecoveryEnded),

	stay(MasterRestoring, PartnerUp),
	unexpected(MasterRestoring, PartnerCaughtUp),
	stay(MasterRestoring, PartnerDown),
	stay(MasterRestoring, HeartbeatLost),
	stay(MasterRestoring, PartnerLost),
	stay(MasterRestoring, PartnerLostUnsafe),
	{From: MasterRestoring, On: ActionDone, To: MasterConnected, Level: Info,
		Why: "synchronous replication restored: commits wait for the standby again"},
	{From: MasterRestoring, On: ActionFailed, To: MasterAsync, Level: Warning,
		Why: "restoring synchronous replication failed: retrying at the next heartbeat"},
	unexpected(MasterRestoring, RecoveryEnded),

	{From: MasterKeepingSync, On: PartnerUp, To: MasterConnected, Why: "standby answers again"},
	unexpected(MasterKeepingSync, PartnerCaughtUp),
	stay(MasterKeepingSync, PartnerDown),
	{From: MasterKeepingSync, On: HeartbeatLost, To: MasterHeartbeatLost, Level: Warning,
		Why: "heartbeat to standby failing but it is alive: keeping synchronous replication"},
	{From: MasterKeepingSync, On: PartnerLost, To: MasterSwitching, Do: SwitchAsync, Level: Warning,
		Why: "standby lost: switching to asynchronous replication"},
	stay(MasterKeepingSync, PartnerLostUnsafe),
	unexpected(MasterKeepingSync, ActionDone),
	unexpected(MasterKeepingSync, ActionFailed),
	unexpected(MasterKeepingSync, RecoveryEnded),

	// The partner is a primary on a newer timeline: this server is the old
	// master. Fencing comes before anything else, an action under way too.
	unexpected(StandbyReady, Superseded),
	unexpected(StandbyConnected, Superseded),
	unexpected(StandbyHeartbeatLost, Superseded),
	unexpected(StandbyPromoting, Superseded),
	unexpected(StandbyNotPromoting, Superseded),
	{From: MasterReady, On: Superseded, To: MasterFenced, Do: FenceSelf, Level: Error, Why: whySuperseded},
	{From: MasterConnected, On: Superseded, To: MasterFenced, Do: FenceSelf, Level: Error, Why: whySuperseded},
	{From: MasterHeartbeatLost, On: Superseded, To: MasterFenced, Do: FenceSelf, Level: Error, Why: whySuperseded},
	{From: MasterSwitching, On: Superseded, To: MasterFenced, Do: FenceSelf, Level: Error, Why: whySuperseded},
	{From: MasterAsync, On: Superseded, To: MasterFenced, Do: FenceSelf, Level: Error, Why: whySuperseded},
	{From: MasterRestoring, On: Superseded, To: MasterFenced, Do: FenceSelf, Level: Error, Why: whySuperseded},
	{From: MasterKeepingSync, On: Superseded, To: MasterFenced, Do: FenceSelf, Level: Error, Why: whySuperseded},

	// Fenced is the end: the server is shutting down.
	stay(MasterFenced, PartnerUp),
	unexpected(MasterFenced, PartnerCaughtUp),
	stay(MasterFenced, PartnerDown),
	stay(MasterFenced, HeartbeatLost),
	stay(MasterFenced, PartnerLost),
	stay(MasterFenced, PartnerLostUnsafe),
	stay(MasterFenced, ActionDone),
	stay(MasterFenced, ActionFailed),
	stay(MasterFenced, Superseded),
	unexpected(MasterFenced, RecoveryEnded),

	// A server that starts as a primary takes no writes until its partner
	// has answered as its standby (or as a primary on an older timeline):
	// the partner may have been promoted while this server was down. Only
	// that answer, or an operator, confirms it; failed heartbeats never do.
	{From: MasterUnconfirmed, On: Confirmed, To: MasterReady, Do: OpenFence, Level: Info, Why: whyConfirmed},
	{From: MasterUnconfirmed, On: ConfirmedAsync, To: MasterAsync, Do: OpenFence, Level: Info,
		Why: whyConfirmed + "; replication was asynchronous before this start: restoring it once the standby has caught up"},
	// A good heartbeat confirms: the core names it Confirmed.
	unexpected(MasterUnconfirmed, PartnerUp),
	unexpected(MasterUnconfirmed, PartnerCaughtUp),
	stay(MasterUnconfirmed, PartnerDown),
	{From: MasterUnconfirmed, On: HeartbeatLost, To: MasterUnconfirmed, Level: Warning, Why: whyUnconfirmed},
	{From: MasterUnconfirmed, On: PartnerLost, To: MasterUnconfirmed, Level: Warning, Why: whyUnconfirmed},
	{From: MasterUnconfirmed, On: PartnerLostUnsafe, To: MasterUnconfirmed, Level: Warning, Why: whyUnconfirmed},
	unexpected(MasterUnconfirmed, ActionDone),
	unexpected(MasterUnconfirmed, ActionFailed),
	unexpected(MasterUnconfirmed, RecoveryEnded),
	{From: MasterUnconfirmed, On: Superseded, To: MasterFenced, Do: FenceSelf, Level: Error, Why: whySuperseded},
}

const whyNothingToConfirm = "ignored " + ConfirmFile + ": this server is not waiting for a confirmation"

const whyConfirmed = "this server is the primary: accepting writes"

// ConfirmFile is the file an operator creates in the data directory to
// confirm, without the partner's answer, that this server is the primary.
const ConfirmFile = "pg_keeper.confirm_primary"

const whyUnconfirmed = "the standby has not answered since this server started, so it may have been promoted meanwhile: " +
	"writes stay refused until it answers as a standby; if it is gone for good, or this is the first start of a new pair, " +
	"confirm this server as the primary: touch $PGDATA/" + ConfirmFile

const whySuperseded = "this server was superseded: its partner was promoted after it; " +
	"fencing: refusing client connections and shutting down, so that this old master takes no writes"

// Why is the log text of the transition from s on t: tests that run real
// servers assert the server log against it, so each text is written once.
func Why(s State, t Trigger) string { return transitionIndex[s][t].Why }
