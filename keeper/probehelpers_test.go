package keeper

import (
	"github.com/pg-keeper/pg_keeper/keeper/core"
	"github.com/pg-keeper/pg_keeper/keeper/internal/fakepg"
	"github.com/pg-keeper/pg_keeper/keeper/probe"
)

// probeSQL is the heartbeat query as a node in mode sends it.
func probeSQL(mode core.Mode, receiverName string) string {
	if mode == core.MasterMode {
		receiverName = ""
	}
	return fakepg.SimpleSQL(probe.FactsSQL, receiverName)
}

// testReceiver is the name this standby's WAL receiver streams with.
const testReceiver = "node2"

// timelineQuery is how a promotion asks for the new timeline.
var timelineQuery = "SELECT " + probe.TimelineSQL
