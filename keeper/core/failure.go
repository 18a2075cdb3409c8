package core

import (
	"fmt"
	"time"
)

// FailureClass says why a heartbeat failed. The probe classifies errors so
// that the core, which never sees a pgx type, can tell a certain failure
// (the partner's host answered that nothing listens), an ambiguous one (no
// answer in time) and one that proves the partner alive (it answered, with
// an error).
type FailureClass int

const (
	FailOther        FailureClass = iota
	FailRefused                   // connection refused: the host is up, the server is not
	FailTimeout                   // no answer before the deadline
	FailAuth                      // authentication or authorization failed
	FailStarting                  // the server is starting up or shutting down (SQLSTATE 57P0x)
	FailRecovery                  // the partner is in recovery although this node is a standby
	FailConfig                    // the conninfo cannot be used at all
	FailRejected                  // the server answered the heartbeat with another error
	FailWrongCluster              // the partner belongs to another cluster
	FailSelf                      // the partner is this very server
	FailBothPrimary               // the partner is a primary although this node is one
	FailSuperseded                // the partner is a primary promoted after this one
	FailNotStreaming              // the standby answers but does not stream: commits would hang
	FailOlderPrimary              // the partner is a primary promoted before this one: the stale one
	NumFailureClasses
)

var failureNames = [NumFailureClasses]string{
	FailOther:        "other",
	FailRefused:      "refused",
	FailTimeout:      "timeout",
	FailAuth:         "authentication",
	FailStarting:     "server starting or stopping",
	FailRecovery:     "partner in recovery",
	FailConfig:       "configuration",
	FailRejected:     "rejected",
	FailWrongCluster: "another cluster",
	FailSelf:         "this server",
	FailBothPrimary:  "two primaries",
	FailSuperseded:   "superseded",
	FailNotStreaming: "not streaming",
	FailOlderPrimary: "older primary",
}

func (f FailureClass) String() string { return failureNames[f] }

// Answered: the partner's server answered, so it is alive and only the
// heartbeat is failing. Such a failure never justifies a promotion or a
// switch to asynchronous replication.
func (f FailureClass) Answered() bool {
	switch f {
	case FailAuth, FailRecovery, FailRejected, FailWrongCluster, FailSelf, FailBothPrimary, FailSuperseded:
		return true
	}
	return false
}

// Certain: the partner's server is down for sure, though its host answered;
// or, for a master, its standby answers but does not stream, or is an old
// master back on an older timeline: either way it is not about to promote
// itself and commits would wait for it in vain.
func (f FailureClass) Certain() bool {
	return f == FailRefused || f == FailStarting || f == FailNotStreaming || f == FailOlderPrimary
}

// Misconfigured: an operator has to fix something; logged as ERROR.
func (f FailureClass) Misconfigured() bool {
	switch f {
	case FailConfig, FailWrongCluster, FailSelf, FailBothPrimary, FailRecovery, FailSuperseded:
		return true
	}
	return false
}

// Identity tells servers apart: a partner with the same two is this server.
type Identity struct {
	SystemID  uint64    // pg_control_system().system_identifier, shared by a primary and its standbys
	StartTime time.Time // pg_postmaster_start_time()
	// Timeline this server writes WAL on (0 in recovery or unknown): of two
	// primaries, the one on the newer timeline was promoted last.
	Timeline int
}

// PartnerFacts are what a good heartbeat learnt about the partner.
type PartnerFacts struct {
	InRecovery bool
	Identity   Identity
	// SyncMode: the partner has synchronous_standby_names set, so none of
	// its commits is acknowledged without a synchronous standby.
	SyncMode bool
	// SyncStandby: SyncMode, and no commit can be acknowledged without
	// this standby: its own walsender is synchronous and no other can take
	// its place (see syncWithMe).
	SyncStandby bool
	// SyncElsewhere: another walsender can acknowledge commits without
	// this standby (a CDC client, pg_receivewal, a second standby).
	SyncElsewhere bool
	// ReceiverName is the application_name a standby partner streams
	// with, which names its walsender on the master.
	ReceiverName string
	// LSN is the partner's current WAL position as a master, -1 otherwise.
	LSN int64
	// Timeline the partner writes WAL on as a master, 0 otherwise.
	Timeline int
	// Maintenance: pg_keeper.maintenance is on at the partner.
	Maintenance bool
	// Keepalives: the partner's keeper writes keepalive records as a
	// master (it is of a version that does), so its replication is fresh.
	Keepalives bool
}

// ProbeResult is the outcome of one heartbeat.
type ProbeResult struct {
	OK      bool
	Class   FailureClass // when !OK
	Detail  string       // the error, with any password masked
	Partner PartnerFacts // when OK
	// ReplicationAlive is set on a failed heartbeat when the replication
	// connection with the partner is still there (until the replication
	// timeouts): a server that dies drops it at once, a firewall that
	// rejects new connections leaves it to time out.
	ReplicationAlive bool
	// ReplicationFresh, when FreshKnown: the partner was also heard from
	// on it within the freshness window (fresh.go), so it is alive and only
	// the heartbeat path is broken. Unknown, the connection says so.
	FreshKnown, ReplicationFresh bool
	// LocalLSN is, on a standby at a failed heartbeat, the WAL position it
	// has received and flushed; -1 when unknown.
	LocalLSN int64
	// TLSRefused: the heartbeat asked for TLS first (sslmode=prefer) and
	// connected without it, on a second connection.
	TLSRefused bool
	// StreamingChecked: on a good heartbeat in master mode, the local
	// server was asked whether the standby's walsender streams, and
	// CaughtUp is its answer: it streams and has caught up
	// (pg_stat_replication.state = 'streaming'). The core decides what that
	// means: synchronous replication can be restored without a stall, or,
	// not streaming, commits would hang.
	StreamingChecked bool
	CaughtUp         bool
	// FlushKnown: on a master, this server was asked for the standby's
	// walsender, and FlushLSN is the flush position it reported (-1: no
	// walsender streams).
	FlushKnown bool
	FlushLSN   int64
	// Gen is ProbeRequest.Gen of the heartbeat.
	Gen int
}

// FormatLSN writes a WAL position as PostgreSQL does (0/3000060).
func FormatLSN(lsn int64) string {
	if lsn < 0 {
		return "unknown"
	}
	return fmt.Sprintf("%X/%X", uint64(lsn)>>32, uint64(lsn)&0xffffffff)
}
