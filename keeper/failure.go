package keeper

// FailureClass says why a heartbeat failed. The probe classifies errors so
// that the core, which never sees a pgx type, can tell a certain failure
// (the partner's host answered that nothing listens) from an ambiguous one
// (no answer in time).
type FailureClass int

const (
	FailOther    FailureClass = iota
	FailRefused               // connection refused: the host is up, the server is not
	FailTimeout               // no answer before the deadline
	FailAuth                  // authentication or authorization failed
	FailStarting              // the server is starting up or shutting down (SQLSTATE 57P03)
	FailRecovery              // the partner is not in the role this mode expects
	FailConfig                // the conninfo cannot be used at all
)

var failureNames = [...]string{
	FailOther:    "other",
	FailRefused:  "refused",
	FailTimeout:  "timeout",
	FailAuth:     "authentication",
	FailStarting: "server starting or stopping",
	FailRecovery: "in recovery",
	FailConfig:   "configuration",
}

func (f FailureClass) String() string { return failureNames[f] }

// ProbeResult is the outcome of one heartbeat.
type ProbeResult struct {
	OK     bool
	Class  FailureClass // when !OK
	Detail string       // the error, with any password masked
	// ReplicationAlive is set on a failed heartbeat when streaming
	// replication with the partner still works, so the partner is alive and
	// only the heartbeat path is broken.
	ReplicationAlive bool
	// CaughtUp is set on a good heartbeat in master mode when the standby
	// streams and has caught up (pg_stat_replication.state = 'streaming'),
	// so that synchronous replication can be restored without a stall.
	CaughtUp bool
}
