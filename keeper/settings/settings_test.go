package settings

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/pg-keeper/pg_keeper/keeper/internal/fakepg"

	"github.com/jackc/pgx/v5"
	"github.com/pg-keeper/pg_keeper/keeper/conninfo"
	"github.com/pg-keeper/pg_keeper/keeper/core"
	"github.com/stretchr/testify/require"
)

func validRaw() Raw {
	return Raw{
		PartnerConninfo:     "host=partner.example port=5433 user=rep dbname=postgres password=secret sslmode=disable",
		AfterCommand:        "  /usr/local/bin/fence.sh --now \n",
		KeepalivesTime:      0.2,
		KeepalivesCount:     3,
		AfterCommandTimeout: 7,
		Port:                5432,
		SocketDirs:          "/var/run/postgresql, /tmp",
		OSUser:              "pgadmin",
		DataDir:             "/data/pg",
		MaxFailoverLag:      16 << 20,
		FailoverOnTimeout:   true,
		OnPartnerTimeout:    "failover",
		SystemID:            7300000000000000001,
		StartTime:           time.Date(2024, 5, 1, 11, 0, 0, 123456000, time.UTC),
	}
}

func TestParseSettingsValid(t *testing.T) {
	fakepg.CleanEnv(t)
	s, errs := Parse(validRaw())
	require.Nil(t, errs)

	require.NotNil(t, s.Partner)
	require.Equal(t, "partner.example", s.Partner.Config.Host)
	require.Equal(t, uint16(5433), s.Partner.Config.Port)
	require.Equal(t, "rep", s.Partner.Config.User)
	require.Equal(t, "postgres", s.Partner.Config.Database)
	require.Equal(t, "secret", s.Partner.Config.Password)
	require.Nil(t, s.Partner.Config.TLSConfig)
	require.Equal(t, "pg_keeper", s.Partner.Config.RuntimeParams["application_name"])
	require.Equal(t, pgx.QueryExecModeSimpleProtocol, s.Partner.Config.DefaultQueryExecMode)
	require.Equal(t, 0, s.Partner.Config.StatementCacheCapacity)
	require.Equal(t, 0, s.Partner.Config.DescriptionCacheCapacity)
	require.Equal(t, "host=partner.example port=5433 user=rep dbname=postgres password=******** sslmode=disable", s.Partner.Display())

	require.NotNil(t, s.Local)
	require.Equal(t, "/var/run/postgresql", s.Local.Config.Host)
	require.Equal(t, uint16(5432), s.Local.Config.Port)
	require.Equal(t, "pgadmin", s.Local.Config.User)
	require.Equal(t, "postgres", s.Local.Config.Database)
	require.Nil(t, s.Local.Config.TLSConfig)
	require.Equal(t, "pg_keeper", s.Local.Config.RuntimeParams["application_name"])

	require.Equal(t, "/usr/local/bin/fence.sh --now", s.AfterCommand)
	require.Equal(t, 200*time.Millisecond, s.Interval)
	require.Equal(t, 3, s.KeepalivesCount)
	require.Equal(t, 7*time.Second, s.CommandTimeout)
	require.Equal(t, "/data/pg", s.DataDir)
	require.Equal(t, core.Policy{MaxLag: 16 << 20, FailoverOnTimeout: true}, s.Policy)
	require.Equal(t, "failover", s.OnPartnerTimeout)
	require.Equal(t, core.Identity{SystemID: 7300000000000000001, StartTime: time.Date(2024, 5, 1, 11, 0, 0, 123456000, time.UTC)}, s.Self)
	require.True(t, s.Partner.Set())
}

// PartnerSet tells an unset partner_conninfo (the keeper is inactive) from
// one that is set but cannot be used.
func TestParseSettingsPartnerSet(t *testing.T) {
	fakepg.CleanEnv(t)
	for _, tc := range []struct {
		conninfo    string
		set, usable bool
	}{
		{"", false, false},
		{" \t\n", false, false},
		{"port=notaport", true, false},
		{"host=partner.example user=rep", true, true},
	} {
		raw := validRaw()
		raw.PartnerConninfo = tc.conninfo
		s, _ := Parse(raw)
		require.Equal(t, tc.set, s.Partner.Set(), "%q", tc.conninfo)
		require.Equal(t, tc.usable, s.Partner.Usable(), "%q", tc.conninfo)
	}
}

