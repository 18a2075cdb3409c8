package core

import "time"

// ReportKind says what a Report is about.
type ReportKind int

const (
	ActionReport      ReportKind = iota // a tracked action ended
	CommandReport                       // after_command or the state-change command ended
	MaintenanceReport                   // maintenance mode went on (OK) or off
)

// Report is a result the core took, as pg_keeper.events() records it.
type Report struct {
	Kind   ReportKind
	At     time.Time
	Action ActionKind
	OK     bool
	Detail string
	// Duration of the action or command (from the step that started a
	// tracked action to its result).
	Duration   time.Duration
	ExitStatus int // a command's exit status; -1 none
}
