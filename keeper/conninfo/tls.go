package conninfo

import (
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

// PlainFirst is cfg trying its first host without TLS before with it, as
// sslmode=allow does. Under sslmode=prefer pgx, unlike libpq, does not go on
// in plain text on the connection a server refused TLS on: it opens a
// second one. Against a server without TLS every heartbeat would cost two
// sessions; with this order it costs one, and a server that only takes TLS
// (hostssl) still gets it from the fallback.
//
// A config without that plain twin (sslmode=require, verify-*) is returned
// as it is: it must never be tried without TLS.
func PlainFirst(cfg *pgx.ConnConfig) *pgx.ConnConfig {
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