func TestParseSettingsPolicyAndSelf(t *testing.T) {
	fakepg.CleanEnv(t)
	for _, tc := range []struct {
		lag      int64
		failover bool
		want     core.Policy
	}{
		{0, false, core.Policy{}},
		{1, false, core.Policy{MaxLag: 1}},
		{0, true, core.Policy{FailoverOnTimeout: true}},
		{1 << 31, true, core.Policy{MaxLag: 1 << 31, FailoverOnTimeout: true}},
		// The server keeps the GUC at 0 or above; a negative value allows nothing.
		{-5, false, core.Policy{MaxLag: -5}},
	} {
		raw := validRaw()
		raw.MaxFailoverLag, raw.FailoverOnTimeout = tc.lag, tc.failover
		s, errs := Parse(raw)
		require.Nil(t, errs)
		require.Equal(t, tc.want, s.Policy, "%d/%v", tc.lag, tc.failover)
	}

	// The identity is passed on as the host gives it, zero when unknown.
	raw := validRaw()
	raw.SystemID, raw.StartTime = 0, time.Time{}
	s, errs := Parse(raw)
	require.Nil(t, errs)
	require.Equal(t, core.Identity{}, s.Self)

	// Unusable conninfos and out-of-range values do not lose them.
	raw = validRaw()
	raw.PartnerConninfo, raw.MyConninfo, raw.KeepalivesTime, raw.KeepalivesCount = "", "port=bad", 0, 0
	s, errs = Parse(raw)
	require.Len(t, errs, 4)
	require.Equal(t, core.Policy{MaxLag: 16 << 20, FailoverOnTimeout: true}, s.Policy)
	require.Equal(t, core.Identity{SystemID: 7300000000000000001, StartTime: time.Date(2024, 5, 1, 11, 0, 0, 123456000, time.UTC)}, s.Self)

	// Everything unset: the zero policy, which keeps the master.
	s, _ = Parse(Raw{})
	require.Equal(t, core.Policy{}, s.Policy)
	require.Equal(t, core.Identity{}, s.Self)
}

func TestParseSettingsEmptyPartner(t *testing.T) {
	fakepg.CleanEnv(t)
	for _, ci := range []string{"", "   "} {
		raw := validRaw()
		raw.PartnerConninfo = ci
		s, errs := Parse(raw)
		require.Len(t, errs, 1)
		require.Equal(t, "pg_keeper.partner_conninfo is not set: set it to a connection string that reaches the other server", errs[0].Error())
		require.Nil(t, s.Partner.Config)
		require.NotNil(t, s.Local, "my_conninfo is still usable")
	}
}

func TestParseSettingsInvalidPartner(t *testing.T) {
	fakepg.CleanEnv(t)
	raw := validRaw()
	raw.PartnerConninfo = "host=x port=notaport"
	s, errs := Parse(raw)
	require.Nil(t, s.Partner.Config)
	require.Len(t, errs, 1)
	require.Equal(t, `pg_keeper.partner_conninfo is invalid: invalid port (in "host=x port=notaport")`, errs[0].Error())

	for _, tc := range []struct{ conninfo, password string }{
		{"host=x password='unterminated", "password='unterminated"},
		{"host=x password='hunter2", "hunter2"},
		{"host=x port=notaport password=hunter2", "hunter2"},
		{"host=x port=notaport password = 'se cret'", "se cret"},
		{"host=x sslmode=bogus password=hunter2", "hunter2"},
		{"postgresql://u:hunter2@h:notaport/db", "hunter2"},
		{"postgresql://u@h/db?password=hunter2&port=bad", "hunter2"},
	} {
		raw.PartnerConninfo = tc.conninfo
		s, errs := Parse(raw)
		require.Nil(t, s.Partner.Config, tc.conninfo)
		require.Len(t, errs, 1, tc.conninfo)
		msg := errs[0].Error()
		require.True(t, strings.HasPrefix(msg, "pg_keeper.partner_conninfo is invalid: "), msg)
		require.True(t, strings.HasSuffix(msg, fmt.Sprintf(" (in %q)", conninfo.MaskPassword(tc.conninfo))), msg)
		require.NotContains(t, msg, tc.password)
		require.Contains(t, msg, "********", msg)
		require.NotContains(t, s.Partner.Display(), tc.password)
	}
}

func TestParseSettingsInvalidLocal(t *testing.T) {
	fakepg.CleanEnv(t)
	raw := validRaw()
	raw.MyConninfo = "host=/tmp port=bad password=hunter2"
	s, errs := Parse(raw)
	require.NotNil(t, s.Partner)
	require.Nil(t, s.Local.Config)
	require.Len(t, errs, 1)
	require.Equal(t, `pg_keeper.my_conninfo is invalid: invalid port (in "host=/tmp port=bad password=********")`, errs[0].Error())
	require.NotContains(t, errs[0].Error(), "hunter2")
}

