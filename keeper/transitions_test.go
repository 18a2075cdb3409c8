package keeper

import (
	"fmt"
	"slices"
	"sort"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

func rowName(r Transition) string {
	s := fmt.Sprintf("%s --%s--> %s", r.From, r.On, r.To)
	if r.Do != NoAction {
		s += " do " + r.Do.String()
	}
	return s
}

func rowsWhere(keep func(Transition) bool) []string {
	var names []string
	for _, r := range Transitions {
		if keep(r) {
			names = append(names, rowName(r))
		}
	}
	sort.Strings(names)
	return names
}

func TestTableIsComplete(t *testing.T) {
	require.Len(t, Transitions, int(numStates)*int(numTriggers))
	var seen [numStates][numTriggers]int
	for _, r := range Transitions {
		require.True(t, r.From >= 0 && r.From < numStates, "bad From in %+v", r)
		require.True(t, r.On >= 0 && r.On < numTriggers, "bad On in %+v", r)
		require.True(t, r.To >= 0 && r.To < numStates, "bad To in %+v", r)
		seen[r.From][r.On]++
	}
	for s := range numStates {
		for on := range numTriggers {
			require.Equal(t, 1, seen[s][on], "rows for %s on %s", s, on)
		}
	}
	// The index the core uses points at the table's own rows.
	for i := range Transitions {
		r := &Transitions[i]
		require.Same(t, r, transitionIndex[r.From][r.On], rowName(*r))
	}
}

func TestOnlyDocumentedRowsChangeMode(t *testing.T) {
	got := rowsWhere(func(r Transition) bool { return r.To.Mode() != r.From.Mode() })
	require.Equal(t, []string{
		"standby:connected --recovery-ended--> master:ready",
		"standby:heartbeat-lost --recovery-ended--> master:ready",
		"standby:promoting --action-done--> master:ready do after_command",
		"standby:ready --recovery-ended--> master:ready",
	}, got)
}

func TestActionRows(t *testing.T) {
	got := rowsWhere(func(r Transition) bool { return r.Do != NoAction })
	require.Equal(t, []string{
		"master:async --partner-caught-up--> master:restoring do restore-sync",
		"master:connected --partner-lost--> master:switching do switch-async",
		"master:heartbeat-lost --partner-lost--> master:switching do switch-async",
		"master:ready --partner-lost--> master:switching do switch-async",
		"standby:connected --partner-lost--> standby:promoting do promote",
		"standby:heartbeat-lost --partner-lost--> standby:promoting do promote",
		"standby:promoting --action-done--> master:ready do after_command",
	}, got)
	for _, r := range Transitions {
		if r.Do == NoAction {
			continue
		}
		require.NotEmpty(t, r.Why, "an action is always logged: %s", rowName(r))
		require.False(t, r.Unexpected, rowName(r))
		// An action that reports back leads to the state that waits for it.
		if r.Do != RunAfterCommand {
			require.Equal(t, r.Do, inFlightOf(r.To), rowName(r))
		}
		// Giving up on the partner is a warning; restoring is good news.
		wantLevel := Warning
		if r.Do == RunAfterCommand || r.Do == RestoreSync {
			wantLevel = Info
		}
		require.Equal(t, wantLevel, r.Level, rowName(r))
	}
}

func TestNoPromotionBeforeMasterWasReached(t *testing.T) {
	row := transitionIndex[StandbyReady][PartnerLost]
	require.Equal(t, StandbyReady, row.To)
	require.Equal(t, NoAction, row.Do)
	require.Equal(t, Warning, row.Level)
}

func TestUnexpectedRows(t *testing.T) {
	for _, r := range Transitions {
		// A trigger is unexpected exactly where the runner cannot produce it:
		// an action result with no action in flight, the end of recovery
		// in master mode, or a caught-up standby in standby mode.
		cannotHappen := (r.On == ActionDone || r.On == ActionFailed) && inFlightOf(r.From) == NoAction ||
			r.On == RecoveryEnded && r.From.Mode() == MasterMode ||
			r.On == PartnerCaughtUp && r.From.Mode() == StandbyMode
		require.Equal(t, cannotHappen, r.Unexpected, rowName(r))
		if !r.Unexpected {
			continue
		}
		require.Equal(t, r.From, r.To, rowName(r))
		require.Equal(t, NoAction, r.Do, rowName(r))
		require.Equal(t, Warning, r.Level, rowName(r))
		require.Equal(t, "ignored unexpected event "+r.On.String()+" in state "+r.From.String(), r.Why)
	}
	require.Len(t, rowsWhere(func(r Transition) bool { return r.Unexpected }), 24)
}

func TestSilentRowsStayInPlace(t *testing.T) {
	// A change of state is always logged; a silent row never moves.
	for _, r := range Transitions {
		if r.Why == "" {
			require.Equal(t, r.From, r.To, rowName(r))
			require.Equal(t, NoAction, r.Do, rowName(r))
			require.Equal(t, Info, r.Level, rowName(r))
		}
	}
}

func TestWhyMatchesTable(t *testing.T) {
	for _, r := range Transitions {
		require.Equal(t, r.Why, Why(r.From, r.On), rowName(r))
	}
	require.Equal(t, "master lost: promoting this standby", Why(StandbyConnected, PartnerLost))
	require.Equal(t, "", Why(StandbyConnected, PartnerUp))
}

var levelNames = map[Level]string{Info: "LOG", Debug: "DEBUG1", Warning: "WARNING", Error: "ERROR"}

// markdownTable renders Transitions for the README.
func markdownTable() string {
	var b strings.Builder
	b.WriteString("| State | Event | Next state | Action | Log |\n")
	b.WriteString("|---|---|---|---|---|\n")
	for _, r := range Transitions {
		do, log := "", ""
		if r.Do != NoAction {
			do = "`" + r.Do.String() + "`"
		}
		if r.Why != "" {
			log = levelNames[r.Level] + ": " + r.Why
		}
		fmt.Fprintf(&b, "| %s | %s | %s | %s | %s |\n", r.From, r.On, r.To, do, log)
	}
	return b.String()
}

// TestPrintTable prints the transition table as Markdown for the README:
// go test ./keeper/ -run TestPrintTable -v
func TestPrintTable(t *testing.T) {
	table := markdownTable()
	t.Log("\n" + table)
	lines := strings.Split(strings.TrimSuffix(table, "\n"), "\n")
	require.Len(t, lines, 2+int(numStates)*int(numTriggers))
	require.Equal(t, "| State | Event | Next state | Action | Log |", lines[0])
	require.Equal(t, "| standby:ready | partner-up | standby:connected |  | LOG: connected to master |", lines[2])
	promote := slices.IndexFunc(Transitions, func(r Transition) bool { return r.From == StandbyConnected && r.On == PartnerLost })
	require.Equal(t, "| standby:connected | partner-lost | standby:promoting | `promote` | "+
		"WARNING: master lost: promoting this standby |", lines[2+promote])
	for _, l := range lines {
		// Every line has the table's 5 cells, so no text broke the table.
		require.Equal(t, 6, strings.Count(l, "|"), l)
	}
}
