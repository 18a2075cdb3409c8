package core

import (
	"fmt"
	"strings"
)

// StateMachineDoc renders the transition table as the Markdown document
// docs/state-machine.md: every state with what it means, a diagram of the
// transitions that change state, and every row that is not an impossible
// one. A test keeps the file in step with the table.
func StateMachineDoc() string {
	var b strings.Builder
	b.WriteString("# The state machine\n\n")
	b.WriteString("Generated from the transition table (`keeper/core/table.go`, with the rows of\n" +
		"`transitions.go` and `planned.go`) by\n" +
		"`go test ./keeper/core -run TestStateMachineDoc -update`; a test fails when the table changes\n" +
		"and this file does not. Each state is shown as `mode:state` (`standby:connected`); the process title shows it\n" +
		"as `(standby mode:connected)`.\n\n")
	b.WriteString("## States\n\n| state | fence | primary known to the state-change command | meaning |\n|---|---|---|---|\n")
	for s := State(0); s < NumStates; s++ {
		c := &Core{state: s}
		fmt.Fprintf(&b, "| `%s` | %s | %s | %s |\n", s, FenceNames[c.Fence()], primaryNames[s.KnowsPrimary()], stateDocs[s])
	}
	b.WriteString("\nThe fence is what the server holds in that state (see `bgworker/fence.c`): `open` takes writes; " +
		"`unconfirmed` holds new sessions a little and refuses every commit that wrote; `switching` lets sessions in " +
		"and refuses such commits; `fenced` and `stopping` refuse sessions and ask for a fast shutdown. The shutdown " +
		"that ends a switchover waits until the answer to `pg_keeper.switchover()` has left (`wantFence`).\n")
	b.WriteString("\n## Actions\n\n| action | what the core does with its result |\n|---|---|\n")
	for a := ActionKind(1); a < NumActions; a++ {
		fmt.Fprintf(&b, "| `%s` | %s |\n", a, a.Follow())
	}
	b.WriteString("\nThe executor (`keeper/executor`) runs every action but the fenced ones off the main thread and " +
		"hands its result back as an input.\n")
	b.WriteString("\n## Request rules\n\nA request that one of these rules refuses becomes `request-refused`, " +
		"whatever the state; the caller gets the rule's words.\n\n| request | refused when |\n|---|---|\n")
	for _, r := range requestRules {
		fmt.Fprintf(&b, "| `%s` | %s |\n", r.Request, r.When)
	}
	b.WriteString("\n## Decisions outside the rows\n\nNamed functions of the core (`keeper/core`) decide what " +
		"the rows leave to code:\n\n| function | decides |\n|---|---|\n")
	for _, d := range Decisions {
		fmt.Fprintf(&b, "| `%s` | %s |\n", d.Name, d.Does)
	}
	b.WriteString("\n## Transitions that change state\n\n```mermaid\nstateDiagram-v2\n")
	seen := map[string]bool{}
	for _, t := range Transitions {
		if t.To == t.From || t.Unexpected {
			continue
		}
		label := t.On.String()
		if t.Do != NoAction {
			label += " / " + t.Do.String()
		}
		line := fmt.Sprintf("    %s --> %s : %s\n", mermaidID(t.From), mermaidID(t.To), label)
		if !seen[line] {
			seen[line] = true
			b.WriteString(line)
		}
	}
	b.WriteString("```\n\n## Every row\n\nRows for events that cannot happen in a state (they are logged as a WARNING and\n" +
		"change nothing) are left out. `retry`: a failed action is tried again at the next failed heartbeat; " +
		"`deposes`: the lost master must not take writes, so commits here stop waiting for it; the answer is what the " +
		"SQL caller of the request under way gets.\n\n| state | event | next state | action | answer | log line |\n|---|---|---|---|---|---|\n")
	for s := State(0); s < NumStates; s++ {
		for tr := Trigger(0); tr < NumTriggers; tr++ {
			t := transitionIndex[s][tr]
			if t == nil || t.Unexpected {
				continue
			}
			do, log := "", ""
			if t.Do != NoAction {
				do = "`" + t.Do.String() + "`"
			}
			if t.Retry {
				do += " (retry)"
			}
			if t.Deposes {
				do += " (deposes)"
			}
			if t.Why != "" {
				log = levelNames[t.Level] + ": " + strings.ReplaceAll(t.Why, "|", `\|`)
			}
			answer := t.Answer.String()
			if t.Reply != "" {
				answer += ": " + strings.ReplaceAll(t.Reply, "|", `\|`)
			}
			fmt.Fprintf(&b, "| `%s` | `%s` | `%s` | %s | %s | %s |\n", t.From, t.On, t.To, strings.TrimSpace(do), answer, log)
		}
	}
	return b.String()
}

