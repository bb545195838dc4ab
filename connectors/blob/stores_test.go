package blob

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/sqlpipe/remix/config"
	"github.com/sqlpipe/remix/connectors"
	_ "github.com/sqlpipe/remix/connectors/blob/cloud" // the stores under test
	"github.com/sqlpipe/remix/connectors/connectortest"
	"github.com/sqlpipe/remix/internal/testenv"
	"github.com/sqlpipe/remix/mixer"
)

// The sink suite against each store's stand-in: versitygw for S3,
// fake-gcs-server for GCS, Azurite for Azure Blob.

func s3Settings(t *testing.T) map[string]any {
	b := testenv.NewS3Bucket(t)
	return map[string]any{SettingBucket: b.Bucket, SettingPrefix: "lake/remix", SettingEndpoint: b.Endpoint, SettingPathStyle: true,
		SettingRegion: "us-east-1", SettingAccessKeyID: config.NewSecret(b.AccessKey), SettingSecretAccessKey: config.NewSecret(b.SecretKey)}
}

func gcsSettings(t *testing.T) map[string]any {
	b := testenv.NewGCSBucket(t)
	return map[string]any{SettingBucket: b.Bucket, SettingPrefix: "lake", SettingEndpoint: b.Endpoint}
}

func azureSettings(t *testing.T) map[string]any {
	c := testenv.NewAzureContainer(t)
	return map[string]any{SettingContainer: c.Container, SettingPrefix: "lake", SettingConnection: config.NewSecret(c.ConnectionString)}
}

func TestS3SinkConformance(t *testing.T) {
	t.Parallel()
	suite(t, TypeS3, s3Settings)
}

func TestGCSSinkConformance(t *testing.T) {
	t.Parallel()
	suite(t, TypeGCS, gcsSettings)
}

func TestAzureSinkConformance(t *testing.T) {
	t.Parallel()
	suite(t, TypeAzure, azureSettings)
}

// A file larger than the upload buffer (8 MiB) goes up in parts (an S3
// multipart upload, GCS resumable chunks, Azure blocks) and is complete
// under its name, every row in it.
func TestLargeFilesUploadInParts(t *testing.T) {
	t.Parallel()
	for typ, settings := range map[string]func(*testing.T) map[string]any{TypeS3: s3Settings, TypeGCS: gcsSettings, TypeAzure: azureSettings} {
		t.Run(typ, func(t *testing.T) {
			t.Parallel()
			model, err := mixer.CompileModel("mem:///item.json", []byte(connectortest.ItemSchema))
			if err != nil {
				t.Fatal(err)
			}
			s := openSink(t, system(typ, itemsRule(t, model, "items"), settings(t)), map[string]*mixer.Model{"item": model})
			const n = 12000
			recs := make([]mixer.TargetRecord, 0, n)
			noise := make([]byte, 512)
			for i := range n {
				_, _ = rand.Read(noise)
				id := json.Number(strconv.Itoa(i))
				recs = append(recs, mixer.TargetRecord{Location: "items", Op: mixer.OpUpsert,
					Fields: map[string]any{"id": id, "note": hex.EncodeToString(noise)}, Key: &mixer.SearchKey{Field: "id", Value: id},
					Origin: mixer.Origin{Model: "item", Entry: fmt.Sprintf("1700000000000-%d", i)}})
			}
			if err := s.Write(t.Context(), recs, nil); err != nil {
				t.Fatal(err)
			}
			if err := s.Flush(t.Context(), []connectors.Partition{{Model: "item"}}); err != nil {
				t.Fatal(err)
			}
			files, err := listDataset(t.Context(), s.st.bucket, s.st.prefix, "items")
			if err != nil || len(files) != 1 {
				t.Fatalf("files %v: %v", files, err)
			}
			data, err := s.st.bucket.ReadAll(t.Context(), files[0].key)
			if err != nil {
				t.Fatal(err)
			}
			rows, err := DecodeFile(data, files[0].key)
			if err != nil || len(rows) != n || len(data) < 9<<20 {
				t.Fatalf("%d bytes, %d rows of %d: %v", len(data), len(rows), n, err)
			}
		})
	}
}

// A store that is not there is refused at Open, saying which and why.
func TestOpenRefusesAMissingBucket(t *testing.T) {
	t.Parallel()
	for typ, settings := range map[string]func(*testing.T) map[string]any{TypeS3: s3Settings, TypeGCS: gcsSettings, TypeAzure: azureSettings} {
		t.Run(typ, func(t *testing.T) {
			t.Parallel()
			model, err := mixer.CompileModel("mem:///item.json", []byte(connectortest.ItemSchema))
			if err != nil {
				t.Fatal(err)
			}
			set := settings(t)
			name := SettingBucket
			if typ == TypeAzure {
				name = SettingContainer
			}
			set[name] = "remix-missing-" + strconv.Itoa(int(time.Now().UnixNano()%1e9))
			s, err := NewSink(system(typ, itemsRule(t, model, "items"), set), connectors.SinkDeps{Models: map[string]*mixer.Model{"item": model}})
			if err != nil {
				t.Fatal(err)
			}
			err = s.Open(t.Context())
			if err == nil || !errors.Is(err, connectors.ErrUnavailable) || !strings.Contains(err.Error(), "cannot be written") || !strings.Contains(err.Error(), set[name].(string)) {
				t.Fatalf("Open of a missing bucket: %v", err)
			}
			t.Log(err)
		})
	}
}
