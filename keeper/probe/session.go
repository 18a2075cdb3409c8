package probe

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/pg-keeper/pg_keeper/keeper/conninfo"
)

// SessionMaxAge is how long a kept session serves before a fresh one
// replaces it: once a minute the heartbeat tests the whole way in again
// (authentication, a free connection slot), and a partner
// that cannot say it is stopping (pg_keeper.server_state) waits that long
// at most in a smart shutdown.
const SessionMaxAge = time.Minute

// Session is one connection kept open from heartbeat to heartbeat: a fresh
// session each time costs the server a fork and an authentication, which at
// sub-second intervals is most of what the keeper costs. It is used by one
// heartbeat at a time (it is locked meanwhile); any error closes it, and
// the next use connects anew.
type Session struct {
	mu     sync.Mutex
	conn   *pgx.Conn
	cfg    *pgx.ConnConfig // the setting it was opened with (a reload makes a new one)
	opened time.Time
	used   time.Time // when a heartbeat last ran on it
	// confLoaded is when the partner had loaded its configuration when the
	// session was first used (pg_conf_load_time()).
	confLoaded time.Time
}

// reloaded tells whether the partner has loaded its configuration files
// since the session's first heartbeat. It runs within run, locked; a nil
// Session (a fresh session each time) has nothing to compare.
func (s *Session) reloaded(at time.Time) bool {
	if s == nil {
		return false
	}
	if s.confLoaded.IsZero() {
		s.confLoaded = at
	}
	return !at.Equal(s.confLoaded)
}

// connectFunc opens a session.
type connectFunc func(context.Context, *pgx.ConnConfig) (*pgx.Conn, error)

// get is the open session for cfg, or a fresh one; reused says which. A
// session opened with another setting, or too old, is closed first.
func (s *Session) get(ctx context.Context, cfg *pgx.ConnConfig, connect connectFunc) (conn *pgx.Conn, reused bool, err error) {
	if s.conn != nil && (s.cfg != cfg || time.Since(s.opened) > SessionMaxAge || s.conn.IsClosed()) {
		s.closeLocked()
	}
	if s.conn != nil {
		return s.conn, true, nil
	}
	conn, err = connect(ctx, cfg)
	if err != nil {
		return nil, false, err
	}
	s.conn, s.cfg, s.opened, s.confLoaded = conn, cfg, time.Now(), time.Time{}
	return conn, false, nil
}

// Close ends the session, if one is open, once the heartbeat that uses it
// (if any) is done: the caller cancels that first.
func (s *Session) Close() {
	if s == nil {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.closeLocked()
}

// CloseIdle ends the session if no heartbeat has run on it for idle: one
// that no heartbeat uses any more (the partner setting was cleared, a
// standby's local check ran once) would hold a smart shutdown up for ever.
// A session in use is left to its heartbeat.
func (s *Session) CloseIdle(idle time.Duration) {
	if !s.mu.TryLock() {
		return
	}
	defer s.mu.Unlock()
	if s.conn != nil && time.Since(s.used) >= idle {
		s.closeLocked()
	}
}

func (s *Session) closeLocked() {
	if s.conn != nil {
		conninfo.Close(s.conn)
		s.conn = nil
	}
}

// run runs q on the kept session, or a fresh one. A kept session that fails
// for any reason but the deadline is closed and q runs once more on a fresh
// one within what is left of it: the partner restarted, or the session was
// terminated, which says nothing of the partner a fresh session would not.
// Any error closes the session; keep false closes it after q too. A nil
// Session is a fresh session for this one use.
func (s *Session) run(ctx context.Context, cfg *pgx.ConnConfig, connect connectFunc, q func(*pgx.Conn) (keep bool, err error)) error {
	if s == nil {
		s = &Session{}
		defer s.Close()
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	for attempt := 0; ; attempt++ {
		conn, reused, err := s.get(ctx, cfg, connect)
		if err != nil {
			return err
		}
		keep, err := q(conn)
		s.used = time.Now()
		if err == nil && keep {
			return nil
		}
		s.closeLocked()
		if err == nil || !reused || attempt > 0 || ctx.Err() != nil {
			return err
		}
	}
}

// ServerStopping tells whether the server of dataDir is shutting down, as
// its postmaster.pid says (line 8, as pg_ctl reads it): a session kept
// open on it would make a smart shutdown wait.
func ServerStopping(dataDir string) bool {
	b, err := os.ReadFile(filepath.Join(dataDir, "postmaster.pid"))
	if err != nil {
		return false
	}
	lines := strings.Split(string(b), "\n")
	return len(lines) >= 8 && strings.TrimSpace(lines[7]) == "stopping"
}