func TestPartnerDisplayMasksPassword(t *testing.T) {
	fakepg.CleanEnv(t)
	for _, tc := range []struct{ conninfo, display string }{
		{"host=h password=secret", "host=h password=********"},
		{"host=h password = 'se cret' user=u", "host=h password = ******** user=u"},
		{`host=h password='it\'s secret' user=u`, "host=h password=******** user=u"},
		{"host=h PASSWORD=secret", "host=h PASSWORD=********"},
		{"postgresql://u:secret@h/db", "postgresql://u:********@h/db"},
		{"postgres://u:secret@h:5433/db?sslmode=disable", "postgres://u:********@h:5433/db?sslmode=disable"},
		{"postgresql://u@h/db?password=secret", "postgresql://u@h/db?password=********"},
		{"host=h user=u", "host=h user=u"},
	} {
		require.Equal(t, tc.display, conninfo.MaskPassword(tc.conninfo), tc.conninfo)
		raw := validRaw()
		raw.PartnerConninfo = tc.conninfo
		s, _ := Parse(raw)
		require.Equal(t, tc.display, s.Partner.Display(), tc.conninfo)
	}
}

// BUG: a password fragment after a backslash-escaped space (valid in
// key=value conninfo) or after a space in an unterminated quote survives
// MaskPassword and reaches the server log.
func TestMaskPasswordWithSpaceLeaksNothing(t *testing.T) {
	fakepg.CleanEnv(t)
	raw := validRaw()
	raw.PartnerConninfo = `host=h password=se\ cret`
	s, errs := Parse(raw)
	require.Nil(t, errs)
	require.Equal(t, "se cret", s.Partner.Config.Password)
	require.Equal(t, "host=h password=********", s.Partner.Display())

	raw.PartnerConninfo = "host=h password='se cret"
	_, errs = Parse(raw)
	require.Len(t, errs, 1)
	require.NotContains(t, errs[0].Error(), "cret")
}

// BUG: the unquoted-value pattern runs to the next blank, so it also eats
// what follows the password in a URI query or in pgx's error text.
func TestMaskPasswordKeepsWhatFollows(t *testing.T) {
	require.Equal(t, "postgresql://h/db?password=********&sslmode=disable",
		conninfo.MaskPassword("postgresql://h/db?password=secret&sslmode=disable"))
	require.Equal(t, "cannot parse `host=x password=********`: invalid port",
		conninfo.MaskPassword("cannot parse `host=x password=secret`: invalid port"))
}

func TestDefaultLocalConninfo(t *testing.T) {
	require.Equal(t, "host='/var/run/postgresql' port=5432 user='pg' dbname=postgres sslmode=disable",
		defaultLocalConninfo(Raw{SocketDirs: "/var/run/postgresql,/tmp", Port: 5432, OSUser: "pg"}))
	require.Equal(t, "host='localhost' port=5433 user='postgres' dbname=postgres sslmode=disable",
		defaultLocalConninfo(Raw{Port: 5433}))
	require.Equal(t, "host='localhost' port=5433 user='postgres' dbname=postgres sslmode=disable",
		defaultLocalConninfo(Raw{SocketDirs: " , /tmp", Port: 5433}))
	require.Equal(t, `host='/tmp/it\'s dir' port=1 user='o\'\\b' dbname=postgres sslmode=disable`,
		defaultLocalConninfo(Raw{SocketDirs: " /tmp/it's dir , /x", Port: 1, OSUser: `o'\b`}))
}

func TestParseSettingsDefaultLocalWithOddNames(t *testing.T) {
	fakepg.CleanEnv(t)
	raw := validRaw()
	raw.SocketDirs = " /tmp/it's dir , /x"
	raw.OSUser = `o'\b`
	raw.Port = 6543
	s, errs := Parse(raw)
	require.Nil(t, errs)
	require.Equal(t, "/tmp/it's dir", s.Local.Config.Host)
	require.Equal(t, `o'\b`, s.Local.Config.User)
	require.Equal(t, uint16(6543), s.Local.Config.Port)
}

