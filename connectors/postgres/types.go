package postgres

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strings"

	"github.com/sqlpipe/remix/mixer"
)

// Type OIDs Remix reads specially; every other type arrives as its text.
const (
	oidBool        = 16
	oidInt8        = 20
	oidInt2        = 21
	oidInt4        = 23
	oidOID         = 26
	oidJSON        = 114
	oidFloat4      = 700
	oidFloat8      = 701
	oidDate        = 1082
	oidTimestamp   = 1114
	oidTimestamptz = 1184
	oidNumeric     = 1700
	oidJSONB       = 3802
)

// kindOf maps a column type to how values are written into it.
func kindOf(oid uint32) columnKind {
	switch oid {
	case oidInt2, oidInt4, oidInt8, oidOID:
		return colInteger
	case oidNumeric:
		return colNumeric
	case oidFloat4, oidFloat8:
		return colFloat
	case oidBool:
		return colBool
	case oidTimestamptz:
		return colTimestamptz
	case oidTimestamp:
		return colTimestamp
	case oidDate:
		return colDate
	case oidJSON, oidJSONB:
		return colJSON
	}
	return colText
}

// decodeText turns a value in PostgreSQL's text output form into a Remix
// value. Sessions that produce the text run with DateStyle=ISO and
// TimeZone=UTC (both the replication and the snapshot connections), so
// timestamps arrive as "2024-01-02 03:04:05.123456+00".
func decodeText(oid uint32, b []byte) (any, error) {
	switch oid {
	case oidInt2, oidInt4, oidInt8, oidOID:
		return json.Number(b), nil
	case oidNumeric, oidFloat4, oidFloat8:
		s := string(b)
		switch s {
		case "NaN", "Infinity", "-Infinity":
			return s, nil // no JSON number for these; a string model field can hold them
		}
		return mixer.NormalizeNumber(s)
	case oidBool:
		switch string(b) {
		case "t":
			return true, nil
		case "f":
			return false, nil
		}
		return nil, fmt.Errorf("boolean %q", b)
	case oidTimestamptz:
		return isoTimestamp(b, true), nil
	case oidTimestamp:
		return isoTimestamp(b, false), nil
	case oidJSON, oidJSONB:
		// Carried whole, as its text: json keeps key order, duplicate keys
		// and whitespace, and a JSON null is not SQL NULL. A path into
		// the column decodes it when it is mapped.
		j, err := mixer.ParseJSONText(b)
		if err != nil {
			return nil, fmt.Errorf("json column: %w", err)
		}
		return j, nil
	}
	return string(b), nil
}

// isoTimestamp turns PostgreSQL's ISO output into RFC 3339:
// "2024-01-02 03:04:05.5+00" -> "2024-01-02T03:04:05.5Z". A timestamp
// without time zone is read as UTC. Values RFC 3339 cannot hold (infinity,
// BC dates) are kept as PostgreSQL wrote them.
func isoTimestamp(b []byte, withZone bool) string {
	if len(b) < 19 || b[10] != ' ' || bytes.HasSuffix(b, []byte(" BC")) {
		return string(b)
	}
	// Rewritten in a stack buffer: one allocation per value, the string.
	var buf [40]byte
	t := append(buf[:0], b...)
	t[10] = 'T'
	if !withZone {
		return string(append(t, 'Z'))
	}
	// The zone is +HH, +HH:MM or +HH:MM:SS after the time.
	i := bytes.LastIndexAny(t, "+-")
	if i < 19 {
		return string(b)
	}
	switch zone := t[i:]; {
	case string(zone) == "+00" || string(zone) == "-00":
		return string(append(t[:i], 'Z'))
	case len(zone) == 3:
		return string(append(t, ":00"...))
	case len(zone) == 9: // seconds in an offset: RFC 3339 has none
		return string(b)
	}
	return string(t)
}

// quoteIdent quotes an identifier for SQL.
func quoteIdent(s string) string { return `"` + strings.ReplaceAll(s, `"`, `""`) + `"` }

// quoteQualified quotes schema.table.
func quoteQualified(loc string) string {
	schema, table, _ := strings.Cut(loc, ".")
	return quoteIdent(schema) + "." + quoteIdent(table)
}

// quoteLiteral quotes a string literal for SQL.
func quoteLiteral(s string) string { return "'" + strings.ReplaceAll(s, "'", "''") + "'" }