func mermaidID(s State) string { return strings.ReplaceAll(s.String(), ":", "_") + "_" }

var levelNames = map[Level]string{Info: "LOG", Debug: "DEBUG1", Warning: "WARNING", Error: "ERROR"}

var primaryNames = [...]string{PrimaryUnknown: "none", PrimarySelf: "this node", PrimaryPartner: "the partner"}

// stateDocs says what each state means, for the document.
var stateDocs = [NumStates]string{
	StandbyReady:             "not reached the master since start: never promotes from here",
	StandbyConnected:         "the last heartbeat to the master succeeded",
	StandbyHeartbeatLost:     "heartbeats fail but the master is alive (it answers, or replication from it works): no promotion",
	StandbyPromoting:         "`pg_promote()` under way",
	StandbyNotPromoting:      "the master is lost, but promoting could lose acknowledged commits or make a second primary; re-decided at every failed heartbeat",
	MasterReady:              "confirmed or just promoted; not reached the standby since",
	MasterConnected:          "the last heartbeat to the standby succeeded",
	MasterHeartbeatLost:      "heartbeats fail but the standby still streams: replication stays synchronous",
	MasterSwitching:          "clearing `synchronous_standby_names`",
	MasterAsync:              "replication is asynchronous because the standby was lost; restored once it has caught up",
	MasterRestoring:          "putting `synchronous_standby_names` back",
	MasterKeepingSync:        "the standby only times out and may be taking over (`on_partner_timeout = failover`): commits keep waiting",
	MasterFenced:             "superseded by a partner on a newer timeline: connections refused, the server shuts down",
	MasterUnconfirmed:        "started as a primary and the standby has not answered since: no writes until it answers as a standby, or an operator confirms this server",
	MasterHandingOver:        "`pg_keeper.switchover()` accepted: checking the standby's walsender and checkpointing, writes go on",
	MasterSwitchingOver:      "writes refused while the standby flushes the last WAL and agrees to take over; a failure here reopens writes",
	MasterHandedOver:         "the server stops (fast) and a helper restarts it as the new primary's standby",
	MasterRejoining:          "superseded, with `auto_rejoin`: the server stops and a helper rewinds it and starts it as the new primary's standby",
	StandbyTakingOver:        "the master announced a switchover: promote once it has stopped and its last WAL is here; back to connected if it does not stop in time",
	StandbyTakeoverPromoting: "`pg_promote()` for a switchover: no `after_command`, the old master is not fenced but restarting as a standby",
	StandbyClaiming:          "the master was lost: this standby asks the witness for the next term, which it gets only while the witness shows the master synchronous (and, unless the master is down for sure, its lease over); it promotes only with it",
	MasterLeavingSync:        "the standby was lost: this master records on the witness that it leaves synchronous replication, and clears `synchronous_standby_names` only once that is committed there",
	StandbyFencingPartner:    "the master was lost in a way that does not prove it down: `pg_keeper.fence_command` runs to power it off; exit status 0 promotes, anything else does not",
}