func TestApplicationName(t *testing.T) {
	fakepg.CleanEnv(t)
	for _, tc := range []struct{ conninfo, want string }{
		{"host=h", "pg_keeper"},
		{"host=h application_name=mine", "mine"},
		{"postgresql://h/db", "pg_keeper"},
		{"postgresql://h/db?application_name=mine", "mine"},
	} {
		raw := validRaw()
		raw.PartnerConninfo = tc.conninfo
		raw.MyConninfo = tc.conninfo
		s, errs := Parse(raw)
		require.Nil(t, errs, tc.conninfo)
		require.Equal(t, tc.want, s.Partner.Config.RuntimeParams["application_name"], tc.conninfo)
		require.Equal(t, tc.want, s.Local.Config.RuntimeParams["application_name"], tc.conninfo)
	}
}

func TestParseSettingsRanges(t *testing.T) {
	fakepg.CleanEnv(t)
	const timeErr = "pg_keeper.keepalives_time must be at least 10ms, using 5s"
	const countErr = "pg_keeper.keepalives_count must be at least 1, using 4"
	for _, tc := range []struct {
		time     float64
		count    int
		interval time.Duration
		want     int
		errs     []string
	}{
		{0.2, 3, 200 * time.Millisecond, 3, nil},
		{0.05, 1, 50 * time.Millisecond, 1, nil},
		{0.01, 2, 10 * time.Millisecond, 2, nil},
		{2.5, 10, 2500 * time.Millisecond, 10, nil},
		{0.009, 2, 5 * time.Second, 2, []string{timeErr}},
		{0, 2, 5 * time.Second, 2, []string{timeErr}},
		{-1, 2, 5 * time.Second, 2, []string{timeErr}},
		{1, 0, time.Second, 4, []string{countErr}},
		{1, -5, time.Second, 4, []string{countErr}},
		{0, 0, 5 * time.Second, 4, []string{timeErr, countErr}},
	} {
		raw := validRaw()
		raw.KeepalivesTime, raw.KeepalivesCount = tc.time, tc.count
		s, errs := Parse(raw)
		var msgs []string
		for _, e := range errs {
			msgs = append(msgs, e.Error())
		}
		require.Equal(t, tc.errs, msgs, "%v/%d", tc.time, tc.count)
		require.Equal(t, tc.interval, s.Interval, "%v/%d", tc.time, tc.count)
		require.Equal(t, tc.want, s.KeepalivesCount, "%v/%d", tc.time, tc.count)
	}
}

func TestParseSettingsCommandTimeout(t *testing.T) {
	fakepg.CleanEnv(t)
	raw := validRaw()
	for _, tc := range []struct {
		secs int
		want time.Duration
	}{{0, 60 * time.Second}, {-3, 60 * time.Second}, {1, time.Second}, {300, 5 * time.Minute}} {
		raw.AfterCommandTimeout = tc.secs
		s, errs := Parse(raw)
		require.Nil(t, errs)
		require.Equal(t, tc.want, s.CommandTimeout, "%d", tc.secs)
	}
}

func TestParseSettingsPassfileFromOSHome(t *testing.T) {
	fakepg.CleanEnv(t)
	home := t.TempDir()
	require.NoError(t, os.WriteFile(filepath.Join(home, ".pgpass"),
		[]byte("partner.example:5433:postgres:rep:frompgpass\n*:*:*:*:anyother\n"), 0o600))
	raw := validRaw()
	raw.OSHome = home
	raw.PartnerConninfo = "host=partner.example port=5433 user=rep dbname=postgres sslmode=disable"
	s, errs := Parse(raw)
	require.Nil(t, errs)
	require.Equal(t, "frompgpass", s.Partner.Config.Password)
	require.Equal(t, "anyother", s.Local.Config.Password)
	require.Equal(t, raw.PartnerConninfo, s.Partner.Display(), "the display shows the conninfo as written")

	// A password in the conninfo wins over the file.
	raw.PartnerConninfo += " password=given"
	s, errs = Parse(raw)
	require.Nil(t, errs)
	require.Equal(t, "given", s.Partner.Config.Password)

	// Without OSHome no password file is read.
	raw = validRaw()
	raw.PartnerConninfo = "host=partner.example port=5433 user=rep dbname=postgres sslmode=disable"
	s, errs = Parse(raw)
	require.Nil(t, errs)
	require.Equal(t, "", s.Partner.Config.Password)
}

// sslpassword (the client key's passphrase) is a secret too: it reaches the
// status, the events file and the state-change command's environment.
func TestMaskSSLPassword(t *testing.T) {
	require.Equal(t, "host=h sslkey=/k sslpassword=******** user=u",
		conninfo.MaskPassword("host=h sslkey=/k sslpassword=s3cret user=u"))
	require.Equal(t, "postgresql://h/db?sslpassword=********&sslmode=require",
		conninfo.MaskPassword("postgresql://h/db?sslpassword=s3cret&sslmode=require"))
}
