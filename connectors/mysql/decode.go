package mysql

import (
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/go-mysql-org/go-mysql/mysql"
	"golang.org/x/text/encoding"
	"golang.org/x/text/encoding/charmap"
	"golang.org/x/text/encoding/japanese"
	"golang.org/x/text/encoding/korean"
	"golang.org/x/text/encoding/simplifiedchinese"
	"golang.org/x/text/encoding/traditionalchinese"
	"golang.org/x/text/encoding/unicode"

	"github.com/sqlpipe/remix/mixer"
)

// colDec reads one column's values, from the binary log (stream) or from
// a query's text result (snapshot), into Remix values. Both read a value
// the same way:
//
//	integers (unsigned up to 2^64-1), DECIMAL, FLOAT, DOUBLE, YEAR   number, exact
//	BIT(1)                                                           boolean
//	BIT(n)                                                           number (the bits as an unsigned integer)
//	DATE                                                             "2024-01-02"
//	DATETIME, TIMESTAMP                                              RFC 3339 in UTC, with the column's fraction digits
//	TIME                                                             text, as MySQL writes it ("-01:02:03.5", "838:59:59")
//	zero dates ('0000-00-00', '0000-00-00 00:00:00')                 null
//	dates with a zero month or day ('2024-00-15')                     an error: the change is dead-lettered
//	CHAR, VARCHAR, TEXT, ENUM, SET                                   text in UTF-8, from the column's own character set
//	BINARY, VARBINARY, BLOB, spatial types                           base64 text
//	JSON (MySQL's type, MariaDB's alias with its json_valid check)    the JSON value whole (mixer.JSONText)
//
// DATETIME has no time zone: its wall-clock value is read as UTC.
// TIMESTAMP is an instant, read in UTC (every session runs with
// time_zone '+00:00').
type colDec struct {
	name     string
	kind     kind
	width    int // integer width in bytes, to read an unsigned value
	unsigned bool
	bits     int
	charset  string   // of a text column in the binary log ("" for UTF-8)
	values   []string // ENUM and SET members, in order
	pad      int      // BINARY(n): values are padded with zero bytes to n
	fsp      int      // TIME(n): fraction digits, which the binary log may leave out
}

// text decodes a value of a query's text result (sessions use utf8mb4, so
// text arrives in UTF-8 whatever the column's character set).
func (d *colDec) text(b []byte) (any, error) {
	if b == nil {
		return nil, nil
	}
	switch d.kind {
	case kindInt, kindYear:
		return json.Number(string(b)), nil
	case kindDecimal, kindFloat:
		return mixer.NormalizeNumber(string(b))
	case kindBit:
		var u uint64
		for _, c := range b {
			u = u<<8 | uint64(c)
		}
		return d.bitValue(u), nil
	case kindDate:
		return dateValue(string(b))
	case kindDatetime, kindTimestamp:
		return datetimeValue(string(b))
	case kindBinary:
		return base64.StdEncoding.EncodeToString(b), nil
	case kindJSON:
		if len(b) == 0 {
			return mixer.JSONText("null"), nil
		}
		j, err := mixer.ParseJSONText([]byte(strings.Clone(string(b))))
		if err != nil {
			return nil, fmt.Errorf("json column: %w", err)
		}
		return j, nil
	}
	if !utf8.Valid(b) {
		return nil, fmt.Errorf("text that is not valid UTF-8")
	}
	return string(b), nil
}

// stream decodes a value of a binary log row, as go-mysql hands it over
// (integers signed, ENUM and SET as numbers, temporal values as text,
// strings and blobs as the column's bytes).
func (d *colDec) stream(v any) (any, error) {
	switch x := v.(type) {
	case nil:
		return nil, nil
	case int8:
		return d.integer(int64(x)), nil
	case int16:
		return d.integer(int64(x)), nil
	case int32:
		return d.integer(int64(x)), nil
	case int64:
		switch d.kind {
		case kindEnum:
			if x == 0 {
				return "", nil // the empty error value
			}
			if int(x) > len(d.values) {
				return nil, fmt.Errorf("enum index %d of %d members", x, len(d.values))
			}
			return d.values[x-1], nil
		case kindSet:
			var names []string
			for i, m := range d.values {
				if x&(1<<i) != 0 {
					names = append(names, m)
				}
			}
			return strings.Join(names, ","), nil
		case kindBit:
			return d.bitValue(uint64(x)), nil
		}
		return d.integer(x), nil
	case int:
		return json.Number(strconv.Itoa(x)), nil // YEAR
	case float32:
		return floatValue(float64(x), 32)
	case float64:
		return floatValue(x, 64)
	case string:
		switch d.kind {
		case kindDecimal:
			return mixer.NormalizeNumber(x)
		case kindDate:
			return dateValue(x)
		case kindDatetime, kindTimestamp:
			return datetimeValue(x)
		case kindTime:
			return timeValue(x, d.fsp), nil
		}
		return d.bytes([]byte(x))
	case []byte:
		return d.bytes(x)
	}
	return nil, fmt.Errorf("unexpected %T value", v)
}

