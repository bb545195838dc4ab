package mixer

import "github.com/santhosh-tekuri/jsonschema/v5"

// formatCheck returns the check of a JSON Schema format: the schema
// library's own, except for date-time, whose date half the library checks
// with time.Parse: 5% of an ingest's CPU in a snapshot of rows with one
// timestamp. dateTime gives the same verdicts (a fuzz test holds it to the
// library's) in a fifth of the time. The library's time check is exported
// too, but calling it through an interface boxes the time's substring: an
// allocation a value, which is why the time half is read here as well.
func formatCheck(format string) func(any) bool {
	if format == "date-time" {
		return dateTime
	}
	return jsonschema.Formats[format]
}

var libraryDateTime = jsonschema.Formats["date-time"]

// dateTime checks an RFC 3339 date-time as the schema library does (its
// date-time format: a full-date, a T or t, a full-time). It reads the
// common shapes itself, every number in plain digits, and leaves any other
// to the library.
func dateTime(v any) bool {
	s, ok := v.(string)
	if !ok || len(s) < 20 || s[10] != 'T' && s[10] != 't' {
		return libraryDateTime(v)
	}
	date, sure := fullDate(s[:10])
	if !sure {
		return libraryDateTime(v)
	}
	if !date {
		return false
	}
	time, sure := fullTime(s[11:])
	if !sure {
		return libraryDateTime(v)
	}
	return time
}

// digits reads s as plain decimal digits; ok is false for anything else
// (a sign included).
func digits(s string) (n int, ok bool) {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c < '0' || c > '9' {
			return 0, false
		}
		n = n*10 + int(c-'0')
	}
	return n, true
}

// fullTime reads t as the library's full-time: hh:mm:ss, an optional
// fraction, then Z or an offset ±hh:mm; a leap second only at 23:59 UTC.
// sure is false when a number is not two plain digits (the library reads
// them with strconv.Atoi, which takes a sign): then only the library can
// say.
func fullTime(t string) (valid, sure bool) {
	if len(t) < 9 || t[2] != ':' || t[5] != ':' {
		return false, true
	}
	h, ok1 := digits(t[0:2])
	m, ok2 := digits(t[3:5])
	s, ok3 := digits(t[6:8])
	if !ok1 || !ok2 || !ok3 {
		return false, false
	}
	if h > 23 || m > 59 || s > 60 {
		return false, true
	}
	rest := t[8:]
	if rest[0] == '.' {
		i := 1
		for i < len(rest) && rest[i] >= '0' && rest[i] <= '9' {
			i++
		}
		if i == 1 {
			return false, true
		}
		rest = rest[i:]
	}
	hm := h*60 + m // the time in UTC, in minutes
	switch {
	case rest == "":
		return false, true
	case rest[0] == 'z' || rest[0] == 'Z':
		if len(rest) != 1 {
			return false, true
		}
	case len(rest) != 6 || rest[3] != ':' || rest[0] != '+' && rest[0] != '-':
		return false, true
	default:
		zh, ok1 := digits(rest[1:3])
		zm, ok2 := digits(rest[4:6])
		if !ok1 || !ok2 {
			return false, false
		}
		if zh > 23 || zm > 59 {
			return false, true
		}
		if rest[0] == '+' { // east of UTC: taken off
			hm -= zh*60 + zm
		} else {
			hm += zh*60 + zm
		}
		if hm < 0 {
			hm += 24 * 60
		}
	}
	return s != 60 || hm/60 == 23 && hm%60 == 59, true
}

// fullDate reads d as yyyy-mm-dd, four digits, two and two. sure is false
// when d has another shape: then only time.Parse (the library) can say.
// Otherwise valid says whether the month is 1 to 12 and the day within
// the month, leap years counted as time.Parse counts them.
func fullDate(d string) (valid, sure bool) {
	if len(d) != 10 || d[4] != '-' || d[7] != '-' {
		return false, false
	}
	y, ok1 := digits(d[:4])
	m, ok2 := digits(d[5:7])
	day, ok3 := digits(d[8:])
	if !ok1 || !ok2 || !ok3 {
		return false, false
	}
	if m < 1 || m > 12 || day < 1 {
		return false, true
	}
	days := [...]int{31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31}[m-1]
	if m == 2 && y%4 == 0 && (y%100 != 0 || y%400 == 0) {
		days = 29
	}
	return day <= days, true
}
