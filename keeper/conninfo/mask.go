package conninfo

import (
	"regexp"
	"strings"
)

// MaskPassword hides passwords in a conninfo string or in an error text that
// quotes one: a password must never reach the server log, not even partly.
// Where the text is ambiguous it hides too much rather than too little.
//
// A conninfo here is libpq's key=value form or a URI (postgres[ql]://,
// whatever the case). In an error text pgx quotes a conninfo in backquotes:
// "cannot parse `host=x password=...`: reason"; such a quote is read as a
// conninfo of its own, ending at "`:".
func MaskPassword(s string) string {
	m := masker{s: s, hide: make([]bool, len(s))}
	m.findFrames()
	m.maskURIs()
	m.maskConninfo(0, len(s))
	for _, f := range m.frames {
		m.maskConninfo(f.from, f.to)
	}
	// Any other "password=", as in a server's message: its value alone.
	for _, loc := range passwordKey.FindAllStringIndex(s, -1) {
		if !m.inURI(loc[0]) {
			lim := m.limit(loc[0])
			v := skipConninfoBlanks(s, loc[1], lim)
			m.hideSpan(v, m.valueEnd(v, lim))
		}
	}
	for _, loc := range strayWord.FindAllStringSubmatchIndex(s, -1) {
		m.hideSpan(loc[2], loc[3]) // -1 when that alternative did not match
		m.hideSpan(loc[4], loc[5])
	}
	return m.String()
}

type maskSpan struct{ from, to int }

// masker marks the bytes of s that MaskPassword hides.
type masker struct {
	s      string
	hide   []bool
	frames []maskSpan // the insides of error texts' `...` quotes
	uris   []maskSpan // connection URIs
}

func isConninfoBlank(c byte) bool {
	return c == ' ' || c == '\t' || c == '\n' || c == '\v' || c == '\f' || c == '\r'
}

func skipConninfoBlanks(s string, i, lim int) int {
	for i < lim && isConninfoBlank(s[i]) {
		i++
	}
	return i
}

func isPasswordKeyword(key string) bool {
	return strings.HasSuffix(strings.ToLower(key), "password")
}

func (m *masker) hideSpan(from, to int) {
	for i := from; i < to && i < len(m.hide); i++ {
		m.hide[i] = true
	}
}

// String is s with every run of hidden bytes replaced by one mask.
func (m *masker) String() string {
	var b strings.Builder
	for i := 0; i < len(m.s); i++ {
		if !m.hide[i] {
			b.WriteByte(m.s[i])
		} else if i == 0 || !m.hide[i-1] {
			b.WriteString("********")
		}
	}
	return b.String()
}

// findFrames finds pgx's quotes: a backquote at the start or after a blank
// opens one, "`:" before a blank or the end closes it, as does a backquote
// at the end.
func (m *masker) findFrames() {
	s := m.s
	for i := 0; i < len(s); i++ {
		if s[i] != '`' || (i > 0 && !isConninfoBlank(s[i-1])) {
			continue
		}
		end := len(s)
		for j := i + 1; j < len(s); j++ {
			if s[j] == '`' && (j+1 == len(s) || s[j+1] == ':' && (j+2 == len(s) || isConninfoBlank(s[j+2]))) {
				end = j
				break
			}
		}
		m.frames = append(m.frames, maskSpan{i + 1, end})
		i = end
	}
}

// limit is where a value that starts at i ends at the latest, unless it is
// quoted: the end of its frame, or of s.
func (m *masker) limit(i int) int {
	for _, f := range m.frames {
		if f.from <= i && i <= f.to {
			return f.to
		}
	}
	return len(m.s)
}

func (m *masker) inURI(i int) bool {
	for _, u := range m.uris {
		if u.from <= i && i < u.to {
			return true
		}
	}
	return false
}

// valueEnd is the end of the key=value value that starts at v, read as
// libpq reads it: a quoted value with backslash escapes up to its closing
// quote (an unterminated one up to lim), or an unquoted one with backslash
// escapes up to a blank or lim.
func (m *masker) valueEnd(v, lim int) int {
	s := m.s
	if v >= lim {
		return v
	}
	if s[v] == '\'' {
		for i := v + 1; i < len(s); i++ {
			switch s[i] {
			case '\\':
				i++
			case '\'':
				return i + 1
			}
		}
		return lim
	}
	i := v
	for i < lim && !isConninfoBlank(s[i]) {
		if s[i] == '\\' {
			i++
		}
		i++
	}
	return min(i, len(s))
}

// maskConninfo hides the password values of the key=value conninfo in
// s[from:to]. Prose is not a conninfo: it is left alone unless its first
// word is a key=value pair. Words that are no key=value pair and follow a
// password are hidden too: with a blank in an unquoted password
// (password=se cret) libpq fails at "cret", which is still part of it.
func (m *masker) maskConninfo(from, to int) {
	s := m.s
	i := skipConninfoBlanks(s, from, to)
	if m.inURI(i) {
		return
	}
	afterPassword := false
	for first := true; ; first = false {
		i = skipConninfoBlanks(s, i, to)
		if i >= to {
			return
		}
		k := i
		for i < to && !isConninfoBlank(s[i]) && s[i] != '=' {
			i++
		}
		if e := skipConninfoBlanks(s, i, to); e < to && s[e] == '=' {
			v := skipConninfoBlanks(s, e+1, to)
			afterPassword = isPasswordKeyword(s[k:i])
			i = m.valueEnd(v, to)
			if afterPassword {
				m.hideSpan(v, i)
			}
			continue
		}
		if first {
			return
		}
		if afterPassword {
			m.hideSpan(k, i)
		}
	}
}

