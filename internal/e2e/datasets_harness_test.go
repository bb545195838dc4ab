package e2e

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	_ "github.com/duckdb/duckdb-go/v2" // the independent reader of the files, in tests only
	"github.com/jackc/pgx/v5/pgxpool"
	"gocloud.dev/blob"

	"github.com/sqlpipe/remix/config"
	rblob "github.com/sqlpipe/remix/connectors/blob"
	_ "github.com/sqlpipe/remix/connectors/blob/cloud" // the harness reads the stores the pushers write
	"github.com/sqlpipe/remix/connectors/builtin"
	"github.com/sqlpipe/remix/internal/testenv"
)

const datasetExample = "../../examples/postgresql_to_dataset"

// lakeFleet is one test's PostgreSQL → dataset pipeline: the example's
// shop and its people table, a lake system of one store, and the
// processes the test starts.
type lakeFleet struct {
	t       testing.TB
	ctx     context.Context
	bin     string
	src     *pgxpool.Pool
	env     []string
	bucket  *blob.Bucket
	prefix  string
	dataset rblob.Dataset
	cfg     *config.Config
	format  string
}

// lakeKeys are the keys of a lake system of a store, with a fresh bucket
// of the test's own.
func lakeKeys(t testing.TB, store string) string {
	switch store {
	case rblob.TypeFile:
		return fmt.Sprintf("  type: file\n  path: %s\n", filepath.Join(t.TempDir(), "lake"))
	case rblob.TypeS3:
		b := testenv.NewS3Bucket(t)
		return fmt.Sprintf("  type: s3\n  bucket: %s\n  prefix: training/remix\n  endpoint: %s\n  path_style: true\n  region: us-east-1\n  access_key_id: %s\n  secret_access_key: %s\n",
			b.Bucket, b.Endpoint, b.AccessKey, b.SecretKey)
	case rblob.TypeGCS:
		b := testenv.NewGCSBucket(t)
		return fmt.Sprintf("  type: gcs\n  bucket: %s\n  prefix: training\n  endpoint: %s\n", b.Bucket, b.Endpoint)
	case rblob.TypeAzure:
		c := testenv.NewAzureContainer(t)
		return fmt.Sprintf("  type: azure_blob\n  container: %s\n  prefix: training\n  connection_string: '%s'\n", c.Container, c.ConnectionString)
	}
	t.Fatalf("no store %s", store)
	return ""
}

// newLakeFleet makes a fleet of the binaries in bin (see binaries), with
// settings for the lake system (LAKE_FORMAT, LAKE_MAX_FILE_AGE,
// LAKE_MAX_FILE_BYTES) that override the defaults.
func newLakeFleet(t testing.TB, bin, store string, partitions int, settings map[string]string) *lakeFleet {
	t.Helper()
	srcURL := testenv.NewDatabase(t)
	_, ns := testenv.Redis(t)
	f := &lakeFleet{t: t, ctx: testenv.Context(t), bin: bin, format: settings["LAKE_FORMAT"]}
	var err error
	if f.src, err = pgxpool.New(context.Background(), srcURL); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(f.src.Close)
	if _, err := f.src.Exec(f.ctx, lakeRead(t, filepath.Join(datasetExample, "source.sql"))); err != nil {
		t.Fatal(err)
	}
	if _, err := f.src.Exec(f.ctx, `ALTER TABLE people ALTER COLUMN bio SET STORAGE EXTERNAL`); err != nil {
		t.Fatal(err)
	}
	systems := t.TempDir()
	if err := os.WriteFile(filepath.Join(systems, "shop.yaml"), []byte(lakeRead(t, filepath.Join(datasetExample, "systems", "shop.yaml"))), 0o644); err != nil {
		t.Fatal(err)
	}
	// The example's lake with the store's keys in place of the folder's.
	lake := lakeRead(t, filepath.Join(datasetExample, "systems", "lake.yaml"))
	head, mixer, _ := strings.Cut(lake, "  push_mixer:")
	head = head[:strings.Index(head, "  type:")] + lakeKeys(t, store) +
		"  format: ${LAKE_FORMAT:-parquet}\n  max_file_age: ${LAKE_MAX_FILE_AGE:-1s}\n  max_file_bytes: ${LAKE_MAX_FILE_BYTES:-128MiB}\n\n"
	if err := os.WriteFile(filepath.Join(systems, "lake.yaml"), []byte(head+"  push_mixer:"+mixer), 0o644); err != nil {
		t.Fatal(err)
	}
	vars := map[string]string{
		"SHOP_DSN": srcURL, "SHOP_SLOT": testenv.UniqueName("slot"), "REDIS_URL": testenv.RedisURL(t), "REMIX_NAMESPACE": ns,
		"REMIX_PARTITIONS": fmt.Sprint(partitions), "SYSTEMS_DIR": systems, "MODELS_DIR": filepath.Join(datasetExample, "models"),
		"REMIX_LOCK_TTL": "1s", "REMIX_LEASE_TTL": "1500ms", "LOG_LEVEL": "info",
	}
	for k, v := range settings {
		vars[k] = v
	}
	for k, v := range vars {
		f.env = append(f.env, k+"="+v)
	}
	cfg, err := config.Load(config.Options{SystemsDir: systems, ModelsDir: vars["MODELS_DIR"], Specs: builtin.Connectors().Specs(), Getenv: testenv.Getenv(vars)})
	if err != nil {
		t.Fatal(err)
	}
	f.cfg = cfg
	sys := cfg.System("lake")
	ds, err := rblob.Datasets(sys, cfg.Models)
	if err != nil || len(ds) != 1 {
		t.Fatalf("datasets: %v %v", ds, err)
	}
	f.dataset = ds[0]
	if f.bucket, f.prefix, err = rblob.OpenStore(f.ctx, sys); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.bucket.Close() })
	return f
}

