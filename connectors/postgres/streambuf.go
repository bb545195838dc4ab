package postgres

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"unicode/utf8"

	"github.com/sqlpipe/remix/connectors"
	"github.com/sqlpipe/remix/mixer"
)

// streamBuf holds the changes of one large transaction that PostgreSQL
// streams before it commits (protocol 2, streaming on). They are handed over
// only when the transaction commits, and dropped if it (or one of its
// subtransactions) aborts. Above max_buffered_transaction_mb the changes
// spill to a temporary file, so a huge transaction does not take the memory.
type streamBuf struct {
	s       *Source
	xid     uint32
	origin  string // the system Remix wrote the transaction for, if it did
	mem     []subChange
	bytes   int
	limit   int
	file    *os.File
	w       *bufio.Writer
	spilled int
	aborted map[uint32]bool
}

type subChange struct {
	xid   uint32 // the (sub)transaction the change belongs to
	c     connectors.Change
	moved *movedRow // columns to read once the transaction commits
}

func (s *Source) newStreamBuf(xid uint32) *streamBuf {
	return &streamBuf{s: s, xid: xid, limit: int(s.sys.Settings.Int(SettingMaxTransactionMB)) << 20, aborted: map[uint32]bool{}}
}

// add buffers changes of (sub)transaction xid; moved, if set, belongs to
// the last one.
func (b *streamBuf) add(xid uint32, changes []connectors.Change, moved *movedRow) error {
	for _, c := range changes {
		b.mem = append(b.mem, subChange{xid: xid, c: c})
		b.bytes += sizeOf(c)
	}
	if moved != nil && len(changes) > 0 {
		b.mem[len(b.mem)-1].moved = moved
	}
	if b.bytes > b.limit {
		return b.spill()
	}
	return nil
}

// sizeOf estimates a change's memory.
func sizeOf(c connectors.Change) int {
	n := 96 + len(c.Key) + len(c.Record.Location)
	for k, v := range c.Record.Fields {
		n += 48 + len(k)
		switch x := v.(type) {
		case string:
			n += len(x)
		case mixer.JSONText:
			n += len(x)
		}
	}
	return n
}

// spilled form of a change, one JSON object per line. The values of json
// and jsonb columns go in J, as their text, so they come back byte for
// byte and as JSON values.
type spillLine struct {
	X uint32                         `json:"x"`
	K string                         `json:"k"`
	L string                         `json:"l"`
	O mixer.Op                       `json:"o"`
	C bool                           `json:"c,omitempty"`
	N bool                           `json:"n,omitempty"` // Record.Created
	F map[string]any                 `json:"f"`
	J map[string]string              `json:"j,omitempty"`
	E string                         `json:"e,omitempty"`
	G *connectors.MissingFieldsError `json:"g,omitempty"` // E's cause, kept whole for the dead letter
	M *movedRow                      `json:"m,omitempty"`
}

// spillFields splits a change's fields into plain values and JSON texts.
func spillFields(fields map[string]any) (map[string]any, map[string]string) {
	var texts map[string]string
	plain := fields
	for k, v := range fields {
		j, ok := v.(mixer.JSONText)
		if !ok {
			continue
		}
		if texts == nil {
			texts = map[string]string{}
			plain = make(map[string]any, len(fields))
			for k2, v2 := range fields {
				plain[k2] = v2
			}
		}
		texts[k] = string(j)
		delete(plain, k)
	}
	return plain, texts
}

func (b *streamBuf) spill() error {
	if b.file == nil {
		f, err := os.CreateTemp("", fmt.Sprintf("remix-xid%d-*.jsonl", b.xid))
		if err != nil {
			return fmt.Errorf("spilling transaction %d: %w", b.xid, err)
		}
		b.file, b.w = f, bufio.NewWriterSize(f, 1<<20)
		b.s.log.Info("large transaction spills to disk", "xid", b.xid, "file", f.Name())
	}
	enc := json.NewEncoder(b.w)
	for _, sc := range b.mem {
		l := spillLine{X: sc.xid, K: sc.c.Key, L: sc.c.Record.Location, O: sc.c.Record.Op, C: sc.c.Record.Complete, N: sc.c.Record.Created, M: sc.moved}
		l.F, l.J = spillFields(sc.c.Record.Fields)
		if sc.c.Err != nil {
			l.E = sc.c.Err.Error()
			_ = errors.As(sc.c.Err, &l.G)
		} else if col := notUTF8(sc.c.Record.Fields); col != "" {
			// JSON would replace the bytes, and the change would come back
			// altered: it is dead-lettered instead, as the receive mixer
			// does with such text when the transaction stays in memory.
			l.E = fmt.Sprintf("%s column %s: text is not valid UTF-8", sc.c.Record.Location, col)
		}
		if err := enc.Encode(&l); err != nil {
			return fmt.Errorf("spilling transaction %d: %w", b.xid, err)
		}
	}
	b.spilled += len(b.mem)
	b.mem, b.bytes = nil, 0
	return nil
}

// replay hands the transaction's changes over in order, in chunks, leaving
// out those of aborted subtransactions; the last call has last set. Moved
// rows are read now that the transaction has committed.
func (b *streamBuf) replay(ctx context.Context, fn func(changes []connectors.Change, last bool) error) error {
	var chunk []connectors.Change
	push := func(sc subChange) error {
		if b.aborted[sc.xid] {
			return nil
		}
		if sc.moved != nil {
			if err := b.s.fillMoved(ctx, sc.moved, b.xid, &sc.c); err != nil {
				return err
			}
		}
		chunk = append(chunk, sc.c)
		if len(chunk) >= chunkChanges {
			err := fn(chunk, false)
			chunk = nil
			return err
		}
		return nil
	}
	if b.file != nil {
		if err := b.w.Flush(); err != nil {
			return err
		}
		if _, err := b.file.Seek(0, io.SeekStart); err != nil {
			return err
		}
		dec := json.NewDecoder(bufio.NewReaderSize(b.file, 1<<20))
		dec.UseNumber()
		for {
			var l spillLine
			err := dec.Decode(&l)
			if errors.Is(err, io.EOF) {
				break
			}
			if err != nil {
				return fmt.Errorf("reading spilled transaction %d: %w", b.xid, err)
			}
			if l.F == nil {
				l.F = map[string]any{}
			}
			for k, text := range l.J {
				l.F[k] = mixer.JSONText(text)
			}
			c := connectors.Change{Key: l.K, Record: mixer.Record{Location: l.L, Op: l.O, Complete: l.C, Created: l.N, Fields: l.F}}
			switch {
			case l.G != nil:
				c.Err = l.G
			case l.E != "":
				c.Err = errors.New(l.E)
			}
			if err := push(subChange{xid: l.X, c: c, moved: l.M}); err != nil {
				return err
			}
		}
	}
	for _, sc := range b.mem {
		if err := push(sc); err != nil {
			return err
		}
	}
	return fn(chunk, true)
}

// notUTF8 returns the first field whose text is not valid UTF-8, or "".
func notUTF8(fields map[string]any) string {
	for k, v := range fields {
		if s, ok := v.(string); ok && !utf8.ValidString(s) {
			return k
		}
	}
	return ""
}

func (b *streamBuf) close() {
	if b.file != nil {
		name := b.file.Name()
		b.file.Close()
		if strings.Contains(name, "remix-xid") {
			os.Remove(name)
		}
		b.file = nil
	}
	b.mem = nil
}
