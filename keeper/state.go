package keeper

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
	StandbyHolding                    // the master is lost, but promoting could lose data or make two primaries
	MasterReady                       // the standby was not reached yet
	MasterConnected                   // the last heartbeat to the standby succeeded
	MasterHeartbeatLost               // heartbeats fail but the standby still streams
	MasterSwitching                   // synchronous_standby_names is being cleared
	MasterAsync                       // replication was switched to asynchronous
	MasterRestoring                   // synchronous_standby_names is being restored
	MasterHolding                     // the standby is unreachable and may be taking over: commits keep waiting
	MasterFenced                      // superseded by the partner: connections refused, server shutting down
	numStates
)

var stateInfo = [numStates]struct {
	mode Mode
	name string
}{
	StandbyReady:         {StandbyMode, "ready"},
	StandbyConnected:     {StandbyMode, "connected"},
	StandbyHeartbeatLost: {StandbyMode, "heartbeat-lost"},
	StandbyPromoting:     {StandbyMode, "promoting"},
	StandbyHolding:       {StandbyMode, "not-promoting"},
	MasterReady:          {MasterMode, "ready"},
	MasterConnected:      {MasterMode, "connected"},
	MasterHeartbeatLost:  {MasterMode, "heartbeat-lost"},
	MasterSwitching:      {MasterMode, "switching"},
	MasterAsync:          {MasterMode, "async"},
	MasterRestoring:      {MasterMode, "restoring"},
	MasterHolding:        {MasterMode, "keeping-sync"},
	MasterFenced:         {MasterMode, "fenced"},
}

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
	numTriggers
)

var triggerNames = [numTriggers]string{
	PartnerUp:         "partner-up",
	PartnerCaughtUp:   "partner-caught-up",
	PartnerDown:       "partner-down",
	HeartbeatLost:     "heartbeat-lost",
	PartnerLost:       "partner-lost",
	PartnerLostUnsafe: "partner-lost-unsafe",
	ActionDone:        "action-done",
	ActionFailed:      "action-failed",
	RecoveryEnded:     "recovery-ended",
	Superseded:        "superseded",
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
)

var actionNames = [...]string{
	NoAction:        "none",
	Promote:         "promote",
	SwitchAsync:     "switch-async",
	RunAfterCommand: "after_command",
	RestoreSync:     "restore-sync",
	FenceSelf:       "fence",
}

func (a ActionKind) String() string { return actionNames[a] }
