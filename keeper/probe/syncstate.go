package probe

import (
	"net/url"
	"regexp"
	"strconv"
	"strings"
)

// Which walsender on the master is this standby? PostgreSQL itself knows
// standbys only by application_name: synchronous_standby_names lists such
// names, and a standby's WAL receiver sends the application_name of its
// primary_conninfo, else cluster_name, else "walreceiver". The keeper
// identifies its pair's walsender the same way, so that a logical or CDC
// walsender, pg_receivewal or a running pg_basebackup is never taken for
// the standby.

// The application_name in a primary_conninfo, as a key=value item or in a
// URI's query. Both patterns are also run by PostgreSQL in the heartbeat
// query (RE2 and PostgreSQL's regular expressions agree on them), so that
// the partner sends its name and not the rest of its conninfo.
const (
	appNameKV  = `(?:^|\s)application_name\s*=\s*('(?:[^'\\]|\\.)*'|(?:[^\s'\\]|\\.)+)`
	appNameURI = `^postgres(?:ql)?://[^?]*\?(?:.*&)?application_name=([^&]*)`
)

var (
	appNameKVRe  = regexp.MustCompile(appNameKV)
	appNameURIRe = regexp.MustCompile(appNameURI)
)

// sqlRegexp quotes a pattern as a SQL string literal.
func sqlRegexp(p string) string { return "'" + strings.ReplaceAll(p, "'", "''") + "'" }

// ReceiverName is the application_name a WAL receiver with this
// primary_conninfo and cluster_name connects with. kvToken and uriToken
// are what appNameKV and appNameURI matched, if anything.
func ReceiverName(kvToken, uriToken *string, clusterName string) string {
	switch {
	case kvToken != nil:
		return unquoteConninfo(*kvToken)
	case uriToken != nil:
		// PathUnescape: libpq decodes %XX only; a '+' stays a '+'.
		if s, err := url.PathUnescape(*uriToken); err == nil {
			return s
		}
		return *uriToken
	case clusterName != "":
		return clusterName
	}
	return "walreceiver"
}

// ReceiverNameOf is ReceiverName for a whole primary_conninfo.
func ReceiverNameOf(primaryConninfo, clusterName string) string {
	var kv, uri *string
	// libpq takes the last of a repeated key=value setting.
	if ms := appNameKVRe.FindAllStringSubmatch(primaryConninfo, -1); ms != nil {
		kv = &ms[len(ms)-1][1]
	} else if m := appNameURIRe.FindStringSubmatch(primaryConninfo); m != nil {
		uri = &m[1]
	}
	return ReceiverName(kv, uri, clusterName)
}

// unquoteConninfo undoes libpq's quoting of a key=value value.
func unquoteConninfo(v string) string {
	if len(v) >= 2 && v[0] == '\'' && v[len(v)-1] == '\'' {
		v = v[1 : len(v)-1]
	}
	var b strings.Builder
	for i := 0; i < len(v); i++ {
		if v[i] == '\\' && i+1 < len(v) {
			i++
		}
		b.WriteByte(v[i])
	}
	return b.String()
}

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
