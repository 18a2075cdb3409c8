package conninfo

import (
	"math/rand"
	"net/url"
	"strings"
	"testing"
	"unicode"

	"github.com/pg-keeper/pg_keeper/keeper/internal/testenv"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"
)

// pgx's parse errors quote the ci with its own, weaker masking; what
// reaches the log must still hold no part of the password.
func TestMaskPasswordPgxParseErrors(t *testing.T) {
	testenv.CleanEnv(t)
	for _, tc := range []struct{ ci, secret string }{
		{"host=x port=bad password=s3cr3t", "s3cr3t"},
		{`host=x password='it\'s s3cret' port=bad`, "s3cret"},
		{`host=x password=it\'s\ s3cret port=bad`, "s3cret"},
		{`host=x port=bad password=qz\ cr3t`, "cr3t"},
		{"host=x password='qz cr3t", "qz cr3t"},
		{"host=x password=qz cr3t", "cr3t"},
		{"host=x sslpassword=k3yphr4se sslmode=bogus", "k3yphr4se"},
		{"host=x password=qz cr3t user=u", "cr3t"},
		{"postgresql://h/db?password=qz&cr3t&sslmode=require", "cr3t"},
		{"postgresql://u:p@ss99@h:bad/db", "p@ss99"},
		{"postgresql://u:s3cr3t@h:bad/db", "s3cr3t"},
		{"postgresql://u@h/db?password=s3cr3t&port=bad", "s3cr3t"},
		{"postgresql://u@h/db?sslmode=bogus&password=s3cr3t", "s3cr3t"},
	} {
		_, err := pgx.ParseConfig(tc.ci)
		require.Error(t, err, tc.ci)
		requireNoSecret(t, MaskPassword(err.Error()), tc.secret, tc.ci)
		requireNoSecret(t, ErrorText(err, nil), tc.secret, tc.ci)
		// What the keeper logs of it: the setting's error.
		reason := ParseSetting("pg_keeper.partner_conninfo", tc.ci, "").Err.Error()
		requireNoSecret(t, reason, tc.secret, tc.ci)
		require.True(t, strings.HasSuffix(reason, ")"), reason)
	}
}

// Random passwords, written as libpq wants them, in random places of a
// ci and of error texts: no upper-case letter (only passwords have
// them) may survive.
func TestMaskPasswordRandom(t *testing.T) {
	testenv.CleanEnv(t)
	r := rand.New(rand.NewSource(1))
	password := func() string {
		const specials = " \t@/:'\\?&=%#`\"$"
		var b strings.Builder
		for n := 1 + r.Intn(10); b.Len() < n; {
			if r.Intn(5) < 2 || b.Len() == n-1 {
				b.WriteByte(byte('A' + r.Intn(26)))
			} else {
				b.WriteByte(specials[r.Intn(len(specials))])
			}
		}
		return b.String()
	}
	requireNoUpper := func(out, in string) {
		t.Helper()
		require.False(t, strings.ContainsFunc(out, unicode.IsUpper), "in: %q\nout: %q", in, out)
	}
	others := []string{"host=h1", "port=5432", "user=u", "dbname=d", "sslmode=disable"}
	for range 3000 {
		pw := password()
		value := "'" + strings.NewReplacer(`\`, `\\`, `'`, `\'`).Replace(pw) + "'"
		if r.Intn(2) == 0 {
			value = strings.NewReplacer(`\`, `\\`, `'`, `\'`, " ", `\ `, "\t", "\\\t").Replace(pw)
		}
		kv := []string{"password", "sslpassword", "password "}[r.Intn(3)] + []string{"=", " = ", "= "}[r.Intn(3)] + value
		parts := append([]string{}, others[:r.Intn(len(others)+1)]...)
		i := r.Intn(len(parts) + 1)
		ci := strings.Join(append(parts[:i], append([]string{kv}, parts[i:]...)...), " ")
		cfg, err := pgx.ParseConfig(ci)
		require.NoError(t, err, ci)
		if !strings.HasPrefix(kv, "ssl") {
			require.Equal(t, pw, cfg.Password, ci)
		}
		requireNoUpper(MaskPassword(ci), ci)
		requireNoUpper(MaskPassword("server said: "+ci), ci)
		if !strings.Contains(ci, "`:") { // that ends pgx's quote
			requireNoUpper(MaskPassword("cannot parse `"+ci+"`: invalid port"), ci)
		}
		_, err = pgx.ParseConfig(ci + " port=bad")
		require.Error(t, err)
		requireNoUpper(ParseSetting("pg_keeper.partner_conninfo", ci+" port=bad", "").Err.Error(), ci)

		userinfo := "u:" + strings.NewReplacer("@", "%40", ":", "%3A").Replace(url.PathEscape(pw))
		if r.Intn(2) == 0 { // unencoded, as far as libpq lets it be
			userinfo = "u:" + strings.Map(func(c rune) rune {
				if unicode.IsUpper(c) || strings.ContainsRune("@:$", c) {
					return c
				}
				return 'q'
			}, pw)
		}
		hosts := []string{"h1", "h1:5432", "h1:5432,h2:5433", "[::1]:5432"}[r.Intn(4)]
		rest := []string{"", "/", "/db", "/db?sslmode=disable", "?sslmode=disable", "/db?application_name=a@b",
			"/db?sslmode=disable&password=" + url.QueryEscape(pw) + "&connect_timeout=5"}[r.Intn(7)]
		uri := []string{"postgresql://", "postgres://"}[r.Intn(2)] + userinfo + "@" + hosts + rest
		for _, text := range []string{uri, "cannot parse `" + uri + "`: invalid port", "dial " + uri + " failed"} {
			out := MaskPassword(text)
			requireNoUpper(out, text)
			require.Contains(t, out, "@"+hosts, text)
		}
	}
}
