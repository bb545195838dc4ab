// Package stores is the table of the object stores a binary can open, by
// system type, and the settings they share with package blob. The cloud
// stores (package cloud: S3, GCS, Azure Blob) add themselves to it when a
// binary imports them; the file store is always there, in package blob.
// The table sits in a package of its own, below both, so that a binary that
// writes no dataset (the ingest) links none of the cloud SDKs: they take a
// binary from 58 to 110 MB and its resident memory at rest from about 19
// to 45 MB. This is the database/sql way of choosing drivers, by import in
// main; the connectors themselves stay in one explicit registry
// (connectors/builtin).
package stores

import (
	"context"
	"sync"

	"gocloud.dev/blob"

	"github.com/sqlpipe/remix/config"
)

// The cloud store types (the system types of package blob).
const (
	TypeS3    = "s3"
	TypeGCS   = "gcs"
	TypeAzure = "azure_blob"
)

// The settings of the cloud stores (package blob documents them).
const (
	SettingBucket          = "bucket"
	SettingContainer       = "container"
	SettingRegion          = "region"
	SettingEndpoint        = "endpoint"
	SettingPathStyle       = "path_style"
	SettingAccessKeyID     = "access_key_id"
	SettingSecretAccessKey = "secret_access_key"
	SettingCredentialsFile = "credentials_file"
	SettingAccount         = "account"
	SettingKey             = "key"
	SettingConnection      = "connection_string"
)

// Opener opens the bucket of a system from its settings, and names it for
// messages (s3://bucket, an emulator's address) even when it fails.
type Opener func(ctx context.Context, s config.Settings) (*blob.Bucket, string, error)

var (
	mu      sync.RWMutex
	openers = map[string]Opener{}
)

// Register makes a store type openable; package cloud calls it from init.
func Register(typ string, open Opener) {
	mu.Lock()
	defer mu.Unlock()
	openers[typ] = open
}

// Lookup returns the opener of a store type, if this binary has it.
func Lookup(typ string) (Opener, bool) {
	mu.RLock()
	defer mu.RUnlock()
	open, ok := openers[typ]
	return open, ok
}
