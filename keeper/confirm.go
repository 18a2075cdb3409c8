package keeper

import (
	"fmt"
	"os"
	"path/filepath"

	"github.com/pg-keeper/pg_keeper/keeper/action"
	"github.com/pg-keeper/pg_keeper/keeper/core"
)

// An operator confirms an unconfirmed primary with a file in the data
// directory (core.ConfirmFile); the runner consumes it and tells the core.

func (r *runner) nodeTag() string {
	return action.NodeTag(r.hostname, r.settings.Port, r.settings.DataDir)
}

// confirmedByOperator consumes ConfirmFile, by which an operator confirms
// this server as the primary without its partner's answer, and says so.
func (r *runner) confirmedByOperator() string {
	path := filepath.Join(r.settings.DataDir, core.ConfirmFile)
	if _, err := os.Stat(path); err != nil {
		return ""
	}
	if err := os.Remove(path); err != nil {
		r.log(core.Warning, fmt.Sprintf("could not remove %s: %v", path, err))
	}
	return "confirmed by the operator (" + path + "), without an answer from the partner"
}

// removeConfirmFile drops a ConfirmFile found by a standby at start: one
// copied from the partner, or left from an earlier run.
func (r *runner) removeConfirmFile() {
	path := filepath.Join(r.settings.DataDir, core.ConfirmFile)
	if err := os.Remove(path); err == nil {
		r.log(core.Warning, "removed "+path+": a standby needs no confirmation (a copy of the partner's data directory?)")
	}
}