// integer reads a binary log integer, unsigned by the column's width.
func (d *colDec) integer(i int64) any {
	if !d.unsigned || i >= 0 {
		return json.Number(strconv.FormatInt(i, 10))
	}
	u := uint64(i)
	if d.width < 8 {
		u &= 1<<(8*d.width) - 1
	}
	return json.Number(strconv.FormatUint(u, 10))
}

func (d *colDec) bitValue(u uint64) any {
	if d.bits == 1 {
		return u != 0
	}
	return json.Number(strconv.FormatUint(u, 10))
}

// bytes reads a string or blob value of the binary log: base64 for
// binary columns, JSON whole, text from the column's character set.
func (d *colDec) bytes(b []byte) (any, error) {
	switch d.kind {
	case kindBinary:
		if len(b) < d.pad { // the binary log drops BINARY(n)'s trailing zero bytes
			b = append(append(make([]byte, 0, d.pad), b...), make([]byte, d.pad-len(b))...)
		}
		return base64.StdEncoding.EncodeToString(b), nil
	case kindJSON:
		if len(b) == 0 {
			return mixer.JSONText("null"), nil
		}
		text, err := toUTF8(b, d.charset)
		if err != nil {
			return nil, err
		}
		j, err := mixer.ParseJSONText([]byte(text))
		if err != nil {
			return nil, fmt.Errorf("json column: %w", err)
		}
		return j, nil
	}
	return toUTF8(b, d.charset)
}

func floatValue(f float64, bits int) (any, error) {
	if math.IsNaN(f) || math.IsInf(f, 0) {
		return nil, fmt.Errorf("float %v has no JSON number", f)
	}
	return mixer.NormalizeNumber(strconv.FormatFloat(f, 'g', -1, bits))
}

// dateValue reads a DATE: a zero date is null, a date with a zero month or
// day an error.
func dateValue(s string) (any, error) {
	if s == "0000-00-00" {
		return nil, nil
	}
	if _, err := time.Parse("2006-01-02", s); err != nil {
		return nil, fmt.Errorf("date %q is not a calendar date (a zero month or day?)", s)
	}
	return s, nil
}

// datetimeValue reads a DATETIME or TIMESTAMP in MySQL's form as RFC 3339
// in UTC, keeping the fraction digits it has.
func datetimeValue(s string) (any, error) {
	if strings.HasPrefix(s, "0000-00-00 00:00:00") && strings.Trim(s[19:], ".0") == "" {
		return nil, nil
	}
	if len(s) < 19 || s[10] != ' ' {
		return nil, fmt.Errorf("datetime %q", s)
	}
	if _, err := time.Parse("2006-01-02 15:04:05", s[:19]); err != nil {
		return nil, fmt.Errorf("datetime %q is not a calendar time (a zero month or day?)", s)
	}
	return s[:10] + "T" + s[11:] + "Z", nil
}

// timeValue writes a TIME with the column's fraction digits, as a query
// shows it.
func timeValue(s string, fsp int) string {
	if fsp == 0 {
		return s
	}
	whole, frac, _ := strings.Cut(s, ".")
	if len(frac) < fsp {
		frac += strings.Repeat("0", fsp-len(frac))
	}
	return whole + "." + frac
}

// toUTF8 converts text of a character set to UTF-8, refusing bytes that
// are not text of it.
func toUTF8(b []byte, charset string) (string, error) {
	switch charset {
	case "", "utf8", "utf8mb3", "utf8mb4", "ascii":
		if !utf8.Valid(b) {
			return "", fmt.Errorf("text that is not valid UTF-8")
		}
		return string(b), nil
	case "utf32":
		if len(b)%4 != 0 {
			return "", fmt.Errorf("utf32 text of %d bytes", len(b))
		}
		var sb strings.Builder
		for i := 0; i < len(b); i += 4 {
			r := rune(binary.BigEndian.Uint32(b[i:]))
			if !utf8.ValidRune(r) {
				return "", fmt.Errorf("utf32 text with code point %#x", r)
			}
			sb.WriteRune(r)
		}
		return sb.String(), nil
	}
	enc := charsets[charset]
	if enc == nil {
		return "", fmt.Errorf("character set %s is not one Remix reads", charset)
	}
	out, err := enc.NewDecoder().Bytes(b)
	if err != nil {
		return "", fmt.Errorf("%s text: %w", charset, err)
	}
	return string(out), nil
}

