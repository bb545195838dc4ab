package mysql

import (
	"fmt"
	"hash/crc32"
	"strconv"
	"strings"
	"time"

	"github.com/sqlpipe/remix/config"
	"github.com/sqlpipe/remix/connectors"
)

// Type is the connector type name used in system files.
const Type = "mysql"

// Setting names of a mysql system.
const (
	SettingDSN            = "dsn"
	SettingMaxOpen        = "max_open_connections"
	SettingMaxIdle        = "max_idle_connections"
	SettingMaxIdleTime    = "max_connection_idle_time"
	SettingServerID       = "server_id"
	SettingInitialSnap    = "initial_snapshot"
	SettingSnapshotChunk  = "snapshot_chunk_rows"
	SettingWatermarkTable = "watermark_table"
	SettingFenceTable     = "fence_table"
	SettingHeartbeat      = "heartbeat_interval"
	SettingLinger         = connectors.SettingLinger
)

// Spec describes a mysql system's keys for the configuration loader.
func Spec() *config.Spec {
	return &config.Spec{
		Type:    Type,
		Receive: true,
		Push:    true,
		Settings: []config.SettingSpec{
			{Name: SettingDSN, Kind: config.KindSecret, Required: true, Doc: "user:password@tcp(host:port)/database?params (the Go driver's form) or mysql://user:password@host:port/database"},
			{Name: SettingMaxOpen, Kind: config.KindInt, Default: int64(10), Min: config.Float64(1), Doc: "pool size"},
			{Name: SettingMaxIdle, Kind: config.KindInt, Default: int64(2), Min: config.Float64(0), Doc: "idle connections kept open (at most max_open_connections)"},
			{Name: SettingMaxIdleTime, Kind: config.KindDuration, Default: 30 * time.Minute, Min: config.Float64(1), Doc: "an idle connection is closed after this long"},
			{Name: SettingServerID, Kind: config.KindInt, Min: config.Float64(0), Doc: "server_id of the replication client, unique among the server's replicas; unset or 0: DefaultServerID(system name)"},
			{Name: SettingInitialSnap, Kind: config.KindBool, Default: true, Doc: "copy the mapped tables (without locks, reconciled with the binary log) before streaming only"},
			{Name: SettingSnapshotChunk, Kind: config.KindInt, Default: int64(2000), Min: config.Float64(1), Doc: "rows read per snapshot chunk"},
			{Name: SettingWatermarkTable, Kind: config.KindString, Default: "remix_watermarks", Check: checkTableName, Doc: "source table (database.table, or a table of the dsn's database) where the snapshot writes its watermarks, created if missing"},
			{Name: SettingFenceTable, Kind: config.KindString, Default: "remix_fences", Check: checkOptionalTable, Doc: "target table (database.table, or a table of the dsn's database) of the pushers' fencing tokens, created if missing; \"\" turns fencing off"},
			{Name: SettingHeartbeat, Kind: config.KindDuration, Default: 5 * time.Second, Min: config.Float64(0.1), Doc: "how often an idle server sends a heartbeat on the replication connection"},
			connectors.LingerSetting(),
		},
		ReceiveLocation: checkLocation,
		PushLocation:    checkLocation,
		Claims:          claims,
		Warn:            connectors.LingerWarnings,
	}
}

// DefaultServerID is the server_id of a source that does not set one:
// 1 073 741 824 (2^30) plus the CRC-32 (IEEE) of the system name modulo
// 2^30. It stays clear of the small numbers servers are usually given,
// and two system names rarely meet on one id; a clash is refused at start
// (see Source.checkServerID) and by `remix validate` for two sources on
// one server.
func DefaultServerID(system string) uint32 {
	return 1<<30 + crc32.ChecksumIEEE([]byte(system))%(1<<30)
}

// serverID is the replication client id of a source system.
func serverID(sys *config.System) uint32 {
	if id := sys.Settings.Int(SettingServerID); id > 0 && id <= 1<<32-1 {
		return uint32(id)
	}
	return DefaultServerID(sys.Name)
}

// checkLocation requires database.table.
func checkLocation(loc string) error {
	db, table, ok := strings.Cut(loc, ".")
	if !ok || db == "" || table == "" || strings.Contains(table, ".") {
		return fmt.Errorf("a MySQL location is database.table (for example shop.%s)", strings.Trim(loc, "."))
	}
	return nil
}

// checkTableName accepts table or database.table.
func checkTableName(name string) error {
	if name == "" || strings.HasPrefix(name, ".") || strings.HasSuffix(name, ".") || strings.Count(name, ".") > 1 {
		return fmt.Errorf("a table is database.table, or a table name of the dsn's database")
	}
	return nil
}

func checkOptionalTable(name string) error {
	if name == "" {
		return nil
	}
	return checkTableName(name)
}

// claims tells the configuration loader that a source takes a server_id
// on its server: two sources with one id would cut each other's
// replication connection (the server keeps one client per id).
func claims(sys *config.System) []config.Claim {
	if sys.Receive == nil {
		return nil
	}
	scope := ""
	if cfg, err := parseDSN(sys.Settings.Secret(SettingDSN)); err == nil {
		scope = strings.ToLower(cfg.Addr)
	}
	return []config.Claim{{What: "replication server_id", Name: strconv.FormatUint(uint64(serverID(sys)), 10), Scope: scope, Key: SettingServerID,
		Hint: "the server keeps one replication client per server_id: two sources with one id disconnect each other; set server_id on one of them"}}
}
