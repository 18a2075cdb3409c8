package action

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/pg-keeper/pg_keeper/keeper/internal/durable"
)

// TermFile keeps, in the data directory, the highest term of the witness
// this node knows (docs/witness.md): a witness rebuilt empty must not let
// a lower term be taken again. A copy that pg_basebackup or pg_rewind
// brings along is the partner's knowledge of the same pair, as good as
// this node's own: a term is a number both share, not a claim.
const TermFile = "pg_keeper.term"

// LoadTerm reads the term; 0 when none was kept.
func LoadTerm(dataDir string) (int64, error) {
	b, err := os.ReadFile(filepath.Join(dataDir, TermFile))
	if errors.Is(err, os.ErrNotExist) {
		return 0, nil
	}
	if err != nil {
		return 0, err
	}
	t, err := strconv.ParseInt(strings.TrimSpace(string(b)), 10, 64)
	if err != nil || t < 0 {
		return 0, fmt.Errorf("%s holds no term (%q): remove it, the witness has the term", filepath.Join(dataDir, TermFile), strings.TrimSpace(string(b)))
	}
	return t, nil
}

// SaveTerm keeps term, durably, before the caller acts on it.
func SaveTerm(dataDir string, term int64) error {
	return durable.WriteFile(filepath.Join(dataDir, TermFile), strconv.FormatInt(term, 10)+"\n")
}
