package postgres

import (
	"fmt"
	"strings"
	"unicode/utf8"
)

// Values reach a column through a cast and then the column's own
// assignment. For character and bit types an explicit cast with a length
// cuts a value ('abcde-1'::varchar(5) is 'abcde') where an assignment
// fails, so the sink casts to the type without its modifier and lets the
// INSERT's assignment apply it: a value that does not fit is refused,
// never altered. Numeric scale and timestamp precision round the same way
// under a cast and an assignment, so keys of those types are compared as
// the declared type, as the row was stored.

// Type OIDs of the character and bit types, and of their arrays, whose
// explicit casts cut values.
const (
	oidBPChar       = 1042
	oidVarchar      = 1043
	oidBit          = 1560
	oidVarbit       = 1562
	oidBPCharArray  = 1014
	oidVarcharArray = 1015
	oidBitArray     = 1561
	oidVarbitArray  = 1563
)

// castTypes returns what a search key of column c (base type base, with
// modifier typmod after domains, spelled typ) is compared as, and the
// length limit the sink checks before sending a value.
func castTypes(c *column, base uint32, typmod int32, typ string) (keyType string, limit lengthLimit) {
	switch base {
	case oidBPChar, oidVarchar, oidBit, oidVarbit, oidBPCharArray, oidVarcharArray, oidBitArray, oidVarbitArray:
		keyType = c.cast
	default:
		keyType = c.typ
	}
	if typmod < 0 {
		return keyType, lengthLimit{}
	}
	switch base {
	case oidVarchar:
		return keyType, lengthLimit{kind: limitVarchar, n: int(typmod) - 4, typ: typ}
	case oidBPChar:
		return keyType, lengthLimit{kind: limitBPChar, n: int(typmod) - 4, typ: typ}
	case oidBit:
		return keyType, lengthLimit{kind: limitBit, n: int(typmod), typ: typ}
	case oidVarbit:
		return keyType, lengthLimit{kind: limitVarbit, n: int(typmod), typ: typ}
	}
	return keyType, lengthLimit{}
}

type limitKind uint8

const (
	noLimit      limitKind = iota
	limitVarchar           // character varying(n): at most n characters
	limitBPChar            // character(n): at most n characters before trailing spaces
	limitBit               // bit(n): exactly n bits
	limitVarbit            // bit varying(n): at most n bits
)

// lengthLimit is the length modifier of a character or bit column, checked
// before a write so that the record that does not fit is the one refused,
// with its reason, rather than the batch. The column's assignment checks
// it again; this check is stricter in one case only: PostgreSQL stores a
// varchar value whose excess characters are all spaces with the spaces cut,
// and Remix does not alter values, so it refuses that value too. (A
// character(n) value's trailing spaces carry no meaning, so there they may
// go.)
type lengthLimit struct {
	kind limitKind
	n    int
	typ  string // the limited type, for messages: character varying(5)
}

// check reports a value that does not fit, in PostgreSQL's words.
func (l lengthLimit) check(text string) error {
	typ := l.typ
	switch l.kind {
	case limitVarchar, limitBPChar:
		if l.kind == limitBPChar {
			text = strings.TrimRight(text, " ")
		}
		if len(text) <= l.n { // bytes bound characters
			return nil
		}
		if n := utf8.RuneCountInString(text); n > l.n {
			return fmt.Errorf("value too long for type %s: %d characters", typ, n)
		}
	case limitBit, limitVarbit:
		bits, ok := bitLength(text)
		switch {
		case !ok: // not a bit string: the column's input function says why
		case l.kind == limitBit && bits != l.n:
			return fmt.Errorf("bit string length %d does not match type %s", bits, typ)
		case l.kind == limitVarbit && bits > l.n:
			return fmt.Errorf("bit string too long for type %s: %d bits", typ, bits)
		}
	}
	return nil
}

// bitLength is the number of bits of a bit string as PostgreSQL reads it:
// binary digits, optionally after a b, or hexadecimal digits after an x.
func bitLength(s string) (int, bool) {
	hex := false
	if s != "" {
		switch s[0] {
		case 'b', 'B':
			s = s[1:]
		case 'x', 'X':
			s, hex = s[1:], true
		}
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == '0' || c == '1':
		case hex && (c >= '2' && c <= '9' || c >= 'a' && c <= 'f' || c >= 'A' && c <= 'F'):
		default:
			return 0, false
		}
	}
	if hex {
		return 4 * len(s), true
	}
	return len(s), true
}
