package jsonlsink

import (
	"bufio"
	"bytes"
	"cmp"
	"encoding/json"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/sqlpipe/remix/mixer"
)

// Line is one line of a file: a record and where it came from.
type Line struct {
	Location string         `json:"location"`
	Op       string         `json:"op"` // upsert or delete
	Fields   map[string]any `json:"fields"`
	Created  bool           `json:"created,omitzero"`
	Origin   LineOrigin     `json:"origin"`
}

// LineOrigin is a record's mixer.Origin.
type LineOrigin struct {
	Model      string    `json:"model"`
	Partition  int       `json:"partition"`
	Entry      string    `json:"entry"`
	Index      int       `json:"index"`
	Source     string    `json:"source,omitzero"`
	Position   string    `json:"position,omitzero"`
	CommitTime time.Time `json:"commit_time,omitzero"`
	System     string    `json:"system,omitzero"`
}

func lineOf(r *mixer.TargetRecord) Line {
	o := r.Origin
	return Line{Location: r.Location, Op: r.Op.String(), Fields: r.Fields, Created: r.Created, Origin: LineOrigin{
		Model: o.Model, Partition: o.Partition, Entry: o.Entry, Index: o.Index,
		Source: o.Source, Position: o.Position, CommitTime: o.CommitTime, System: o.System,
	}}
}

// Record is the line as a target record (without its search key).
func (l Line) Record() (mixer.TargetRecord, error) {
	r := mixer.TargetRecord{Location: l.Location, Fields: l.Fields, Created: l.Created}
	switch l.Op {
	case "upsert":
		r.Op = mixer.OpUpsert
	case "delete":
		r.Op = mixer.OpDelete
	default:
		return r, fmt.Errorf("unknown operation %q", l.Op)
	}
	o := l.Origin
	r.Origin = mixer.Origin{Model: o.Model, Partition: o.Partition, Entry: o.Entry, Index: o.Index,
		Source: o.Source, Position: o.Position, CommitTime: o.CommitTime, System: o.System}
	return r, nil
}

// file is a flushed file and the partition and entries its name gives.
type file struct {
	path        string
	model       string
	partition   int
	first, last entryID
}

// ReadDir reads every line of a location's files, as a consumer of the
// files would: the files of each partition in the order of their entries,
// lines in file order. Numbers decode as json.Number. A partition's lines
// are in stream order, with repeats (entries flushed again after a
// takeover) after the first copy.
func ReadDir(dir, location string) ([]Line, error) {
	des, err := os.ReadDir(filepath.Join(dir, location))
	if err != nil {
		return nil, err
	}
	var files []file
	for _, de := range des {
		name := de.Name()
		if de.IsDir() || strings.HasPrefix(name, ".") || !strings.HasSuffix(name, ".jsonl") {
			continue
		}
		f, err := parseName(name)
		if err != nil {
			return nil, err
		}
		f.path = filepath.Join(dir, location, name)
		files = append(files, f)
	}
	slices.SortFunc(files, func(a, b file) int {
		return cmp.Or(cmp.Compare(a.model, b.model), cmp.Compare(a.partition, b.partition),
			a.first.compare(b.first), a.last.compare(b.last))
	})
	var out []Line
	for _, f := range files {
		lines, err := readFile(f.path)
		if err != nil {
			return nil, err
		}
		out = append(out, lines...)
	}
	return out, nil
}

// parseName reads MODEL.PARTITION.FIRST.LAST.jsonl (the model escaped).
func parseName(name string) (file, error) {
	parts := strings.Split(strings.TrimSuffix(name, ".jsonl"), ".")
	bad := fmt.Errorf("file %s: not MODEL.PARTITION.FIRST.LAST.jsonl", name)
	if len(parts) < 4 {
		return file{}, bad
	}
	n := len(parts)
	model, err := url.PathUnescape(strings.Join(parts[:n-3], "."))
	if err != nil {
		return file{}, bad
	}
	partition, err := strconv.Atoi(parts[n-3])
	if err != nil {
		return file{}, bad
	}
	first, err1 := parseEntry(parts[n-2])
	last, err2 := parseEntry(parts[n-1])
	if err1 != nil || err2 != nil {
		return file{}, bad
	}
	return file{model: model, partition: partition, first: first, last: last}, nil
}

func readFile(path string) ([]Line, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var out []Line
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(nil, len(data)+1)
	for n := 1; sc.Scan(); n++ {
		dec := json.NewDecoder(bytes.NewReader(sc.Bytes()))
		dec.UseNumber()
		var l Line
		if err := dec.Decode(&l); err != nil {
			return nil, fmt.Errorf("%s:%d: %w", path, n, err)
		}
		out = append(out, l)
	}
	return out, sc.Err()
}

// entryID is a stream entry id, milliseconds-sequence.
type entryID struct{ ms, seq uint64 }

func parseEntry(s string) (entryID, error) {
	ms, seq, ok := strings.Cut(s, "-")
	a, err1 := strconv.ParseUint(ms, 10, 64)
	b, err2 := strconv.ParseUint(seq, 10, 64)
	if !ok || err1 != nil || err2 != nil {
		return entryID{}, fmt.Errorf("entry %q", s)
	}
	return entryID{a, b}, nil
}

func (e entryID) compare(o entryID) int {
	return cmp.Or(cmp.Compare(e.ms, o.ms), cmp.Compare(e.seq, o.seq))
}
