package conninfo

import (
	"testing"

	"github.com/stretchr/testify/require"
)

// requireNoSecret fails if out holds secret or any part of it of three
// characters or more: a password must not reach the log even partly.
func requireNoSecret(t *testing.T, out, secret, in string) {
	t.Helper()
	if len(secret) < 3 {
		require.NotContains(t, out, secret, "in: %s", in)
		return
	}
	for n := 3; n <= len(secret); n++ {
		for i := 0; i+n <= len(secret); i++ {
			require.NotContains(t, out, secret[i:i+n], "in: %s\nout: %s", in, out)
		}
	}
}

func TestMaskPasswordTable(t *testing.T) {
	for _, tc := range []struct {
		name    string
		in      string
		want    string   // exact output
		secrets []string // must not show, not even partly
		keep    []string // must still show
	}{
		// URIs.
		{
			name:    "uri password with @",
			in:      "postgresql://user:p@ss@host:5432/db",
			want:    "postgresql://user:********@host:5432/db",
			secrets: []string{"p@ss"},
			keep:    []string{"user", "host:5432", "/db"},
		},
		{
			name:    "uri password with two @",
			in:      "postgres://u:a@b@c@h/db?sslmode=disable",
			want:    "postgres://u:********@h/db?sslmode=disable",
			secrets: []string{"a@b@c"},
			keep:    []string{"@h/db", "sslmode=disable"},
		},
		{
			name:    "uri percent-encoded password",
			in:      "postgresql://rep:p%40ss%2Fw0rd%20x@db.example:5433/postgres?sslmode=require",
			want:    "postgresql://rep:********@db.example:5433/postgres?sslmode=require",
			secrets: []string{"p%40ss%2Fw0rd%20x", "p@ss/w0rd x"},
			keep:    []string{"rep", "db.example:5433", "postgres?sslmode=require"},
		},
		{
			name:    "uri password in query first",
			in:      "postgresql://rep@db.example/postgres?password=qu3ryPW&sslmode=require",
			want:    "postgresql://rep@db.example/postgres?password=********&sslmode=require",
			secrets: []string{"qu3ryPW"},
			keep:    []string{"rep@db.example", "sslmode=require"},
		},
		{
			name:    "uri password in query later",
			in:      "postgresql://rep@db.example:5433/postgres?sslmode=require&password=qu3ryPW&application_name=x",
			want:    "postgresql://rep@db.example:5433/postgres?sslmode=require&password=********&application_name=x",
			secrets: []string{"qu3ryPW"},
			keep:    []string{"rep@db.example:5433", "sslmode=require", "application_name=x"},
		},
		{
			name:    "uri password in query last",
			in:      "postgresql://db.example/postgres?sslmode=require&password=qu3ryPW",
			want:    "postgresql://db.example/postgres?sslmode=require&password=********",
			secrets: []string{"qu3ryPW"},
		},
		{
			name:    "uri sslpassword in query",
			in:      "postgresql://db.example/postgres?sslpassword=k3yphr4se&sslmode=verify-full",
			want:    "postgresql://db.example/postgres?sslpassword=********&sslmode=verify-full",
			secrets: []string{"k3yphr4se"},
		},
		{
			name:    "uri percent-encoded query key",
			in:      "postgresql://db.example/postgres?pass%77ord=qu3ryPW&sslmode=require",
			want:    "postgresql://db.example/postgres?pass%77ord=********&sslmode=require",
			secrets: []string{"qu3ryPW"},
		},
		{
			name:    "uri query password with @ and no path",
			in:      "postgresql://db.example?password=a@b@c9&sslmode=require",
			want:    "postgresql://db.example?password=********&sslmode=require",
			secrets: []string{"a@b@c9"},
		},
		{
			// pgx fails at "cr3t", still part of the password.
			name:    "uri query password with &",
			in:      "postgresql://db.example/postgres?password=qz&cr3t&sslmode=require",
			want:    "postgresql://db.example/postgres?password=********&********&sslmode=require",
			secrets: []string{"cr3t"},
		},
		{
			name: "uri user without password",
			in:   "postgresql://user@host/db",
			want: "postgresql://user@host/db",
		},
		{
			name: "uri user without password, port and query",
			in:   "postgresql://user@host:5432/db?sslmode=disable",
			want: "postgresql://user@host:5432/db?sslmode=disable",
		},
		{
			name: "uri without user",
			in:   "postgresql://host:5432/db?application_name=a@b",
			want: "postgresql://host:5432/db?application_name=a@b",
		},
		{
			name: "uri @ in a query value after the path",
			in:   "postgresql://u:s3cr3tPW@h/db?application_name=a@b",
			want: "postgresql://u:********@h/db?application_name=a@b",
		},
		{
			name:    "uri multi-host",
			in:      "postgresql://u:pw1234@h1:5432,h2:5433/db",
			want:    "postgresql://u:********@h1:5432,h2:5433/db",
			secrets: []string{"pw1234"},
			keep:    []string{"h1:5432,h2:5433/db"},
		},
		{
			name:    "uri multi-host, password with @",
			in:      "postgresql://u:p@w1234@h1:5432,h2:5433/db",
			want:    "postgresql://u:********@h1:5432,h2:5433/db",
			secrets: []string{"p@w1234"},
		},
		{
			name:    "uri IPv6 host",
			in:      "postgresql://u:pw1234@[::1]:5432/db",
			want:    "postgresql://u:********@[::1]:5432/db",
			secrets: []string{"pw1234"},
		},
		{
			name:    "uri password with unencoded slash",
			in:      "postgresql://u:pa/ss99@h/db",
			want:    "postgresql://u:********@h/db",
			secrets: []string{"pa/ss99"},
		},
		{
			name:    "uri password with colon behind a user with @",
			in:      "postgres://a@u:sec:ret@h/db",
			want:    "postgres://a@u:********@h/db",
			secrets: []string{"sec:ret"},
		},
		{
			name:    "uri upper-case scheme",
			in:      "POSTGRESQL://u:s3cr3tPW@h/db",
			want:    "POSTGRESQL://u:********@h/db",
			secrets: []string{"s3cr3tPW"},
		},
		{
			name:    "uri with blank in the password",
			in:      "postgresql://u:qz cr3t@h/db",
			want:    "postgresql://u:********@h/db",
			secrets: []string{"qz cr3t"},
		},
		{
			name:    "uri in an error text",
			in:      "cannot parse `postgresql://u:p@ss w0rd@h:bad/db`: invalid port",
			want:    "cannot parse `postgresql://u:********@h:bad/db`: invalid port",
			secrets: []string{"p@ss w0rd"},
		},

		// key=value.
		{
			name:    "kv plain",
			in:      "host=h password=s3cr3t user=u",
			want:    "host=h password=******** user=u",
			secrets: []string{"s3cr3t"},
		},
		{
			name:    "kv blanks around =",
			in:      "host=h password = s3cr3t user=u",
			want:    "host=h password = ******** user=u",
			secrets: []string{"s3cr3t"},
		},
		{
			name:    "kv upper-case key",
			in:      "host=h PASSWORD=s3cr3t user=u",
			want:    "host=h PASSWORD=******** user=u",
			secrets: []string{"s3cr3t"},
		},
		{
			name:    "kv quoted with blank",
			in:      "host=h password='qz cr3t' user=u",
			want:    "host=h password=******** user=u",
			secrets: []string{"qz cr3t"},
		},
		{
			name:    "kv quoted with escaped quote",
			in:      `host=h password='it\'s s3cret' user=u`,
			want:    "host=h password=******** user=u",
			secrets: []string{`it\'s s3cret`, "it's s3cret"},
		},
		{
			name:    "kv quoted with escaped backslash before the closing quote",
			in:      `host=h password='s3cr\\' user=u`,
			want:    "host=h password=******** user=u",
			secrets: []string{`s3cr\\`},
		},
		{
			name:    "kv unquoted with escaped blank",
			in:      `host=h password=s3\ cr3t user=u`,
			want:    "host=h password=******** user=u",
			secrets: []string{`s3\ cr3t`},
		},
		{
			name:    "kv unquoted with escaped quote",
			in:      `host=h password=it\'s\ s3cret user=u`,
			want:    "host=h password=******** user=u",
			secrets: []string{`it\'s\ s3cret`},
		},
		{
			name:    "kv unterminated quote",
			in:      "host=h user=u password='unterm1nated",
			want:    "host=h user=u password=********",
			secrets: []string{"unterm1nated"},
		},
		{
			name:    "kv unterminated quote with blank runs to the end",
			in:      "host=h password='qz cr3t port=5432",
			want:    "host=h password=********",
			secrets: []string{"qz cr3t"},
		},
		{
			name:    "kv sslpassword",
			in:      "host=h sslkey=/k sslpassword=k3yphr4se user=u",
			want:    "host=h sslkey=/k sslpassword=******** user=u",
			secrets: []string{"k3yphr4se"},
		},
		{
			name: "kv empty password last",
			in:   "host=h user=u password=",
			want: "host=h user=u password=",
		},
		{
			name: "kv empty quoted password",
			in:   "host=h password='' user=u",
			want: "host=h password=******** user=u",
		},
		{
			// libpq skips the blanks after '=': the password is "host=h".
			name: "kv password= followed by a blank",
			in:   "password= host=h user=u",
			want: "password= ******** user=u",
		},
		{
			name:    "kv password first",
			in:      "password=s3cr3t host=h port=5432",
			want:    "password=******** host=h port=5432",
			secrets: []string{"s3cr3t"},
		},
		{
			name:    "kv password last",
			in:      "host=h port=5432 password=s3cr3t",
			want:    "host=h port=5432 password=********",
			secrets: []string{"s3cr3t"},
		},
		{
			name:    "kv two passwords",
			in:      "password=f1rstpw host=h sslpassword='s3cond pw' user=u",
			want:    "password=******** host=h sslpassword=******** user=u",
			secrets: []string{"f1rstpw", "s3cond pw"},
		},
		{
			name: "kv key ending in password",
			in:   "host=h xpassword=1 user=u",
			want: "host=h xpassword=******** user=u",
		},
		{
			name:    "kv password= inside another value",
			in:      "host=h application_name=password=xyz1 user=u",
			want:    "host=h application_name=password=******** user=u",
			secrets: []string{"xyz1"},
		},
		{
			name:    "kv password= inside a quoted value",
			in:      "host=h application_name='a password=b' password='c3 d4x' user=u",
			secrets: []string{"c3 d4x"},
			keep:    []string{"host=h", "user=u"},
		},
		{
			// Invalid (the blank ends the value), but what follows is
			// still the password the user meant.
			name:    "kv unquoted blank in the password",
			in:      "host=h password=qz cr3t user=u",
			want:    "host=h password=******** ******** user=u",
			secrets: []string{"cr3t"},
		},
		{
			name:    "kv unquoted blank in the password, last",
			in:      "host=h user=u password=qz cr3t",
			want:    "host=h user=u password=******** ********",
			secrets: []string{"cr3t"},
		},
		{
			name:    "kv quote inside an unquoted password",
			in:      "host=h password=ab'c d3f' user=u",
			want:    "host=h password=******** ******** user=u",
			secrets: []string{"ab'c", "d3f'"},
		},
		{
			name:    "kv backquote and colon in an unquoted password",
			in:      "host=h password=s3c`:r3t user=u",
			want:    "host=h password=******** user=u",
			secrets: []string{"s3c`:r3t"},
		},
		{
			name: "kv without password",
			in:   "host=h port=5432 user=u dbname=d sslmode=disable",
			want: "host=h port=5432 user=u dbname=d sslmode=disable",
		},

		// Error texts.
		{
			name:    "pgx parse error",
			in:      "cannot parse `host=x password=s3cr3t`: invalid port",
			want:    "cannot parse `host=x password=********`: invalid port",
			secrets: []string{"s3cr3t"},
		},
		{
			name:    "pgx parse error, unterminated quote",
			in:      "cannot parse `host=x password='qz cr3t`: unterminated quoted string in connection info string",
			want:    "cannot parse `host=x password=********`: unterminated quoted string in connection info string",
			secrets: []string{"qz cr3t"},
		},
		{
			name:    "pgx parse error, unquoted blank",
			in:      "cannot parse `host=x password=qz cr3t port=bad`: invalid port",
			want:    "cannot parse `host=x password=******** ******** port=bad`: invalid port",
			secrets: []string{"cr3t"},
		},
		{
			// pgx's own masking stops at the escaped quote.
			name:    "pgx parse error, pgx's half-masked password",
			in:      "cannot parse `host=x password=xxxxx s3cret' port=bad`: invalid port",
			want:    "cannot parse `host=x password=******** ******** port=bad`: invalid port",
			secrets: []string{"s3cret"},
		},
		{
			name: "pgx connect error without password",
			in:   "failed to connect to `host=h user=u database=d`: h:5432 (h): failed SASL auth: FATAL: password authentication failed for user \"u\" (SQLSTATE 28P01)",
			want: "failed to connect to `host=h user=u database=d`: h:5432 (h): failed SASL auth: FATAL: password authentication failed for user \"u\" (SQLSTATE 28P01)",
		},
		{
			name:    "connect error quoting a password",
			in:      "failed to connect to `host=h user=u password=s3cr3t database=d`: dial error (dial tcp: connection refused)",
			want:    "failed to connect to `host=h user=u password=******** database=d`: dial error (dial tcp: connection refused)",
			secrets: []string{"s3cr3t"},
		},
		{
			name:    "pgx quoting a stray word of a conninfo",
			in:      `failed to parse as keyword/value (missing "=" after "cr3t" in connection info string)`,
			want:    `failed to parse as keyword/value (missing "=" after "********" in connection info string)`,
			secrets: []string{"cr3t"},
		},
		{
			name:    "pgx quoting a stray word of a URI query",
			in:      `failed to parse as URL (missing key/value separator "=" in URI query parameter: "cr3t")`,
			want:    `failed to parse as URL (missing key/value separator "=" in URI query parameter: "********")`,
			secrets: []string{"cr3t"},
		},
		{
			name:    "server text after a non-conninfo prefix",
			in:      "server said: password=s3cr3t   is wrong",
			want:    "server said: password=********   is wrong",
			secrets: []string{"s3cr3t"},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			out := MaskPassword(tc.in)
			if tc.want != "" {
				require.Equal(t, tc.want, out, tc.in)
			}
			for _, s := range tc.secrets {
				requireNoSecret(t, out, s, tc.in)
			}
			for _, k := range tc.keep {
				require.Contains(t, out, k, tc.in)
			}
			require.Equal(t, out, MaskPassword(out), "masking is idempotent")
		})
	}
}
