package core

// Level is the severity of a log line; the host maps it to the server's own.
// The values match PGK_LEVEL_* in bgworker/pg_keeper_bridge.h.
type Level int

const (
	Info  Level = iota // LOG in the server log; the zero value
	Debug              // DEBUG1
	Warning
	Error // logged with ERROR severity, never thrown
)
