package core

// Decision is a named function of the core that decides what the rows of
// the table leave to code. docs/state-machine.md lists them; a test checks
// that each one exists.
type Decision struct{ Name, Does string }

// Decisions are the core's decisions outside the rows, in the order a step
// meets them.
var Decisions = []Decision{
	{"tick", "time passing: no partner set (an unconfirmed server is confirmed, the keeper is inactive), the takeover's time up (takeover-expired), a heartbeat due (the probe request)"},
	{"triggerOf", "which trigger each kind of input makes"},
	{"learnTLS", "a heartbeat that had to go without TLS under sslmode=prefer makes the next ones try without it first, until a reload"},
	{"streamingCheck", "a master's good heartbeat whose standby does not stream is a failure (not streaming), unless replication is asynchronous"},
	{"probe", "counts a failed heartbeat against keepalives_count and names partner-up, partner-caught-up, partner-down, heartbeat-lost, partner-lost or partner-lost-unsafe"},
	{"superseded", "a newer primary answered: superseded, or superseded-rejoin when auto_rejoin is on, not paused and a rewind is possible"},
	{"takeoverReady", "taking over, a failure is takeover-ready once the master has stopped and its WAL up to the announced position is here; until then it does not count"},
	{"risk", "why acting on a lost partner could lose acknowledged commits or make two primaries (partner-lost-unsafe)"},
	{"witnessFirst", "with a witness: a standby takes the term there before it promotes on a loss that does not prove the master down (partner-lost-witness); a master records there that it leaves synchronous replication; a witness that does not answer lets only certain failures be acted on"},
	{"witnessResult", "a renewal that finds a higher term, or this term held by another node, deposes the master (superseded); a higher term seen there is kept"},
	{"leaseFence", "a master that holds synchronous replication, has lost its standby ambiguously and whose lease is over takes no writes (fence no-lease)"},
	{"fenceFirst", "a loss that does not prove the master down, otherwise safe, goes through fence_command first (partner-lost-fence), not again within 10 s of a failed run"},
	{"certain", "whether a failure proves the partner's server down (a refusal only while replication did not outlive the failures)"},
	{"confirms", "which heartbeat confirms an unconfirmed primary (the partner answered as a standby, or is an older primary)"},
	{"staleSlotsDue", "a standby that synchronizes failover slots drops those of its own (drop-stale-slots) at its first heartbeat to reach the master since it started, from whatever state, and again 30 s after a drop that failed or found one in use"},
	{"actionResult", "an action's result as its kind's follow rule says: tracked results become action-done or action-failed, reported ones are logged, answering ones answer"},
	{"request", "a request's trigger, unless a request rule refuses it (request-refused)"},
	{"takeoverExpired", "the takeover's time is up and the master does not look like a server that stops (or twice the time has passed)"},
	{"answer", "what a row's answer rule gives the SQL caller"},
	{"notePause", "maintenance mode went on or off (here, or learnt from the master): logged and recorded"},
	{"wantFence", "the fence the output asks for: the state's, the shutdown that ends a switchover after its answer has left"},
	{"View", "what pg_keeper.status says the keeper would do if the partner stayed down, and why it would not"},
}
