// Package core is pg_keeper's decision maker: a deterministic state machine
// with no I/O. It takes inputs (heartbeat and action results, ticks of time,
// what the server showed, SQL requests) with their time, and returns
// outputs: the heartbeat to run and what to check with it, the actions to
// carry out, log lines, the change of state (with the primary it knows),
// the fence the server must hold, the answer to a SQL request, and the
// results it took, for the events. Every transition is a row of one table
// (built in table.go), which docs/state-machine.md is generated from; what
// the rows leave to code is in the named functions of Decisions, and how
// each action's result is followed is declared in actions.go. The runner
// (package keeper) feeds it and applies its outputs, the executor (package
// executor) carries them out; nothing here reads a clock, a file or the
// network.
package core
