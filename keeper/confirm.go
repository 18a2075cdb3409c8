package keeper

import (
	"fmt"
	"os"
	"path/filepath"

	"github.com/pg-keeper/pg_keeper/keeper/core"
)

// An operator confirms an unconfirmed primary with a file in the data
// directory (core.ConfirmFile); the runner consumes it and tells the core,
// whatever the state: elsewhere the core says there is nothing to confirm,
// so a file copied from the partner or left from an earlier run goes too.

// confirmedByOperator consumes ConfirmFile, by which an operator confirms
// this server as the primary without its partner's answer, and says so.
func (r *runner) confirmedByOperator() string {
	path := filepath.Join(r.settings.DataDir, core.ConfirmFile)
	if _, err := os.Stat(path); err != nil {
		return ""
	}
	if err := os.Remove(path); err != nil {
		// A file that stays could confirm a later start that no one meant
		// to confirm: it counts only once consumed. Said once.
		if !r.confirmStuck {
			r.log(core.Warning, fmt.Sprintf("could not remove %s, so it confirms nothing: %v", path, err))
		}
		r.confirmStuck = true
		return ""
	}
	r.confirmStuck = false
	return "confirmed by the operator (" + path + "), without an answer from the partner"
}
