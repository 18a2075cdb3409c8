package action

// Files the keeper keeps in the data directory. pg_basebackup and pg_rewind
// copy every file there, so each one says which node wrote it, and a node
// never acts on what its partner saved about itself.

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"

	"github.com/pg-keeper/pg_keeper/keeper/internal/durable"
)

// NodeTag names this node's own data directory: its host, its port and the
// inode of the directory. A copy made by pg_basebackup is a new directory;
// a copy by pg_rewind brings the partner's tag along.
func NodeTag(hostname string, port int, dataDir string) string {
	var ino uint64
	if fi, err := os.Stat(dataDir); err == nil {
		if st, ok := fi.Sys().(*syscall.Stat_t); ok {
			ino = st.Ino
		}
	}
	return fmt.Sprintf("%s:%d:%d", hostname, port, ino)
}

// SavedSyncFile remembers, in the data directory, the
// synchronous_standby_names that switchAsync cleared, so that restoreSync
// can put it back even after the master restarted. Its first line is
// savedSyncHeader and the writer's NodeTag.
const (
	SavedSyncFile   = "pg_keeper.synchronous_standby_names"
	savedSyncHeader = "# pg_keeper: synchronous_standby_names before the switch to asynchronous, saved by node "
)

func SaveSync(dataDir, tag, names string) error {
	return durable.WriteFile(filepath.Join(dataDir, SavedSyncFile), savedSyncHeader+tag+"\n"+names+"\n")
}

// readSavedSync returns the saved value, whether a file is there at all,
// and whether this node wrote it.
func readSavedSync(dataDir, tag string) (names string, found, own bool, err error) {
	b, err := os.ReadFile(filepath.Join(dataDir, SavedSyncFile))
	if errors.Is(err, os.ErrNotExist) {
		return "", false, false, nil
	} else if err != nil {
		return "", false, false, err
	}
	header, value, _ := strings.Cut(string(b), "\n")
	own = header == savedSyncHeader+tag
	return strings.TrimSpace(value), true, own, nil
}

// savedAsync tells a master that starts whether replication had been
// switched to asynchronous before: by this node (its own saved file), or
// by its partner, whose saved file and empty value in postgresql.auto.conf came
// along with a copy of its data directory.
func SavedAsync(dataDir, tag string) (bool, error) {
	_, found, own, err := readSavedSync(dataDir, tag)
	if err != nil || !found {
		return false, err
	}
	if own {
		return true, nil
	}
	return autoConfClearsSync(dataDir)
}

var autoConfSyncEmpty = regexp.MustCompile(`^\s*synchronous_standby_names\s*=\s*''\s*(#.*)?$`)

// autoConfClearsSync: postgresql.auto.conf sets synchronous_standby_names
// to the empty string (ALTER SYSTEM writes one line per setting).
func autoConfClearsSync(dataDir string) (bool, error) {
	f, err := os.Open(filepath.Join(dataDir, "postgresql.auto.conf"))
	if errors.Is(err, os.ErrNotExist) {
		return false, nil
	} else if err != nil {
		return false, err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if autoConfSyncEmpty.MatchString(sc.Text()) {
			return true, nil
		}
	}
	return false, sc.Err()
}
