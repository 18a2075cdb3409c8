package conninfo

import (
	"errors"
	"fmt"
	"strings"

	"github.com/jackc/pgx/v5"
)

// Setting is one connection setting, parsed once: the text as set (a
// password included, so it is never logged), the pgx configuration made of
// it, and why it cannot be used. Display is what may be shown of it.
type Setting struct {
	Text   string
	Config *pgx.ConnConfig // nil when not set or unusable
	Err    error           // why it is unusable; names the setting, masks passwords
}

// ParseSetting parses the connection setting name (a GUC) as set to text;
// home is the OS user's home, where libpq finds ~/.pgpass.
func ParseSetting(name, text, home string) Setting {
	s := Setting{Text: text}
	if !s.Set() {
		return s
	}
	cfg, err := Config(WithPassfile(text, home))
	if err != nil {
		s.Err = fmt.Errorf("%s is invalid: %s", name, parseErrorReason(err, text))
		return s
	}
	s.Config = cfg
	return s
}

// Set: the setting is not empty.
func (s Setting) Set() bool { return strings.TrimSpace(s.Text) != "" }

// Usable: it parsed.
func (s Setting) Usable() bool { return s.Config != nil }

// Display is the text with any password masked.
func (s Setting) Display() string { return MaskPassword(s.Text) }

// ErrNotSet is the error of a connection setting that must be set.
func ErrNotSet(name, what string) error {
	return errors.New(name + " is not set: set it to a connection string that " + what)
}

// parseErrorReason is why pgx could not parse a conninfo, without pgx's copy
// of the conninfo: pgx masks passwords its own way, which leaves part of an
// unterminated quoted one in the text.
func parseErrorReason(err error, text string) string {
	s := err.Error()
	if i := strings.LastIndex(s, "`: "); strings.HasPrefix(s, "cannot parse `") && i >= 0 {
		s = s[i+3:]
	}
	return fmt.Sprintf("%s (in %q)", MaskPassword(s), MaskPassword(text))
}