// maskURIs finds the connection URIs in s and hides their passwords. A URI
// runs to the end of s if s starts with it, to the end of its frame in an
// error text, else to the next blank.
func (m *masker) maskURIs() {
	s := m.s
	lower := strings.ToLower(s)
	for i := 0; i < len(s); {
		j := strings.Index(lower[i:], "postgres")
		if j < 0 {
			return
		}
		p := i + j
		rest := lower[p+len("postgres"):]
		n := 0
		switch {
		case strings.HasPrefix(rest, "://"):
			n = len("postgres://")
		case strings.HasPrefix(rest, "ql://"):
			n = len("postgresql://")
		default:
			i = p + 1
			continue
		}
		end := len(s)
		if strings.TrimLeft(s[:p], " \t\n\v\f\r") != "" {
			if lim := m.limit(p); lim < len(s) {
				end = lim
			} else if b := strings.IndexAny(s[p:], " \t\n\v\f\r"); b >= 0 {
				end = p + b
			}
		}
		m.uris = append(m.uris, maskSpan{p, end})
		m.maskURI(p+n, end)
		i = max(end, p+n)
	}
}

// maskURI hides the passwords of the URI whose scheme ends at from. Like
// libpq's, the userinfo ends at an '@' before the first '/'; but a password
// may hold '@' (unencoded), so it runs from the first ':' to the last '@'.
func (m *masker) maskURI(from, to int) {
	t := m.s[from:to]
	auth := len(t)
	if i := strings.IndexByte(t, '/'); i >= 0 {
		auth = i
	}
	if at := strings.LastIndexByte(t[:auth], '@'); at >= 0 {
		if c := strings.IndexByte(t[:at], ':'); c >= 0 {
			m.hideSpan(from+c+1, from+at)
		}
	} else if c := strings.IndexByte(t[:auth], ':'); c >= 0 {
		// An unencoded '/' in the password (u:pa/ss@h/db) ends the
		// userinfo early: hide up to an '@' in the path.
		path := t[auth:]
		if q := strings.IndexByte(path, '?'); q >= 0 {
			path = path[:q]
		}
		if at := strings.LastIndexByte(path, '@'); at >= 0 {
			m.hideSpan(from+c+1, from+auth+at)
		}
	}
	// Query values whose (percent-decoded) key ends in "password", and
	// parameters without '=' after one: an '&' in the password split it
	// (?password=se&cret). And whatever follows "password=" even where that
	// is no key.
	lower := strings.ToLower(t)
	afterPassword := false
	for i := 0; i < len(t); i++ {
		v := -1
		if t[i] == '?' || t[i] == '&' {
			pair := t[i+1:]
			if a := strings.IndexByte(pair, '&'); a >= 0 {
				pair = pair[:a]
			}
			eq := strings.IndexByte(pair, '=')
			switch {
			case eq >= 0:
				afterPassword = isPasswordKeyword(strings.TrimSpace(percentDecode(pair[:eq])))
				if afterPassword {
					v = i + 1 + eq + 1
				}
			case afterPassword:
				m.hideSpan(from+i+1, from+i+1+len(pair))
			}
		} else if strings.HasPrefix(lower[i:], "password=") {
			v = i + len("password=")
		}
		if v >= 0 {
			e := len(t)
			if a := strings.IndexByte(t[v:], '&'); a >= 0 {
				e = v + a
			}
			m.hideSpan(from+v, from+e)
		}
	}
}

// percentDecode decodes %XX escapes and leaves malformed ones as they are.
func percentDecode(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '%' && i+2 < len(s) {
			if hi, lo := unhexDigit(s[i+1]), unhexDigit(s[i+2]); hi >= 0 && lo >= 0 {
				b.WriteByte(byte(hi<<4 | lo))
				i += 2
				continue
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

func unhexDigit(c byte) int {
	switch {
	case '0' <= c && c <= '9':
		return int(c - '0')
	case 'a' <= c && c <= 'f':
		return int(c-'a') + 10
	case 'A' <= c && c <= 'F':
		return int(c-'A') + 10
	}
	return -1
}

var (
	// passwordKey is "password" (or any key ending in it: sslpassword) and
	// '=' anywhere in a text, key=value style.
	passwordKey = regexp.MustCompile(`(?i)password[ \t\n\v\f\r]*=`)
	// strayWord is pgx quoting a word of a conninfo that is no key=value
	// pair: with a blank in a password (password=se cret host=h) or an '&'
	// in a URI's (?password=se&cret), that word is part of it.
	strayWord = regexp.MustCompile(`missing "=" after "((?:[^"\\]|\\.)*)"|missing key/value separator "=" in URI query parameter: "([^&]*?)"(?:\)|$)`)
)
