package core

import (
	"flag"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"
)

var update = flag.Bool("update", false, "rewrite docs/state-machine.md from the transition table")

// The document is the table: change one, regenerate the other.
func TestStateMachineDoc(t *testing.T) {
	path := filepath.Join("..", "..", "docs", "state-machine.md")
	doc := StateMachineDoc()
	if *update {
		require.NoError(t, os.WriteFile(path, []byte(doc), 0o644))
	}
	b, err := os.ReadFile(path)
	require.NoError(t, err)
	require.Equal(t, doc, string(b), "docs/state-machine.md is out of date: go test ./keeper/core -run TestStateMachineDoc -update")
	for s := State(0); s < NumStates; s++ {
		require.NotEmpty(t, stateDocs[s], "state %s has no description", s)
	}
}
