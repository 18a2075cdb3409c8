// Package settings turns the GUC values the server holds (Raw) into the
// keeper's settings, checked once per start or reload: one value per
// setting, a connection setting parsed once (conninfo.Setting), and what
// follows from the settings derived from them. Problems come back as errors
// naming the GUC. Nothing here touches the file system or the network.
package settings

import (
	"errors"
	"fmt"
	"math"
	"strings"
	"time"

	"github.com/pg-keeper/pg_keeper/keeper/conninfo"
	"github.com/pg-keeper/pg_keeper/keeper/core"
)

// Raw are the GUC values, and facts about the server, as the server holds
// them (bgworker/bridge.c fills them in).
type Raw struct {
	PartnerConninfo     string
	MyConninfo          string
	AfterCommand        string
	KeepalivesTime      float64 // seconds
	KeepalivesCount     int
	AfterCommandTimeout int // seconds
	StateChangeCommand  string
	StateChangeTimeout  int    // seconds
	MaxFailoverLag      int64  // bytes
	FailoverOnTimeout   bool   // pg_keeper.on_partner_timeout = failover
	OnPartnerTimeout    string // its value, as the server names it

	Port       int
	SocketDirs string
	OSUser     string
	OSHome     string
	DataDir    string
	// PrimaryConninfo and ClusterName give the application_name this
	// server's WAL receiver streams with.
	PrimaryConninfo string
	ClusterName     string
	SystemID        uint64    // pg_control_system().system_identifier
	StartTime       time.Time // pg_postmaster_start_time()

	Maintenance bool // pg_keeper.maintenance: no automatic action
	AutoRejoin  bool // pg_keeper.auto_rejoin: a superseded master rewinds and follows
	// WitnessConninfo reaches the third server that holds the pair's
	// lease; FenceCommand powers off a master the standby cannot tell dead
	// from cut off, FenceCommandTimeout (seconds) at most.
	WitnessConninfo     string
	FenceCommand        string
	FenceCommandTimeout int
	// What a rejoin needs: pg_rewind, which wants wal_log_hints or data
	// checksums, and the postmaster to stop and restart.
	BinDir        string // the directory of the running postgres executable
	WalLogHints   bool   // wal_log_hints
	DataChecksums bool   // data checksums are on
	PostmasterPID int
	SyncSlots     bool // the server copies failover slots from its primary (17+, sync_replication_slots)
}

// Settings are the GUCs, checked and ready to use.
type Settings struct {
	Partner conninfo.Setting // pg_keeper.partner_conninfo
	Witness conninfo.Setting // pg_keeper.witness_conninfo ("": no witness)
	Local   conninfo.Setting // pg_keeper.my_conninfo, or the default way to this server
	// AfterCommand runs after this node promoted itself, CommandTimeout at most.
	AfterCommand   string
	CommandTimeout time.Duration
	// StateChange is run after every change of state, StateChangeTimeout at most.
	StateChange        string
	StateChangeTimeout time.Duration
	// FenceCommand powers off a master that this standby cannot tell dead
	// from cut off, before it promotes; FenceTimeout at most.
	FenceCommand     string
	FenceTimeout     time.Duration
	Interval         time.Duration
	KeepalivesCount  int
	Policy           core.Policy
	OnPartnerTimeout string // the policy's name, for pg_keeper.status

	DataDir string
	Port    int           // this server's port
	Home    string        // the OS user's home: libpq finds ~/.pgpass there
	Self    core.Identity // this server, to recognise a partner that is not one
	// PrimaryConninfo is this server's own primary_conninfo, as set, and
	// ClusterName its cluster_name: the application_name its WAL receiver
	// streams with (ReceiverName) comes from them.
	PrimaryConninfo string
	ClusterName     string

	Maintenance bool // pg_keeper.maintenance
	AutoRejoin  bool // pg_keeper.auto_rejoin
	// What a rewind needs (see action.RewindBlocked), and the postmaster
	// that the switchover's and the rejoin's helper wait for.
	BinDir        string
	WalLogHints   bool
	DataChecksums bool
	PostmasterPID int
	// SyncSlots: a standby drops failover slots of its own (DropStaleSlots).
	SyncSlots bool
}