// charsets are the MySQL character sets Remix converts, besides UTF-8.
var charsets = map[string]encoding.Encoding{
	"latin1": charmap.Windows1252, "latin2": charmap.ISO8859_2, "latin5": charmap.ISO8859_9, "latin7": charmap.ISO8859_13,
	"cp1250": charmap.Windows1250, "cp1251": charmap.Windows1251, "cp1256": charmap.Windows1256, "cp1257": charmap.Windows1257,
	"cp850": charmap.CodePage850, "cp852": charmap.CodePage852, "cp866": charmap.CodePage866, "greek": charmap.ISO8859_7,
	"hebrew": charmap.ISO8859_8, "koi8r": charmap.KOI8R, "koi8u": charmap.KOI8U, "macroman": charmap.Macintosh,
	"ucs2": unicode.UTF16(unicode.BigEndian, unicode.IgnoreBOM), "utf16": unicode.UTF16(unicode.BigEndian, unicode.IgnoreBOM),
	"utf16le": unicode.UTF16(unicode.LittleEndian, unicode.IgnoreBOM), "sjis": japanese.ShiftJIS, "cp932": japanese.ShiftJIS,
	"ujis": japanese.EUCJP, "eucjpms": japanese.EUCJP, "gbk": simplifiedchinese.GBK, "gb2312": simplifiedchinese.GBK,
	"gb18030": simplifiedchinese.GB18030, "big5": traditionalchinese.Big5, "euckr": korean.EUCKR,
}

// snapshotDec builds the decoder of a column for query results.
func snapshotDec(c *column) colDec {
	d := colDec{name: c.name, kind: c.kind(), unsigned: c.unsigned, bits: c.bits}
	switch c.dataType {
	case "enum", "set", "time":
		d.kind = kindText
	}
	return d
}

// realType is a table map column's type as the row carries it: ENUM and
// SET are logged as STRING with their real type in the metadata.
func realType(typ byte, meta uint16) byte {
	if typ == mysql.MYSQL_TYPE_STRING && meta >= 256 {
		b0 := byte(meta >> 8)
		if b0&0x30 != 0x30 {
			return b0 | 0x30
		}
		return b0
	}
	return typ
}

// streamDec builds the decoder of a binary log column from its type in the
// table map, its metadata, and (for what the table map does not say:
// MariaDB's JSON, BINARY's length) the table's description.
func streamDec(name string, typ byte, meta uint16, unsigned bool, charset string, enum, set []string, info *column) colDec {
	d := colDec{name: name, unsigned: unsigned}
	switch realType(typ, meta) {
	case mysql.MYSQL_TYPE_TINY:
		d.kind, d.width = kindInt, 1
	case mysql.MYSQL_TYPE_SHORT:
		d.kind, d.width = kindInt, 2
	case mysql.MYSQL_TYPE_INT24:
		d.kind, d.width = kindInt, 3
	case mysql.MYSQL_TYPE_LONG:
		d.kind, d.width = kindInt, 4
	case mysql.MYSQL_TYPE_LONGLONG:
		d.kind, d.width = kindInt, 8
	case mysql.MYSQL_TYPE_NEWDECIMAL, mysql.MYSQL_TYPE_DECIMAL:
		d.kind = kindDecimal
	case mysql.MYSQL_TYPE_FLOAT, mysql.MYSQL_TYPE_DOUBLE:
		d.kind = kindFloat
	case mysql.MYSQL_TYPE_BIT:
		d.kind, d.bits = kindBit, int(meta>>8)*8+int(meta&0xFF)
	case mysql.MYSQL_TYPE_YEAR:
		d.kind = kindYear
	case mysql.MYSQL_TYPE_DATE, mysql.MYSQL_TYPE_NEWDATE:
		d.kind = kindDate
	case mysql.MYSQL_TYPE_DATETIME, mysql.MYSQL_TYPE_DATETIME2:
		d.kind = kindDatetime
	case mysql.MYSQL_TYPE_TIMESTAMP, mysql.MYSQL_TYPE_TIMESTAMP2:
		d.kind = kindTimestamp
	case mysql.MYSQL_TYPE_TIME, mysql.MYSQL_TYPE_TIME2:
		d.kind = kindTime
		if typ == mysql.MYSQL_TYPE_TIME2 {
			d.fsp = int(meta)
		}
	case mysql.MYSQL_TYPE_ENUM:
		d.kind, d.values = kindEnum, enum
	case mysql.MYSQL_TYPE_SET:
		d.kind, d.values = kindSet, set
	case mysql.MYSQL_TYPE_JSON:
		d.kind = kindJSON
	case mysql.MYSQL_TYPE_GEOMETRY:
		d.kind = kindBinary
	default: // strings and blobs
		d.kind, d.charset = kindText, charset
		if charset == "binary" {
			d.kind = kindBinary
		}
		if info != nil && info.json {
			d.kind = kindJSON
		}
	}
	if info != nil && d.kind == kindBinary && info.dataType == "binary" {
		d.pad = int(info.octets)
	}
	return d
}
