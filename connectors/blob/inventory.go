package blob

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"context"
	"errors"
	"fmt"
	"io"
	"path"
	"sort"
	"strconv"
	"strings"
	"sync"

	"github.com/parquet-go/parquet-go"
	"gocloud.dev/blob"

	"github.com/sqlpipe/remix/config"
	"github.com/sqlpipe/remix/mixer"
)

// Inventory is what a dataset holds in its store.
type Inventory struct {
	Dataset
	Folder      string // where its files are
	Files       int    // change files (truncate markers and compacted files included)
	Bytes       int64
	Rows        int64  // change rows in them
	First, Last string // the first and last date= folders
	Epoch       int    // its truncates so far
	Unfinished  int    // temporary files a killed writer left (local folders only); readers skip them
}

// Take lists every dataset of a blob system and counts its files and
// rows: the row count a file's object metadata keeps, else its Parquet
// footer, else its lines.
func Take(ctx context.Context, sys *config.System, models map[string]*mixer.Model) ([]Inventory, error) {
	ds, err := Datasets(sys, models)
	if err != nil {
		return nil, err
	}
	st, err := openStore(ctx, sys)
	if err != nil {
		return nil, err
	}
	defer st.bucket.Close()
	s := &Sink{st: st}
	out := make([]Inventory, 0, len(ds))
	for _, d := range ds {
		inv := Inventory{Dataset: d, Folder: Folder(sys, d.Location)}
		if inv.Epoch, err = s.epoch(ctx, d.layout); err != nil {
			return nil, err
		}
		var keys []string
		it := st.bucket.List(&blob.ListOptions{Prefix: datasetDir(st.prefix, d.Location)})
		for {
			obj, err := it.Next(ctx)
			if errors.Is(err, io.EOF) {
				break
			}
			if err != nil {
				return nil, fmt.Errorf("listing %s: %w", inv.Folder, err)
			}
			base := path.Base(obj.Key)
			if strings.Contains(obj.Key, "/_remix/") {
				continue
			}
			if !strings.HasSuffix(base, ".parquet") && !strings.HasSuffix(base, ".jsonl.gz") {
				if strings.HasSuffix(base, ".tmp") {
					inv.Unfinished++
				}
				continue // files of compaction (any name) count too
			}
			inv.Files++
			inv.Bytes += obj.Size
			keys = append(keys, obj.Key)
			if dir := path.Base(path.Dir(obj.Key)); strings.HasPrefix(dir, "date=") {
				date := strings.TrimPrefix(dir, "date=")
				if inv.First == "" || date < inv.First {
					inv.First = date
				}
				if date > inv.Last {
					inv.Last = date
				}
			}
		}
		if inv.Rows, err = countRows(ctx, st.bucket, keys); err != nil {
			return nil, err
		}
		out = append(out, inv)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Location < out[j].Location })
	return out, nil
}

// countRows adds up the rows of files, eight at a time.
func countRows(ctx context.Context, b *blob.Bucket, keys []string) (int64, error) {
	var (
		mu    sync.Mutex
		total int64
		first error
		wg    sync.WaitGroup
	)
	sem := make(chan struct{}, 8)
	for _, k := range keys {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer func() { <-sem; wg.Done() }()
			n, err := rowsOf(ctx, b, k)
			mu.Lock()
			defer mu.Unlock()
			total += n
			if err != nil && first == nil {
				first = fmt.Errorf("%s: %w", k, err)
			}
		}()
	}
	wg.Wait()
	return total, first
}

func rowsOf(ctx context.Context, b *blob.Bucket, key string) (int64, error) {
	attrs, err := b.Attributes(ctx, key)
	if err != nil {
		return 0, err
	}
	if n, err := strconv.ParseInt(attrs.Metadata[MetaRows], 10, 64); err == nil {
		return n, nil
	}
	if strings.HasSuffix(key, ".parquet") {
		f, err := parquet.OpenFile(&rangeReader{ctx: ctx, b: b, key: key}, attrs.Size, parquet.SkipPageIndex(true), parquet.SkipBloomFilters(true))
		if err != nil {
			return 0, err
		}
		return f.NumRows(), nil
	}
	r, err := b.NewReader(ctx, key, nil)
	if err != nil {
		return 0, err
	}
	defer r.Close()
	gz, err := gzip.NewReader(bufio.NewReader(r))
	if err != nil {
		return 0, err
	}
	var n int64
	buf := make([]byte, 256<<10)
	for {
		m, err := gz.Read(buf)
		n += int64(bytes.Count(buf[:m], []byte{'\n'}))
		if err == io.EOF {
			return n, nil
		}
		if err != nil {
			return n, err
		}
	}
}

// rangeReader reads an object by ranges (a Parquet footer, not the file).
type rangeReader struct {
	ctx context.Context
	b   *blob.Bucket
	key string
}

func (r *rangeReader) ReadAt(p []byte, off int64) (int, error) {
	rr, err := r.b.NewRangeReader(r.ctx, r.key, off, int64(len(p)), nil)
	if err != nil {
		return 0, err
	}
	defer rr.Close()
	return io.ReadFull(rr, p)
}
