package keeper

import (
	"sync"
	"testing"

	"github.com/stretchr/testify/require"
)

// openRunner builds a runner as Run does (newRunner), on the test's
// goroutine, to drive its parts one by one. It is closed when the test
// ends, or before by the close it returns; once either way: closing the
// history twice would panic.
func openRunner(t *testing.T, h Host) (*runner, func()) {
	t.Helper()
	r, err := newRunner(h)
	require.NoError(t, err)
	var once sync.Once
	closeIt := func() { once.Do(r.close) }
	t.Cleanup(closeIt)
	return r, closeIt
}

// newTestRunner is openRunner for a test that leaves the close to its end.
func newTestRunner(t *testing.T, h Host) *runner {
	t.Helper()
	r, _ := openRunner(t, h)
	return r
}
