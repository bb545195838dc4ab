package postgres

import (
	"fmt"
	"strings"
	"time"

	"github.com/sqlpipe/remix/config"
	"github.com/sqlpipe/remix/connectors"
)

// Type is the connector type name used in system files.
const Type = "postgresql"

// Setting names of a postgresql system.
const (
	SettingDSN              = "dsn"
	SettingReplicationDSN   = "replication_dsn"
	SettingMaxOpen          = "max_open_connections"
	SettingMaxIdle          = "max_idle_connections"
	SettingMaxIdleTime      = "max_connection_idle_time"
	SettingSlotName         = "slot_name"
	SettingPublicationName  = "publication_name"
	SettingInitialSnapshot  = "initial_snapshot"
	SettingSnapshotChunk    = "snapshot_chunk_rows"
	SettingStatusInterval   = "status_interval"
	SettingMaxTransactionMB = "max_buffered_transaction_mb"
	SettingFenceTable       = "fence_table"
	SettingLinger           = connectors.SettingLinger
)

// Spec describes a postgresql system's keys for the configuration loader.
func Spec() *config.Spec {
	return &config.Spec{
		Type:    Type,
		Receive: true,
		Push:    true,
		Settings: []config.SettingSpec{
			{Name: SettingDSN, Kind: config.KindSecret, Required: true, Doc: "connection string for queries and writes"},
			{Name: SettingReplicationDSN, Kind: config.KindSecret, Doc: "connection string for logical replication; defaults to dsn"},
			{Name: SettingMaxOpen, Kind: config.KindInt, Default: int64(10), Min: config.Float64(1), Doc: "pool size"},
			{Name: SettingMaxIdle, Kind: config.KindInt, Default: int64(2), Min: config.Float64(0), Doc: "idle connections kept warm (at most max_open_connections)"},
			{Name: SettingMaxIdleTime, Kind: config.KindDuration, Default: 30 * time.Minute, Min: config.Float64(1), Doc: "an idle connection is closed after this long"},
			{Name: SettingSlotName, Kind: config.KindString, Doc: "replication slot; defaults to remix_<system name> (see DefaultName)"},
			{Name: SettingPublicationName, Kind: config.KindString, Doc: "publication; defaults to remix_<system name> (see DefaultName)"},
			{Name: SettingInitialSnapshot, Kind: config.KindBool, Default: true, Doc: "copy the mapped tables before streaming changes"},
			{Name: SettingSnapshotChunk, Kind: config.KindInt, Default: int64(5000), Min: config.Float64(1), Doc: "rows read per snapshot query"},
			{Name: SettingStatusInterval, Kind: config.KindDuration, Default: 5 * time.Second, Min: config.Float64(0.1), Doc: "how often the replication status is sent (at most 10s)"},
			connectors.LingerSetting(),
			{Name: SettingFenceTable, Kind: config.KindString, Default: "public.remix_fences", Check: checkOptionalLocation, Doc: "target table (schema.table) of the pushers' fencing tokens, created if missing; \"\" turns fencing off"},
			{Name: SettingCopyMinRows, Kind: config.KindInt, Default: int64(64), Min: config.Float64(0), Doc: "a target's upserts of at least this many rows of one table are tried as a COPY first, written as upserts when a row exists already; 0 never copies"},
			{Name: SettingMaxTransactionMB, Kind: config.KindInt, Default: int64(64), Min: config.Float64(1), Doc: "a streamed transaction larger than this spills to a temporary file"},
		},
		ReceiveLocation: checkLocation,
		PushLocation:    checkLocation,
		Claims:          claims,
		Warn:            warn,
	}
}

// warn says what a loaded system's settings will not do as written.
func warn(sys *config.System) []string {
	return connectors.LingerWarnings(sys)
}

// checkOptionalLocation accepts "" or schema.table.
func checkOptionalLocation(loc string) error {
	if loc == "" {
		return nil
	}
	return checkLocation(loc)
}

// checkLocation requires schema.table.
func checkLocation(loc string) error {
	schema, table, ok := strings.Cut(loc, ".")
	if !ok || schema == "" || table == "" || strings.Contains(table, ".") {
		return fmt.Errorf("a PostgreSQL location is schema.table (for example public.%s)", strings.Trim(loc, "."))
	}
	return nil
}