// ReceiverName is the application_name this server's WAL receiver streams
// with, which names its walsender on the master.
func (s *Settings) ReceiverName() string {
	return conninfo.ReceiverNameOf(s.PrimaryConninfo, s.ClusterName)
}

// Parse checks raw GUC values. Problems come back as errors naming the
// GUC; the keeper logs them and keeps running with what is usable.
func Parse(raw Raw) (*Settings, []error) {
	var errs []error
	s := &Settings{
		Partner:            conninfo.ParseSetting("pg_keeper.partner_conninfo", raw.PartnerConninfo, raw.OSHome),
		Witness:            conninfo.ParseSetting("pg_keeper.witness_conninfo", raw.WitnessConninfo, raw.OSHome),
		AfterCommand:       strings.TrimSpace(raw.AfterCommand),
		CommandTimeout:     time.Duration(raw.AfterCommandTimeout) * time.Second,
		StateChange:        strings.TrimSpace(raw.StateChangeCommand),
		StateChangeTimeout: time.Duration(raw.StateChangeTimeout) * time.Second,
		FenceCommand:       strings.TrimSpace(raw.FenceCommand),
		FenceTimeout:       time.Duration(raw.FenceCommandTimeout) * time.Second,
		Interval:           time.Duration(math.Round(raw.KeepalivesTime * float64(time.Second))),
		KeepalivesCount:    raw.KeepalivesCount,
		Policy:             core.Policy{MaxLag: raw.MaxFailoverLag, FailoverOnTimeout: raw.FailoverOnTimeout},
		OnPartnerTimeout:   raw.OnPartnerTimeout,
		DataDir:            raw.DataDir,
		Port:               raw.Port,
		Home:               raw.OSHome,
		Self:               core.Identity{SystemID: raw.SystemID, StartTime: raw.StartTime},
		PrimaryConninfo:    raw.PrimaryConninfo,
		ClusterName:        raw.ClusterName,
		Maintenance:        raw.Maintenance,
		AutoRejoin:         raw.AutoRejoin,
		BinDir:             raw.BinDir,
		WalLogHints:        raw.WalLogHints,
		DataChecksums:      raw.DataChecksums,
		PostmasterPID:      raw.PostmasterPID,
		SyncSlots:          raw.SyncSlots,
	}
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
	if s.FenceTimeout <= 0 {
		s.FenceTimeout = 30 * time.Second
	}
	if s.Witness.Err != nil {
		errs = append(errs, s.Witness.Err)
	}
	switch {
	case !s.Partner.Set():
		errs = append(errs, conninfo.ErrNotSet("pg_keeper.partner_conninfo", "reaches the other server"))
	case s.Partner.Err != nil:
		errs = append(errs, s.Partner.Err)
	}
	local := raw.MyConninfo
	if strings.TrimSpace(local) == "" {
		local = defaultLocalConninfo(raw)
	}
	s.Local = conninfo.ParseSetting("pg_keeper.my_conninfo", local, raw.OSHome)
	if s.Local.Err != nil {
		errs = append(errs, s.Local.Err)
	}
	return s, errs
}

// Fallback is what the keeper uses until the settings can be read: the
// loop must never spin, and settings that cannot be read are not an unset
// partner.
func Fallback() *Settings {
	return &Settings{Interval: 5 * time.Second, KeepalivesCount: 4, CommandTimeout: time.Minute,
		StateChangeTimeout: 30 * time.Second, Partner: conninfo.Setting{Text: "(unreadable)", Err: errUnread}}
}

var errUnread = errors.New("the settings could not be read")

// defaultLocalConninfo reaches this server through its first unix socket,
// as the OS user that runs it (initdb's default superuser).
func defaultLocalConninfo(raw Raw) string {
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
