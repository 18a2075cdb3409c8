package executor

import (
	"strings"

	"github.com/pg-keeper/pg_keeper/keeper/action"
	"github.com/pg-keeper/pg_keeper/keeper/conninfo"
)

// restartPlan is the helper that restarts this server as its partner's
// standby after a switchover (a rewind when it can be done) or a rejoin
// (always a rewind).
func (e *Executor) restartPlan(task string, rewind bool, env Env) action.RestartPlan {
	s := env.Settings
	p := action.RestartPlan{Task: task, DataDir: s.DataDir, BinDir: s.BinDir, PostmasterPID: s.PostmasterPID,
		Home: s.Home, Rewind: rewind}
	if rewind {
		p.Source = conninfo.WithPassfile(s.Partner.Text, s.Home)
	}
	if strings.TrimSpace(s.PrimaryConninfo) == "" {
		p.PrimaryConninfo = conninfo.WithAppName(s.Partner.Text, e.standbyName(env))
	}
	return p
}

// standbyName is the application_name this server streams with once it is
// a standby, when its own primary_conninfo does not say: cluster_name, else
// the name its partner streamed with (pairs often use one name for
// whichever node is the standby), else PostgreSQL's default.
func (e *Executor) standbyName(env Env) string {
	if name := env.Settings.ClusterName; name != "" {
		return name
	}
	if name := e.partnerNameNow(); name != "" {
		return name
	}
	return "walreceiver"
}
