package postgres

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"regexp"
	"strings"

	"github.com/jackc/pgx/v5/pgconn"

	"github.com/sqlpipe/remix/config"
)

// maxIdent is PostgreSQL's identifier length (NAMEDATALEN - 1); the server
// cuts longer names without a word.
const maxIdent = 63

// nameHashLen is how many hex digits of the system name's SHA-256 a derived
// name carries when the system name is not an identifier as it is.
const nameHashLen = 12

var (
	identRE = regexp.MustCompile(`^[a-z0-9_]{1,63}$`)
	plainRE = regexp.MustCompile(`^[a-z0-9_]+$`)
)

// DefaultName is the slot and publication name of a system that does not
// set slot_name or publication_name. A system name of lowercase letters,
// digits and '_' short enough to fit gives remix_ and the name, as it
// always has. Any other name (with '-', '.', capitals, or too long) gives
// remix_, the name lowercased with '-' and '.' as '_' and cut to fit, then
// '_' and 12 hex digits of the SHA-256 of the exact system name: shop-db and
// shop_db, or two long names that share their first 63 bytes, never meet
// on one slot.
func DefaultName(system string) string {
	if n := "remix_" + system; plainRE.MatchString(system) && len(n) <= maxIdent {
		return n
	}
	sum := sha256.Sum256([]byte(system))
	base := "remix_" + sanitizeName(system)
	if limit := maxIdent - 1 - nameHashLen; len(base) > limit {
		base = base[:limit]
	}
	return base + "_" + hex.EncodeToString(sum[:])[:nameHashLen]
}

// legacyName is the name earlier versions derived from every system name:
// the sanitised name, cut at 63 bytes. A source whose checkpoint names it
// keeps reading it (see Source.followLegacyName).
func legacyName(system string) string {
	n := "remix_" + sanitizeName(system)
	if len(n) > maxIdent {
		n = n[:maxIdent]
	}
	return n
}

func sanitizeName(system string) string {
	return strings.NewReplacer("-", "_", ".", "_").Replace(strings.ToLower(system))
}

// names returns the slot and publication a source system uses: its
// settings, or DefaultName.
func names(sys *config.System) (slot, pub string) {
	slot, pub = sys.Settings.String(SettingSlotName), sys.Settings.String(SettingPublicationName)
	if slot == "" {
		slot = DefaultName(sys.Name)
	}
	if pub == "" {
		pub = DefaultName(sys.Name)
	}
	return slot, pub
}

// claims tells the configuration loader which names a source takes, so two
// sources that would share a slot or a publication are refused offline. A
// slot name is unique in a PostgreSQL server (cluster), a publication name
// in a database. When the DSN cannot be read (a variable unset offline) the
// scope is unknown and the loader assumes the worst: the same server.
func claims(sys *config.System) []config.Claim {
	if sys.Receive == nil {
		return nil
	}
	slot, pub := names(sys)
	repl := sys.Settings.Secret(SettingReplicationDSN)
	if repl.IsZero() {
		repl = sys.Settings.Secret(SettingDSN)
	}
	server, _ := dsnScope(repl)
	_, database := dsnScope(sys.Settings.Secret(SettingDSN))
	return []config.Claim{
		{What: "replication slot", Name: slot, Scope: server, Key: SettingSlotName,
			Hint: "two sources on one slot confirm each other's changes, which are then lost; set slot_name on one of them"},
		{What: "publication", Name: pub, Scope: database, Key: SettingPublicationName,
			Hint: "two sources on one publication add their tables to each other's; set publication_name on one of them"},
	}
}

// dsnScope returns the server (host:port) and the database
// (host:port/dbname) a DSN points at, or "" when it cannot be read.
func dsnScope(dsn config.Secret) (server, database string) {
	if dsn.IsZero() {
		return "", ""
	}
	cfg, err := pgconn.ParseConfig(dsn.Reveal())
	if err != nil {
		return "", ""
	}
	server = fmt.Sprintf("%s:%d", strings.ToLower(cfg.Host), cfg.Port)
	return server, server + "/" + cfg.Database
}
