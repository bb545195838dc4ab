package blob

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"gocloud.dev/blob"
	"gocloud.dev/blob/fileblob"

	"github.com/sqlpipe/remix/config"
	"github.com/sqlpipe/remix/connectors/blob/stores"
)

// store is where a system's datasets live: an open bucket, the prefix
// inside it, and a name for messages.
type store struct {
	bucket *blob.Bucket
	prefix string // "" or ending in "/"
	where  string // for messages: s3://bucket/prefix, /data/lake
}

// OpenStore opens the bucket of a blob system. Each store has its own few
// lines here; everything after the bucket is the same for all of them.
func OpenStore(ctx context.Context, sys *config.System) (*blob.Bucket, string, error) {
	st, err := openStore(ctx, sys)
	if err != nil {
		return nil, "", err
	}
	return st.bucket, st.prefix, nil
}

func openStore(ctx context.Context, sys *config.System) (*store, error) {
	s := sys.Settings
	prefix := strings.Trim(s.String(SettingPrefix), "/")
	if prefix != "" {
		prefix += "/"
	}
	var (
		b     *blob.Bucket
		where string
		err   error
	)
	switch sys.Type {
	case TypeFile:
		b, where, err = openFile(s)
		prefix = ""
	case TypeS3, TypeGCS, TypeAzure:
		open, ok := stores.Lookup(sys.Type)
		if !ok {
			return nil, fmt.Errorf("system %s: this binary cannot open %s stores: the pusher and remix can (unless built with -tags remix_no_s3, remix_no_gcs or remix_no_azure), the ingest cannot", sys.Name, sys.Type)
		}
		b, where, err = open(ctx, s)
	default:
		return nil, fmt.Errorf("%s is not a blob store type", sys.Type)
	}
	if err != nil {
		return nil, fmt.Errorf("opening %s: %w", where, err)
	}
	return &store{bucket: b, prefix: prefix, where: where + "/" + prefix}, nil
}

func openFile(s config.Settings) (*blob.Bucket, string, error) {
	dir, err := filepath.Abs(s.String(SettingPath))
	if err != nil {
		return nil, s.String(SettingPath), err
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, dir, err
	}
	// Files are written to a temporary name beside their final one and
	// renamed when complete; no .attrs side files (metadata goes into the
	// file names and the files themselves).
	b, err := fileblob.OpenBucket(dir, &fileblob.Options{NoTempDir: true, Metadata: fileblob.MetadataDontWrite})
	return b, dir, err
}
