package keeper

import (
	"errors"
	"fmt"
	"math"
	"path/filepath"
	"regexp"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

// Settings are the GUCs, checked and ready to use.
type Settings struct {
	Partner        *pgx.ConnConfig // nil when partner_conninfo is unusable
	PartnerDisplay string          // partner_conninfo with the password masked
	Local          *pgx.ConnConfig // nil when my_conninfo is unusable
	AfterCommand   string
	// StateChange is run after every change of state, StateChangeTimeout at most.
	StateChange        string
	StateChangeTimeout time.Duration
	Interval           time.Duration
	Count              int
	CommandTimeout     time.Duration
	DataDir            string
	Port               int // this server's port
	Policy             Policy
	Self               Identity // this server, to recognise a partner that is not one
}

// applicationName marks pg_keeper's sessions in the partner's pg_stat_activity.
const applicationName = "pg_keeper"

// ParseSettings checks raw GUC values. Problems come back as errors naming
// the GUC; the keeper logs them and keeps running with what is usable.
func ParseSettings(raw RawSettings) (Settings, []error) {
	var errs []error
	s := Settings{
		PartnerDisplay:     MaskPassword(raw.PartnerConninfo),
		AfterCommand:       strings.TrimSpace(raw.AfterCommand),
		StateChange:        strings.TrimSpace(raw.StateChangeCommand),
		StateChangeTimeout: time.Duration(raw.StateChangeTimeout) * time.Second,
		Interval:           time.Duration(math.Round(raw.KeepalivesTime * float64(time.Second))),
		Count:              raw.KeepalivesCount,
		CommandTimeout:     time.Duration(raw.AfterCommandTimeout) * time.Second,
		DataDir:            raw.DataDir,
		Port:               raw.Port,
		Policy:             Policy{MaxLag: raw.MaxFailoverLag, FailoverOnTimeout: raw.FailoverOnTimeout},
		Self:               Identity{SystemID: raw.SystemID, StartTime: raw.StartTime},
	}
	// The server enforces the GUCs' ranges; these guard a host that does not.
	if s.Interval < 10*time.Millisecond {
		errs = append(errs, fmt.Errorf("pg_keeper.keepalives_time must be at least 10ms, using 5s"))
		s.Interval = 5 * time.Second
	}
	if s.Count < 1 {
		errs = append(errs, fmt.Errorf("pg_keeper.keepalives_count must be at least 1, using 4"))
		s.Count = 4
	}
	if s.CommandTimeout <= 0 {
		s.CommandTimeout = 60 * time.Second
	}
	if s.StateChangeTimeout <= 0 {
		s.StateChangeTimeout = 30 * time.Second
	}

	if strings.TrimSpace(raw.PartnerConninfo) == "" {
		errs = append(errs, errors.New("pg_keeper.partner_conninfo is not set: set it to a connection string that reaches the other server"))
	} else if cfg, err := connConfig(withPassfile(raw.PartnerConninfo, raw.OSHome)); err != nil {
		errs = append(errs, fmt.Errorf("pg_keeper.partner_conninfo is invalid: %s", parseErrorReason(err, raw.PartnerConninfo)))
	} else {
		s.Partner = cfg
	}

	local := raw.MyConninfo
	if strings.TrimSpace(local) == "" {
		local = defaultLocalConninfo(raw)
	}
	if cfg, err := connConfig(withPassfile(local, raw.OSHome)); err != nil {
		errs = append(errs, fmt.Errorf("pg_keeper.my_conninfo is invalid: %s", parseErrorReason(err, local)))
	} else {
		s.Local = cfg
	}
	return s, errs
}

// parseErrorReason is why pgx could not parse a conninfo, without pgx's copy
// of the conninfo: pgx masks passwords its own way, which leaves part of an
// unterminated quoted one in the text.
func parseErrorReason(err error, conninfo string) string {
	s := err.Error()
	if i := strings.LastIndex(s, "`: "); strings.HasPrefix(s, "cannot parse `") && i >= 0 {
		s = s[i+3:]
	}
	return fmt.Sprintf("%s (in %q)", MaskPassword(s), MaskPassword(conninfo))
}

// defaultLocalConninfo reaches this server through its first unix socket,
// as the OS user that runs it (initdb's default superuser).
func defaultLocalConninfo(raw RawSettings) string {
	host := "localhost"
	if dir := strings.TrimSpace(strings.Split(raw.SocketDirs, ",")[0]); dir != "" {
		host = dir
	}
	user := raw.OSUser
	if user == "" {
		user = "postgres"
	}
	return fmt.Sprintf("host='%s' port=%d user='%s' dbname=postgres sslmode=disable",
		quote(host), raw.Port, quote(user))
}

// withPassfile makes ~/.pgpass of the server's OS user the default password
// file, as it is for libpq. pgx would look for it through $HOME, and the
// worker has no environment. A passfile in conninfo still wins: in the
// key=value form the last setting counts. URIs are left as they are.
func withPassfile(conninfo, home string) string {
	if home == "" || strings.Contains(conninfo, "://") {
		return conninfo
	}
	return fmt.Sprintf("passfile='%s' %s", quote(filepath.Join(home, ".pgpass")), conninfo)
}

func quote(s string) string {
	return strings.NewReplacer(`\`, `\\`, `'`, `\'`).Replace(s)
}

func connConfig(conninfo string) (*pgx.ConnConfig, error) {
	cfg, err := pgx.ParseConfig(conninfo)
	if err != nil {
		return nil, err
	}
	if _, ok := cfg.RuntimeParams["application_name"]; !ok {
		cfg.RuntimeParams["application_name"] = applicationName
	}
	// One round trip per statement, nothing cached between short sessions.
	cfg.DefaultQueryExecMode = pgx.QueryExecModeSimpleProtocol
	cfg.StatementCacheCapacity = 0
	cfg.DescriptionCacheCapacity = 0
	return cfg, nil
}

var (
	// key=value: a quoted value (an unterminated one runs to the end), or an
	// unquoted one with backslash escapes. A backquote followed by ':' or a
	// blank ends it: that is pgx quoting the conninfo in an error text. The
	// leading group keeps "?password=" of a URI query for pwQuery.
	kvPassword  = regexp.MustCompile("(?i)((?:^|[^?&\\w])(?:ssl)?password\\s*=\\s*)('(?:[^'\\\\]|\\\\.)*'?|(?:[^\\s\\\\`]|\\\\.|`[^:\\s])*)")
	uriPassword = regexp.MustCompile(`(?i)(postgres(?:ql)?://[^:/@\s]*:)([^@\s]*)@`)
	pwQuery     = regexp.MustCompile(`(?i)([?&](?:ssl)?password=)[^&\s]*`)
)

// MaskPassword hides passwords in a conninfo string or in an error text that
// quotes one: a password must never reach the server log.
func MaskPassword(s string) string {
	s = uriPassword.ReplaceAllString(s, "${1}********@")
	s = pwQuery.ReplaceAllString(s, "${1}********")
	return kvPassword.ReplaceAllString(s, "${1}********")
}

// plainFirst is cfg trying its first host without TLS before with it, as
// sslmode=allow does. Under sslmode=prefer pgx, unlike libpq, does not go on
// in plain text on the connection a server refused TLS on: it opens a
// second one. Against a server without TLS every heartbeat would cost two
// sessions; with this order it costs one, and a server that only takes TLS
// (hostssl) still gets it from the fallback.
//
// A config without that plain twin (sslmode=require, verify-*) is returned
// as it is: it must never be tried without TLS.
func plainFirst(cfg *pgx.ConnConfig) *pgx.ConnConfig {
	twin := false
	for _, fb := range cfg.Fallbacks {
		twin = twin || fb.Host == cfg.Host && fb.Port == cfg.Port && fb.TLSConfig == nil
	}
	if cfg.TLSConfig == nil || !twin {
		return cfg
	}
	c := cfg.Copy()
	secure := c.TLSConfig
	rest := []*pgconn.FallbackConfig{{Host: c.Host, Port: c.Port, TLSConfig: secure}}
	for _, fb := range c.Fallbacks {
		if fb.Host == c.Host && fb.Port == c.Port && fb.TLSConfig == nil {
			continue // the plain twin is now the first try
		}
		rest = append(rest, fb)
	}
	c.TLSConfig, c.Fallbacks = nil, rest
	return c
}
