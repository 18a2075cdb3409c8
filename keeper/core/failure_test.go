package core

import (
	"math"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestFailureClasses(t *testing.T) {
	want := []struct {
		name                             string
		answered, certain, misconfigured bool
	}{
		FailOther:        {"other", false, false, false},
		FailRefused:      {"refused", false, true, false},
		FailTimeout:      {"timeout", false, false, false},
		FailAuth:         {"authentication", true, false, false},
		FailStarting:     {"server starting or stopping", false, true, false},
		FailRecovery:     {"partner in recovery", true, false, true},
		FailConfig:       {"configuration", false, false, true},
		FailRejected:     {"rejected", true, false, false},
		FailWrongCluster: {"another cluster", true, false, true},
		FailSelf:         {"this server", true, false, true},
		FailBothPrimary:  {"two primaries", true, false, true},
		FailSuperseded:   {"superseded", true, false, true},
		FailNotStreaming: {"not streaming", false, true, false},
		FailOlderPrimary: {"older primary", false, true, false},
	}
	require.Len(t, want, int(NumFailureClasses))
	require.Equal(t, 14, int(NumFailureClasses))
	for f := range NumFailureClasses {
		w := want[f]
		require.Equal(t, w.name, f.String(), "class %d", f)
		require.Equal(t, w.answered, f.Answered(), w.name)
		require.Equal(t, w.certain, f.Certain(), w.name)
		require.Equal(t, w.misconfigured, f.Misconfigured(), w.name)
		// A partner that answered is not down, let alone certainly.
		require.False(t, f.Answered() && f.Certain(), w.name)
	}
}

func TestFormatLSN(t *testing.T) {
	for _, tc := range []struct {
		lsn  int64
		want string
	}{
		{0x3000060, "0/3000060"},
		{1<<32 | 5, "1/5"},
		{0, "0/0"},
		{0x7BCDEF01<<32 | 0x2345, "7BCDEF01/2345"},
		{0xFFFFFFFF, "0/FFFFFFFF"},
		{1 << 32, "1/0"},
		{math.MaxInt64, "7FFFFFFF/FFFFFFFF"},
		{-1, "unknown"},
		{math.MinInt64, "unknown"},
	} {
		require.Equal(t, tc.want, FormatLSN(tc.lsn), "%d", tc.lsn)
	}
}
