package mysql

import (
	"fmt"
	"strings"

	"github.com/go-mysql-org/go-mysql/mysql"
	"github.com/google/uuid"
)

// Positions are GTID sets, in the flavour of the server:
//
//   - MariaDB: one domain-server-sequence per replication domain
//     ("0-1-1042,1-7-33"), the last transaction of each domain applied;
//   - MySQL: server_uuid:intervals for every server that wrote
//     transactions ("3e11fa47-71ca-11e1-9e33-c80aa9429562:1-5042"), every
//     transaction applied.
//
// A source resumes by asking the server for every transaction not in its
// set, so the set names exactly what is durable downstream.

const (
	flavorMariaDB = mysql.MariaDBFlavor
	flavorMySQL   = mysql.MySQLFlavor
)

// gtidTracker keeps the executed GTID set as transactions commit.
type gtidTracker struct {
	flavor string
	set    mysql.GTIDSet
	// the GTID of the open transaction, added at its commit
	mariadb *mysql.MariadbGTID
	mysqlID uuid.UUID
	mysqlNo int64
	open    bool
}

func newTracker(flavor, set string) (*gtidTracker, error) {
	s, err := mysql.ParseGTIDSet(flavor, set)
	if err != nil {
		return nil, fmt.Errorf("GTID set %q: %w", set, err)
	}
	return &gtidTracker{flavor: flavor, set: s}, nil
}

// beginMariaDB starts a MariaDB transaction.
func (g *gtidTracker) beginMariaDB(id mysql.MariadbGTID) {
	c := id
	g.mariadb, g.open = &c, true
}

// beginMySQL starts a MySQL transaction.
func (g *gtidTracker) beginMySQL(sid []byte, gno int64) error {
	u, err := uuid.FromBytes(sid)
	if err != nil {
		return fmt.Errorf("GTID event with a bad server uuid: %w", err)
	}
	g.mysqlID, g.mysqlNo, g.open = u, gno, true
	return nil
}

// commit adds the open transaction to the set.
func (g *gtidTracker) commit() error {
	if !g.open {
		return nil
	}
	g.open = false
	switch s := g.set.(type) {
	case *mysql.MariadbGTIDSet:
		return s.AddSet(g.mariadb)
	case *mysql.MysqlGTIDSet:
		s.AddGTID(g.mysqlID, g.mysqlNo)
	}
	return nil
}

func (g *gtidTracker) String() string { return g.set.String() }

// lostMariaDB reports which domains of saved miss transactions that are
// gone from the server: oldest is the GTID position at the start of the
// oldest binary log still on the server (BINLOG_GTID_POS(file, 4)), the
// last transaction of each domain that was written before it. A domain
// whose last purged sequence number is beyond the saved one (or that the
// saved set lacks: it began after the source did) lost transactions.
func lostMariaDB(saved, oldest string) ([]string, error) {
	s, err := mysql.ParseMariadbGTIDSet(saved)
	if err != nil {
		return nil, fmt.Errorf("saved GTID set %q: %w", saved, err)
	}
	o, err := mysql.ParseMariadbGTIDSet(oldest)
	if err != nil {
		return nil, fmt.Errorf("oldest binary log position %q: %w", oldest, err)
	}
	var lost []string
	for domain, purged := range o.(*mysql.MariadbGTIDSet).Sets {
		for _, p := range purged {
			have := s.(*mysql.MariadbGTIDSet).Sets[domain]
			var mine uint64
			for _, h := range have {
				mine = max(mine, h.SequenceNumber)
			}
			if p.SequenceNumber > mine {
				lost = append(lost, p.String())
			}
		}
	}
	return lost, nil
}

// lostMySQL reports the transactions of purged (@@gtid_purged) that
// saved lacks: they were needed and are gone.
func lostMySQL(saved, purged string) (string, error) {
	s, err := mysql.ParseMysqlGTIDSet(saved)
	if err != nil {
		return "", fmt.Errorf("saved GTID set %q: %w", saved, err)
	}
	p, err := mysql.ParseMysqlGTIDSet(purged)
	if err != nil {
		return "", fmt.Errorf("@@gtid_purged %q: %w", purged, err)
	}
	if s.Contain(p) {
		return "", nil
	}
	var missing []string
	ps, ss := p.(*mysql.MysqlGTIDSet), s.(*mysql.MysqlGTIDSet)
	for sid, set := range ps.Sets {
		have := ss.Sets[sid]
		if have == nil || !have.Contain(set) {
			missing = append(missing, set.String())
		}
	}
	return strings.Join(missing, ","), nil
}
