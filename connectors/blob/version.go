package blob

import (
	"cmp"
	"fmt"
	"math/big"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// A row's _remix_version is one DECIMAL(38,0) built from where its change
// sits in Remix's stream, the order in which every target applies a key's
// changes:
//
//	EEE MMMMMMMMMMMMM SSSSSSSSSSSSSSSS IIIIII
//	epoch  entry ms      entry seq      index
//
// epoch counts the dataset's truncates (0 until the first); entry ms and
// seq are the stream entry's id (Redis stamps it with its clock when the
// ingest publishes the change), index the change's place in the entry.
// Versions of one key never tie and only grow: a key's changes stay in one
// partition stream, in commit order, and entry ids in a stream only grow,
// across restarts, takeovers and resets (a reset's snapshot is published
// after everything before it). docs/decisions/2026-12-05-datasets.md has
// the reasoning.
const (
	maxEpoch = 999
	maxSeq   = 1e16 - 1
	maxIndex = 1e6 - 1
)

var (
	pow6  = big.NewInt(1e6)
	pow22 = new(big.Int).Exp(big.NewInt(10), big.NewInt(22), nil)
	pow35 = new(big.Int).Exp(big.NewInt(10), big.NewInt(35), nil)
)

// entryID is a stream entry id, milliseconds-sequence.
type entryID struct{ ms, seq uint64 }

func parseEntry(s string) (entryID, error) {
	ms, seq, ok := strings.Cut(s, "-")
	a, err1 := strconv.ParseUint(ms, 10, 64)
	b, err2 := strconv.ParseUint(seq, 10, 64)
	if !ok || err1 != nil || err2 != nil || a >= 1e13 || b > maxSeq {
		return entryID{}, fmt.Errorf("stream entry %q is not a Redis stream id this version can hold", s)
	}
	return entryID{a, b}, nil
}

func (e entryID) compare(o entryID) int {
	return cmp.Or(cmp.Compare(e.ms, o.ms), cmp.Compare(e.seq, o.seq))
}

func (e entryID) String() string {
	return strconv.FormatUint(e.ms, 10) + "-" + strconv.FormatUint(e.seq, 10)
}

// version is a row's _remix_version.
func version(epoch int, e entryID, index int) *big.Int {
	v := new(big.Int).Mul(big.NewInt(int64(epoch)), pow35)
	v.Add(v, new(big.Int).Mul(new(big.Int).SetUint64(e.ms), pow22))
	v.Add(v, new(big.Int).Mul(new(big.Int).SetUint64(e.seq), pow6))
	return v.Add(v, big.NewInt(int64(index)))
}

// epochStart is the lowest version of an epoch: a truncate marker's.
func epochStart(epoch int) *big.Int { return new(big.Int).Mul(big.NewInt(int64(epoch)), pow35) }

// SplitVersion reads a version back: its epoch, stream entry and index.
func SplitVersion(v *big.Int) (epoch int, entry string, index int) {
	q, r := new(big.Int).QuoRem(v, pow35, new(big.Int))
	ms, r := new(big.Int).QuoRem(r, pow22, new(big.Int))
	seq, idx := new(big.Int).QuoRem(r, pow6, new(big.Int))
	return int(q.Int64()), entryID{ms.Uint64(), seq.Uint64()}.String(), int(idx.Int64())
}

// versionText is a version as 38 digits, zero-padded, so that text order
// is number order (JSON Lines).
func versionText(v *big.Int) string {
	s := v.String()
	return strings.Repeat("0", 38-len(s)) + s
}

// Object names. A dataset is the folder PREFIX/LOCATION/; its files are
//
//	date=YYYY-MM-DD/part-MODEL.PARTITION.FIRST.LAST.parquet
//
// with FIRST and LAST the first and last stream entries the file holds
// (ms_seq), so that writing the same entries again writes the same
// object; date is the UTC day of the file's window. A file that begins
// inside an entry (a batch ended there, and the file before it was sealed)
// has FIRST as ms_seq_index, the place of its first object in the entry:
// two files holding only parts of one entry then never share a name. A truncate marker is
// date=YYYY-MM-DD/truncate-eEPOCH.parquet, and the dataset's current
// epoch is kept in _remix/epoch.
func datasetDir(prefix, location string) string { return prefix + location + "/" }

func epochKey(prefix, location string) string { return datasetDir(prefix, location) + "_remix/epoch" }

func extension(format string) string {
	if format == FormatJSONL {
		return ".jsonl.gz"
	}
	return ".parquet"
}

func dateDir(t time.Time) string { return "date=" + t.UTC().Format(time.DateOnly) + "/" }

func partName(prefix, location, model string, partition int, window time.Time, first entryID, firstIndex int, last entryID, format string) string {
	e := func(id entryID) string { return strconv.FormatUint(id.ms, 10) + "_" + strconv.FormatUint(id.seq, 10) }
	from := e(first)
	if firstIndex > 0 {
		from += "_" + strconv.Itoa(firstIndex)
	}
	return datasetDir(prefix, location) + dateDir(window) + "part-" + url.PathEscape(model) + "." + strconv.Itoa(partition) +
		"." + from + "." + e(last) + extension(format)
}

func truncateName(prefix, location string, epoch int, at time.Time, format string) string {
	return datasetDir(prefix, location) + dateDir(at) + fmt.Sprintf("truncate-e%03d", epoch) + extension(format)
}

// FileName is what the name of a dataset file says.
type FileName struct {
	Model       string
	Partition   int
	First, Last string // stream entries, ms-seq
	FirstIndex  int    // the first object's place in the First entry (0 unless the file begins inside it)
	Truncate    bool   // a truncate marker
	Epoch       int    // of a truncate marker
}

// ParseFileName reads the base name of a dataset file; ok is false for a
// name that is not one.
func ParseFileName(base string) (FileName, bool) {
	stem, ok := strings.CutSuffix(base, ".parquet")
	if !ok {
		if stem, ok = strings.CutSuffix(base, ".jsonl.gz"); !ok {
			return FileName{}, false
		}
	}
	if rest, ok := strings.CutPrefix(stem, "truncate-e"); ok {
		n, err := strconv.Atoi(rest)
		return FileName{Truncate: true, Epoch: n}, err == nil
	}
	rest, ok := strings.CutPrefix(stem, "part-")
	parts := strings.Split(rest, ".")
	if !ok || len(parts) < 4 {
		return FileName{}, false
	}
	n := len(parts)
	model, err := url.PathUnescape(strings.Join(parts[:n-3], "."))
	p, err2 := strconv.Atoi(parts[n-3])
	if err != nil || err2 != nil {
		return FileName{}, false
	}
	f := FileName{Model: model, Partition: p}
	for i, s := range parts[n-2:] {
		fields := strings.Split(s, "_")
		if len(fields) < 2 || len(fields) > 2+(1-i) {
			return FileName{}, false
		}
		id := fields[0] + "-" + fields[1]
		if i == 1 {
			f.Last = id
			continue
		}
		f.First = id
		if len(fields) == 3 {
			if f.FirstIndex, err = strconv.Atoi(fields[2]); err != nil || f.FirstIndex < 1 {
				return FileName{}, false
			}
		}
	}
	return f, true
}
