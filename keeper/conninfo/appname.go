package conninfo

import (
	"fmt"
	"net/url"
	"regexp"
	"strings"
)

// Which walsender on the master is this standby? PostgreSQL itself knows
// standbys only by application_name: synchronous_standby_names lists such
// names, and a standby's WAL receiver sends the application_name of its
// primary_conninfo, else cluster_name, else "walreceiver". The keeper
// identifies its pair's walsender the same way, so that a logical or CDC
// walsender, pg_receivewal or a running pg_basebackup is never taken for
// the standby.

// AppNameKV and AppNameURI find the application_name in a
// primary_conninfo, as a key=value item or in a URI's query. Both patterns
// are also run by PostgreSQL in the heartbeat query (RE2 and PostgreSQL's
// regular expressions agree on them), so that the partner sends its name
// and not the rest of its conninfo.
const (
	AppNameKV  = `(?:^|\s)application_name\s*=\s*('(?:[^'\\]|\\.)*'|(?:[^\s'\\]|\\.)+)`
	AppNameURI = `^postgres(?:ql)?://[^?]*\?(?:.*&)?application_name=([^&]*)`
)

var (
	appNameKVRe  = regexp.MustCompile(AppNameKV)
	appNameURIRe = regexp.MustCompile(AppNameURI)
)

// ReceiverName is the application_name a WAL receiver with this
// primary_conninfo and cluster_name connects with. kvToken and uriToken
// are what AppNameKV and AppNameURI matched, if anything.
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

// WithAppName adds application_name to a conninfo, in its own syntax.
func WithAppName(conninfoText, name string) string {
	if strings.Contains(conninfoText, "://") {
		sep := "?"
		switch {
		case strings.HasSuffix(conninfoText, "?"):
			sep = ""
		case strings.Contains(conninfoText, "?"):
			sep = "&"
		}
		return conninfoText + sep + "application_name=" + urlEscape(name)
	}
	return conninfoText + " application_name='" + Quote(name) + "'"
}

func urlEscape(s string) string {
	var b strings.Builder
	for _, c := range []byte(s) {
		if c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_' || c == '.' {
			b.WriteByte(c)
		} else {
			fmt.Fprintf(&b, "%%%02X", c)
		}
	}
	return b.String()
}
