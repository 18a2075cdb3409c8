package cluster

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"time"
)

// PgUpgrade runs pg_upgrade (same version, as an operator's major upgrade
// would) from n's data directory into a new one made like it, with n's
// configuration files. On success the new directory becomes n's; on failure
// it is removed, and the output includes pg_upgrade's own logs. n must be
// stopped.
func (n *Node) PgUpgrade() (string, error) {
	bin, err := pgBinDir()
	if err != nil {
		return "", err
	}
	newDir := n.DataDir + "-upgraded"
	if err := os.RemoveAll(newDir); err != nil {
		return "", err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	if out, err := runPG(ctx, n.c.Dir, "initdb", append([]string{"-D", newDir}, initdbArgs...)...); err != nil {
		return out, err
	}
	oldPort, err := freePort()
	if err != nil {
		return "", err
	}
	newPort, err := freePort()
	if err != nil {
		return "", err
	}
	out, err := runPG(ctx, n.c.Dir, "pg_upgrade", "-b", bin, "-B", bin, "-d", n.DataDir, "-D", newDir,
		"-p", strconv.Itoa(oldPort), "-P", strconv.Itoa(newPort), "-s", n.SockDir, "-U", "postgres")
	if err != nil {
		logs, _ := filepath.Glob(filepath.Join(newDir, "pg_upgrade_output.d", "*", "log", "*.log"))
		for _, l := range logs {
			data, _ := os.ReadFile(l)
			out += fmt.Sprintf("\n--- %s ---\n%s", filepath.Base(l), data)
		}
		os.RemoveAll(newDir)
		return out, err
	}
	for _, f := range []string{"postgresql.conf", "pg_hba.conf"} {
		data, err := os.ReadFile(filepath.Join(n.DataDir, f))
		if err != nil {
			return out, err
		}
		if err := os.WriteFile(filepath.Join(newDir, f), data, 0o600); err != nil {
			return out, err
		}
		if err := chownPG(filepath.Join(newDir, f)); err != nil {
			return out, err
		}
	}
	n.DataDir = newDir
	return out, n.writeConf()
}
