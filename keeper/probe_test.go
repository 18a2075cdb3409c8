package keeper

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/stretchr/testify/require"
)

// closedPort is a 127.0.0.1 port that nothing listens on.
func closedPort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	port := l.Addr().(*net.TCPAddr).Port
	require.NoError(t, l.Close())
	return port
}

// silentServer accepts connections and never answers.
func silentServer(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	var mu sync.Mutex
	var conns []net.Conn
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
		}
	}()
	t.Cleanup(func() {
		_ = l.Close()
		mu.Lock()
		defer mu.Unlock()
		for _, c := range conns {
			_ = c.Close()
		}
	})
	return l.Addr().(*net.TCPAddr).Port
}

func TestProbeRefused(t *testing.T) {
	cleanPGEnv(t)
	for _, sslmode := range []string{"disable", "prefer"} {
		t.Run(sslmode, func(t *testing.T) {
			port := closedPort(t)
			cfg, err := connConfig(fmt.Sprintf("host=127.0.0.1 port=%d user=x dbname=y sslmode=%s password=hunter22", port, sslmode))
			require.NoError(t, err)
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			res := Probe(ctx, cfg)
			require.Equal(t, ProbeResult{
				Class: FailRefused,
				// With sslmode=prefer the error is not doubled.
				Detail: fmt.Sprintf("failed to connect to `user=x database=y`: 127.0.0.1:%d (127.0.0.1): "+
					"dial error: dial tcp 127.0.0.1:%d: connect: connection refused", port, port),
			}, res)
		})
	}
}

func TestProbeTimeout(t *testing.T) {
	cleanPGEnv(t)
	port := silentServer(t)
	cfg, err := connConfig(fmt.Sprintf("host=127.0.0.1 port=%d user=x dbname=y sslmode=disable", port))
	require.NoError(t, err)
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	start := time.Now()
	res := Probe(ctx, cfg)
	elapsed := time.Since(start)
	require.False(t, res.OK)
	require.Equal(t, FailTimeout, res.Class, res.Detail)
	require.Equal(t, fmt.Sprintf("failed to connect to `user=x database=y`: 127.0.0.1:%d (127.0.0.1): "+
		"failed to receive message: timeout: context deadline exceeded", port), res.Detail)
	require.GreaterOrEqual(t, elapsed, 150*time.Millisecond)
	require.Less(t, elapsed, time.Second)
}

func TestReplicationAliveWithoutLocal(t *testing.T) {
	alive, err := ReplicationAlive(context.Background(), nil, MasterMode)
	require.False(t, alive)
	require.EqualError(t, err, "pg_keeper.my_conninfo is unusable")
}

func TestReplicationAliveUnreachable(t *testing.T) {
	cleanPGEnv(t)
	port := closedPort(t)
	cfg, err := connConfig(fmt.Sprintf("host=127.0.0.1 port=%d user=x dbname=y sslmode=disable", port))
	require.NoError(t, err)
	for _, mode := range []Mode{StandbyMode, MasterMode} {
		alive, err := ReplicationAlive(context.Background(), cfg, mode)
		require.False(t, alive)
		require.True(t, errors.Is(err, syscall.ECONNREFUSED), "%v", err)
	}
}

func TestClassify(t *testing.T) {
	expired, cancel := context.WithTimeout(context.Background(), time.Nanosecond)
	defer cancel()
	<-expired.Done()
	bg := context.Background()
	pgErr := func(code string) error { return fmt.Errorf("connect: %w", &pgconn.PgError{Code: code, Message: "m"}) }

	for _, tc := range []struct {
		name string
		ctx  context.Context
		err  error
		want FailureClass
	}{
		{"bad password", bg, pgErr("28P01"), FailAuth},
		{"no pg_hba entry", bg, pgErr("28000"), FailAuth},
		{"no such database", bg, pgErr("3D000"), FailAuth},
		{"no privilege", bg, pgErr("42501"), FailAuth},
		{"starting up", bg, pgErr("57P03"), FailStarting},
		{"admin shutdown", bg, pgErr("57P01"), FailStarting},
		{"crash shutdown", bg, pgErr("57P02"), FailStarting},
		{"other SQL error", bg, pgErr("42P01"), FailOther},
		{"a server's answer counts even after the deadline", expired, pgErr("28P01"), FailAuth},
		{"refused", bg, fmt.Errorf("dial: %w", syscall.ECONNREFUSED), FailRefused},
		{"refused as net.OpError", bg, &net.OpError{Op: "dial", Net: "tcp",
			Err: os.NewSyscallError("connect", syscall.ECONNREFUSED)}, FailRefused},
		{"deadline", bg, fmt.Errorf("read: %w", context.DeadlineExceeded), FailTimeout},
		{"context expired", expired, errors.New("whatever happened"), FailTimeout},
		{"net timeout", bg, &net.DNSError{Err: "i/o timeout", Name: "h", IsTimeout: true}, FailTimeout},
		{"unknown host", bg, fmt.Errorf("lookup: %w", &net.DNSError{Err: "no such host", Name: "nohost", IsNotFound: true}), FailConfig},
		{"bad address", bg, &net.AddrError{Err: "missing port in address", Addr: "h"}, FailConfig},
		{"anything else", bg, errors.New("unexpected EOF"), FailOther},
	} {
		require.Equal(t, tc.want, Classify(tc.ctx, tc.err), tc.name)
	}
}

func TestDedupeAttempts(t *testing.T) {
	const head = "failed to connect to `user=x database=y`: "
	const attempt = "127.0.0.1:5432 (127.0.0.1): dial error: connection refused"
	require.Equal(t, head+attempt, dedupeAttempts(head+attempt+" "+attempt))
	require.Equal(t, head+attempt, dedupeAttempts(head+attempt))
	// Two different attempts stay.
	require.Equal(t, head+"a: refused b: refused", dedupeAttempts(head+"a: refused b: refused"))
	// An even length cannot be one message twice.
	require.Equal(t, head+"ab ab ab", dedupeAttempts(head+"ab ab ab"))
	require.Equal(t, head+"a b", dedupeAttempts(head+"a b"))
	// Without pgx's "`: " nothing is touched.
	require.Equal(t, "x y x y", dedupeAttempts("x y x y"))
	require.Equal(t, "", dedupeAttempts(""))
	require.Equal(t, head, dedupeAttempts(head))
}

func TestErrorText(t *testing.T) {
	cleanPGEnv(t)
	require.Equal(t, "failed to connect to `user=u database=d`: server said: password=******** is wrong",
		errorText(errors.New("failed to connect to `user=u database=d`:\n  server said: password=secret   is wrong"), nil))

	cfg, err := connConfig("host=h user=u password=hunter22")
	require.NoError(t, err)
	require.Equal(t, "auth for ******** failed, ******** again",
		errorText(errors.New("auth for hunter22 failed, hunter22 again"), cfg))

	// A password shorter than 4 characters is too likely to match other text.
	short, err := connConfig("host=h user=u password=abc")
	require.NoError(t, err)
	require.Equal(t, "abc at host", errorText(errors.New("abc at host"), short))

	// Whitespace is folded before the attempts are deduplicated.
	require.Equal(t, "failed `: dial refused", errorText(errors.New("failed `: dial refused\n dial  refused"), nil))
}