func (f *lakeFleet) start(name, binary string) *testenv.Process {
	return testenv.StartProcess(f.t, name, f.env, filepath.Join(f.bin, binary), "--http-addr", "127.0.0.1:0")
}

func (f *lakeFleet) exec(sql string, args ...any) {
	f.t.Helper()
	if _, err := f.src.Exec(f.ctx, sql, args...); err != nil {
		f.t.Fatalf("%s: %v", strings.TrimSpace(sql), err)
	}
}

// fetch copies the dataset's files into a fresh local folder, as a
// reader without the store's network extensions would, and returns it.
func (f *lakeFleet) fetch() (string, int, error) {
	dir, err := os.MkdirTemp(f.t.TempDir(), "fetch-")
	if err != nil {
		return "", 0, err
	}
	base := f.prefix + "people/"
	it := f.bucket.List(&blob.ListOptions{Prefix: base})
	n := 0
	for {
		obj, err := it.Next(f.ctx)
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return "", 0, err
		}
		if strings.Contains(obj.Key, "/_remix/") {
			continue
		}
		data, err := f.bucket.ReadAll(f.ctx, obj.Key)
		if err != nil {
			return "", 0, err
		}
		if _, err := rblob.DecodeFile(data, obj.Key); err != nil {
			return "", 0, fmt.Errorf("%s is not a whole file: %w", obj.Key, err)
		}
		path := filepath.Join(dir, filepath.FromSlash(strings.TrimPrefix(obj.Key, base)))
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			return "", 0, err
		}
		if err := os.WriteFile(path, data, 0o644); err != nil {
			return "", 0, err
		}
		n++
	}
	return dir, n, nil
}

// The people table as text rows, one way on each side.
const (
	srcPeople = `SELECT concat_ws('|', id::text, coalesce(name, '∅'), coalesce(balance::text, '∅'), coalesce(score::text, '∅'),
		coalesce(device_id::text, '∅'), coalesce(active::text, '∅'), coalesce(born::text, '∅'),
		coalesce(((extract(epoch FROM updated_at) * 1000000)::bigint)::text, '∅'), coalesce(attrs::text, '∅'), coalesce(md5(bio), '∅'))
		FROM people ORDER BY id`
	lakePeople = `SELECT concat_ws('|', CAST(id AS VARCHAR), coalesce(name, '∅'), coalesce(CAST(balance AS VARCHAR), '∅'), coalesce(score, '∅'),
		coalesce(CAST(device_id AS VARCHAR), '∅'), coalesce(CAST(active AS VARCHAR), '∅'), coalesce(CAST(born AS VARCHAR), '∅'),
		coalesce(CAST(epoch_us(updated_at) AS VARCHAR), '∅'), coalesce(CAST(attrs AS VARCHAR), '∅'), coalesce(md5(bio), '∅'))
		FROM (%s) ORDER BY id`
)

