package probe

import (
	"regexp"
	"strconv"
	"strings"
)

// walsenderCounts are the master's pg_stat_replication rows as the
// heartbeat counts them, for the standby named in the query.
type walsenderCounts struct {
	Mine, MineSync, MineQuorum int // this standby's walsenders, and how many are sync / quorum
	OthersPotential            int // other walsenders that could become synchronous
	OthersSync                 int // other walsenders that are synchronous now (sync or quorum)
	Quorum                     int // all walsenders in quorum state
}

// syncWithMe tells from a master's synchronous_standby_names and its
// walsenders whether no commit can be acknowledged there without this
// standby (with), and whether one may be acknowledged without it
// (elsewhere). Neither: this standby is not connected and nobody else is
// synchronous, so commits wait. When in doubt it says elsewhere: that only
// keeps a standby from promoting.
func syncWithMe(names string, w walsenderCounts) (with, elsewhere bool) {
	if strings.TrimSpace(names) == "" {
		return false, false
	}
	switch {
	case w.Mine > 1:
		// Two walsenders carry this standby's name: which one is it?
		return false, true
	case w.Mine == 1 && w.MineSync == 1 && w.OthersPotential == 0:
		// FIRST n: chosen, and nobody waits to take its place.
		return true, false
	case w.Mine == 1 && w.MineQuorum == 1 && w.OthersPotential == 0 && w.Quorum <= quorumSize(names):
		// ANY n: every candidate must answer, so this one too.
		return true, false
	case w.Mine == 0 && w.OthersSync == 0:
		return false, false
	}
	return false, true
}

var anyPrefix = regexp.MustCompile(`(?i)^\s*any\s+(\d+)\s*\(`)

// quorumSize is n in "ANY n (...)"; 0 for other forms.
func quorumSize(names string) int {
	if m := anyPrefix.FindStringSubmatch(names); m != nil {
		n, _ := strconv.Atoi(m[1])
		return n
	}
	return 0
}
