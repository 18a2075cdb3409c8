package conninfo

import (
	"testing"

	"github.com/stretchr/testify/require"
)

func TestDedupeAttempts(t *testing.T) {
	const head = "failed to connect to `user=x database=y`: "
	const attempt = "127.0.0.1:5432 (127.0.0.1): dial error: connection refused"
	require.Equal(t, head+attempt, dedupeAttempts(head+attempt+" "+attempt))
	require.Equal(t, head+attempt, dedupeAttempts(head+attempt))
	// Two different attempts stay.
	require.Equal(t, head+"a: refused b: refused", dedupeAttempts(head+"a: refused b: refused"))
	// An even length cannot be one message twice.
	require.Equal(t, head+"ab ab ab", dedupeAttempts(head+"ab ab ab"))
	require.Equal(t, head+"a b", dedupeAttempts(head+"a b"))
	// Without pgx's "`: " nothing is touched.
	require.Equal(t, "x y x y", dedupeAttempts("x y x y"))
	require.Equal(t, "", dedupeAttempts(""))
	require.Equal(t, head, dedupeAttempts(head))
}
