package keeper

import (
	"errors"
	"fmt"
	"math"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/pg-keeper/pg_keeper/keeper/action"
	"github.com/pg-keeper/pg_keeper/keeper/conninfo"
	"github.com/pg-keeper/pg_keeper/keeper/core"
	"github.com/pg-keeper/pg_keeper/keeper/probe"
)

// Settings are the GUCs, checked and ready to use.
type Settings struct {
	Partner        *pgx.ConnConfig // nil when partner_conninfo is unusable
	PartnerSet     bool            // partner_conninfo is set at all
	PartnerDisplay string          // partner_conninfo with the password masked
	Local          *pgx.ConnConfig // nil when my_conninfo is unusable
	AfterCommand   string
	// StateChange is run after every change of state, StateChangeTimeout at most.
	StateChange        string
	StateChangeTimeout time.Duration
	Interval           time.Duration
	KeepalivesCount    int
	CommandTimeout     time.Duration
	DataDir            string
	Port               int // this server's port
	Policy             core.Policy
	OnPartnerTimeout   string        // the policy's name, for pg_keeper.status
	Self               core.Identity // this server, to recognise a partner that is not one
	// ReceiverName is the application_name this server's WAL receiver
	// streams with, which names its walsender on the master.
	ReceiverName string

	Maintenance bool // pg_keeper.maintenance
	AutoRejoin  bool // pg_keeper.auto_rejoin
	// RewindBlocked says why pg_rewind cannot rewind this server ("": it
	// can): a rejoin needs it, a switchover uses it when it can.
	RewindBlocked string
	// What the switchover's and the rejoin's helper need: where the
	// server's programs are, the postmaster, the OS user's home, and
	// partner_conninfo as set (password included: never logged).
	BinDir          string
	PostmasterPID   int
	Home            string
	PartnerRaw      string
	PrimaryConninfo string // this server's own primary_conninfo, as set
	ClusterName     string
}

// ParseSettings checks raw GUC values. Problems come back as errors naming
// the GUC; the keeper logs them and keeps running with what is usable.
func ParseSettings(raw RawSettings) (Settings, []error) {
	var errs []error
	s := Settings{
		PartnerDisplay:     conninfo.MaskPassword(raw.PartnerConninfo),
		PartnerSet:         strings.TrimSpace(raw.PartnerConninfo) != "",
		AfterCommand:       strings.TrimSpace(raw.AfterCommand),
		StateChange:        strings.TrimSpace(raw.StateChangeCommand),
		StateChangeTimeout: time.Duration(raw.StateChangeTimeout) * time.Second,
		Interval:           time.Duration(math.Round(raw.KeepalivesTime * float64(time.Second))),
		KeepalivesCount:    raw.KeepalivesCount,
		CommandTimeout:     time.Duration(raw.AfterCommandTimeout) * time.Second,
		DataDir:            raw.DataDir,
		Port:               raw.Port,
		Policy:             core.Policy{MaxLag: raw.MaxFailoverLag, FailoverOnTimeout: raw.FailoverOnTimeout},
		OnPartnerTimeout:   raw.OnPartnerTimeout,
		Self:               core.Identity{SystemID: raw.SystemID, StartTime: raw.StartTime},
		ReceiverName:       probe.ReceiverNameOf(raw.PrimaryConninfo, raw.ClusterName),
		Maintenance:        raw.Maintenance,
		AutoRejoin:         raw.AutoRejoin,
		BinDir:             raw.BinDir,
		PostmasterPID:      raw.PostmasterPID,
		Home:               raw.OSHome,
		PartnerRaw:         raw.PartnerConninfo,
		PrimaryConninfo:    raw.PrimaryConninfo,
		ClusterName:        raw.ClusterName,
	}
	s.RewindBlocked = action.RewindBlocked(raw.DataDir, raw.BinDir, raw.WalLogHints, raw.DataChecksums)
	// The server enforces the GUCs' ranges; these guard a host that does not.
	if s.Interval < 10*time.Millisecond {
		errs = append(errs, fmt.Errorf("pg_keeper.keepalives_time must be at least 10ms, using 5s"))
		s.Interval = 5 * time.Second
	}
	if s.KeepalivesCount < 1 {
		errs = append(errs, fmt.Errorf("pg_keeper.keepalives_count must be at least 1, using 4"))
		s.KeepalivesCount = 4
	}
	if s.CommandTimeout <= 0 {
		s.CommandTimeout = 60 * time.Second
	}
	if s.StateChangeTimeout <= 0 {
		s.StateChangeTimeout = 30 * time.Second
	}

	if strings.TrimSpace(raw.PartnerConninfo) == "" {
		errs = append(errs, errors.New("pg_keeper.partner_conninfo is not set: set it to a connection string that reaches the other server"))
	} else if cfg, err := conninfo.Config(conninfo.WithPassfile(raw.PartnerConninfo, raw.OSHome)); err != nil {
		errs = append(errs, fmt.Errorf("pg_keeper.partner_conninfo is invalid: %s", parseErrorReason(err, raw.PartnerConninfo)))
	} else {
		s.Partner = cfg
	}

	local := raw.MyConninfo
	if strings.TrimSpace(local) == "" {
		local = defaultLocalConninfo(raw)
	}
	if cfg, err := conninfo.Config(conninfo.WithPassfile(local, raw.OSHome)); err != nil {
		errs = append(errs, fmt.Errorf("pg_keeper.my_conninfo is invalid: %s", parseErrorReason(err, local)))
	} else {
		s.Local = cfg
	}
	return s, errs
}

// parseErrorReason is why pgx could not parse a conninfo, without pgx's copy
// of the conninfo: pgx masks passwords its own way, which leaves part of an
// unterminated quoted one in the text.
func parseErrorReason(err error, text string) string {
	s := err.Error()
	if i := strings.LastIndex(s, "`: "); strings.HasPrefix(s, "cannot parse `") && i >= 0 {
		s = s[i+3:]
	}
	return fmt.Sprintf("%s (in %q)", conninfo.MaskPassword(s), conninfo.MaskPassword(text))
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
		conninfo.Quote(host), raw.Port, conninfo.Quote(user))
}
