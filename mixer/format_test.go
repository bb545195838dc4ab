package mixer

import (
	"testing"
)

// dateTimeSeeds are date-times valid and not, around what the hand-written
// date reading decides itself.
var dateTimeSeeds = []string{
	"2026-12-06T07:00:00.123456Z", "2026-12-06t07:00:00Z", "2026-12-06T07:00:00+05:30",
	"2024-02-29T00:00:00Z", "2023-02-29T00:00:00Z", "1900-02-29T00:00:00Z", "2000-02-29T00:00:00Z",
	"0000-02-29T00:00:00Z", "0000-01-01T00:00:00Z", "9999-12-31T23:59:59Z",
	"2026-00-10T00:00:00Z", "2026-13-10T00:00:00Z", "2026-04-31T00:00:00Z", "2026-04-30T00:00:00Z",
	"2026-01-00T00:00:00Z", "2026-01-32T00:00:00Z", "2026-1-010T00:00:00Z", "+026-01-01T00:00:00Z",
	"2026-01-01 00:00:00Z", "2026-01-01T24:00:00Z", "2026-01-01T23:59:60Z", "2026-06-30T23:59:60Z",
	"2026-01-01T00:00:00", "2026/01/01T00:00:00Z", "２026-01-01T00:00:00Z", "2026-01-01T00:00:00.Z",
	"", "2026-01-01", "not a date at all, but long",
	"2026-06-30T23:59:60+00:00", "2026-06-30T00:59:60+01:00", "2026-06-30T23:59:60-00:01", "2026-06-30T22:59:60-01:00",
	"2026-06-30T+1:00:00Z", "2026-06-30T01:+1:00Z", "2026-06-30T01:00:-0Z", "2026-06-30T01:00:00+-1:00",
	"2026-06-30T01:00:00+01:+5", "2026-06-30T01:00:00+24:00", "2026-06-30T01:00:00+01:60", "2026-06-30T01:00:00*01:00",
	"2026-06-30T01:00:00.5", "2026-06-30T01:00:00.", "2026-06-30T01:00:00ZZ", "2026-06-30T01:00:00+01:00Z",
	"2026-06-30T00:00:60-23:59", "2026-06-30T23:59:60+23:59",
}

func TestDateTimeAgreesWithTheSchemaLibrary(t *testing.T) {
	t.Parallel()
	for _, s := range dateTimeSeeds {
		if got, want := dateTime(s), libraryDateTime(s); got != want {
			t.Errorf("%q: %v, the library says %v", s, got, want)
		}
	}
	for _, v := range []any{nil, 42, true} { // not strings: not the format's business
		if got, want := dateTime(v), libraryDateTime(v); got != want {
			t.Errorf("%v: %v, the library says %v", v, got, want)
		}
	}
	if formatCheck("date") == nil || formatCheck("no such format") != nil {
		t.Error("other formats are the library's")
	}
}

func FuzzDateTime(f *testing.F) {
	for _, s := range dateTimeSeeds {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if got, want := dateTime(s), libraryDateTime(s); got != want {
			t.Fatalf("%q: %v, the library says %v", s, got, want)
		}
	})
}

func BenchmarkDateTime(b *testing.B) {
	const s = "2026-12-06T07:00:00.123456Z"
	b.Run("library", func(b *testing.B) {
		for b.Loop() {
			if !libraryDateTime(s) {
				b.Fatal("invalid")
			}
		}
	})
	b.Run("dateTime", func(b *testing.B) {
		for b.Loop() {
			if !dateTime(s) {
				b.Fatal("invalid")
			}
		}
	})
}