// latest runs the documented latest-state query on the fetched files
// with DuckDB.
func latest(ctx context.Context, ds rblob.Dataset, dir string) ([]string, error) {
	db, err := sql.Open("duckdb", "")
	if err != nil {
		return nil, err
	}
	defer db.Close()
	return textRows(ctx, db, fmt.Sprintf(lakePeople, ds.DuckDBQuery(filepath.ToSlash(dir)+"/")))
}

func textRows(ctx context.Context, db *sql.DB, q string) ([]string, error) {
	rs, err := db.QueryContext(ctx, q)
	if err != nil {
		return nil, err
	}
	defer rs.Close()
	var out []string
	for rs.Next() {
		var s string
		if err := rs.Scan(&s); err != nil {
			return nil, err
		}
		out = append(out, s)
	}
	return out, rs.Err()
}

func (f *lakeFleet) source() ([]string, error) {
	rows, err := f.src.Query(f.ctx, srcPeople)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var s string
		if err := rows.Scan(&s); err != nil {
			return nil, err
		}
		out = append(out, s)
	}
	return out, rows.Err()
}

// diff compares the source table with the dataset's latest state; "" when
// they are equal. It returns the number of files read.
func (f *lakeFleet) diff() (string, int) {
	want, err := f.source()
	if err != nil {
		return "source: " + err.Error(), 0
	}
	dir, files, err := f.fetch()
	if err != nil {
		return "fetch: " + err.Error(), files
	}
	if files == 0 {
		return "no files yet", 0
	}
	got, err := latest(f.ctx, f.dataset, dir)
	if err != nil {
		return "duckdb: " + err.Error(), files
	}
	if len(got) != len(want) {
		return fmt.Sprintf("%d source rows, %d in the latest state", len(want), len(got)), files
	}
	for i := range want {
		if compactJSONField(got[i]) != compactJSONField(want[i]) {
			return fmt.Sprintf("first difference:\n  source %.400s\n  lake   %.400s", want[i], got[i]), files
		}
	}
	return "", files
}

// waitEqual polls until the dataset's latest state equals the source.
func (f *lakeFleet) waitEqual(within time.Duration) int {
	f.t.Helper()
	deadline := time.Now().Add(within)
	for {
		last, files := f.diff()
		if last == "" {
			return files
		}
		if time.Now().After(deadline) {
			f.t.Fatalf("the latest state did not equal the source within %v: %s", within, last)
		}
		select {
		case <-f.ctx.Done():
			f.t.Fatal(f.ctx.Err())
		case <-time.After(time.Second):
		}
	}
}

// compactJSONField writes a row's JSON column (the ninth) without spaces:
// PostgreSQL prints jsonb with them, a JSON reader without.
func compactJSONField(row string) string {
	parts := strings.Split(row, "|")
	if len(parts) != 10 {
		return row
	}
	var b bytes.Buffer
	if json.Compact(&b, []byte(parts[8])) == nil {
		parts[8] = b.String()
	}
	return strings.Join(parts, "|")
}

// checkInventory runs `remix datasets` and compares its counts with the
// files read.
func (f *lakeFleet) checkInventory(files int) {
	f.t.Helper()
	cmd := exec.Command(filepath.Join(f.bin, "remix"), "datasets", "--format", "json", "--query", "duckdb")
	cmd.Env = append(os.Environ(), f.env...)
	out, err := cmd.CombinedOutput()
	if err != nil {
		f.t.Fatalf("remix datasets: %v\n%s", err, out)
	}
	var got []struct {
		Location string
		Files    int
		Rows     int64
		Query    string `json:"query"`
	}
	if err := json.Unmarshal(out, &got); err != nil || len(got) != 1 {
		f.t.Fatalf("remix datasets: %v\n%s", err, out)
	}
	dir, _, err := f.fetch()
	if err != nil {
		f.t.Fatal(err)
	}
	db, err := sql.Open("duckdb", "")
	if err != nil {
		f.t.Fatal(err)
	}
	defer db.Close()
	var rows int64
	if err := db.QueryRowContext(f.ctx, "SELECT count(*) FROM "+f.dataset.DuckDBSource(filepath.ToSlash(dir)+"/")).Scan(&rows); err != nil {
		f.t.Fatal(err)
	}
	if g := got[0]; g.Location != "people" || g.Files != files || g.Rows != rows || !strings.Contains(g.Query, "arg_max") {
		f.t.Fatalf("remix datasets says %+v; the store holds %d files of %d rows", g, files, rows)
	}
}

func lakeRead(t testing.TB, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}
