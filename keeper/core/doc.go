// Package core is pg_keeper's decision maker: a deterministic state machine
// with no I/O. It takes inputs (heartbeat results, action results, ticks of
// time, what the server showed) with their time, and returns outputs: the
// heartbeat to run and what to check with it, actions to carry out, log
// lines, the change of state (with the primary it knows) and, through
// Fence, whether this server may take writes. Every transition is a row of
// one table (transitions.go), which docs/state-machine.md is generated
// from. The runner (package keeper) carries out what it asks and feeds back
// what happened; nothing here reads a clock, a file or the network.
package core
