package conninfo

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
)

func Close(conn *pgx.Conn) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	_ = conn.Close(ctx)
}

// ErrorText is err as one log-safe line.
func ErrorText(err error, cfg *pgx.ConnConfig) string {
	s := MaskPassword(err.Error())
	if cfg != nil && len(cfg.Password) >= 4 {
		s = strings.ReplaceAll(s, cfg.Password, "********")
	}
	return dedupeAttempts(strings.Join(strings.Fields(s), " "))
}

// dedupeAttempts shortens "...: X X" to "...: X". With sslmode=prefer (the
// default, as in libpq) pgx dials once with TLS and once without, and a
// refused connection then reports the same error twice.
func dedupeAttempts(s string) string {
	i := strings.Index(s, "`: ")
	if i < 0 {
		return s
	}
	head, rest := s[:i+3], s[i+3:]
	if n := len(rest); n%2 == 1 && rest[n/2] == ' ' && rest[:n/2] == rest[n/2+1:] {
		return head + rest[:n/2]
	}
	return s
}

func ConnectLocal(ctx context.Context, local *pgx.ConnConfig) (*pgx.Conn, error) {
	if local == nil {
		return nil, errors.New("pg_keeper.my_conninfo is unusable")
	}
	conn, err := pgx.ConnectConfig(ctx, local)
	if err != nil {
		return nil, fmt.Errorf("could not connect to this server (pg_keeper.my_conninfo): %s", ErrorText(err, local))
	}
	return conn, nil
}
