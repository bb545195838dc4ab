package bench

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// BenchmarkTargetWrite: what one large batch costs the target server per
// row, written the way the PostgreSQL sink upserts (text arrays, unnest
// and one INSERT ... ON CONFLICT), through COPY into a temporary table and
// one merge, and, for new rows only, as a plain INSERT from unnest and as
// the sink's COPY straight into the table (text format); 20 batches of
// 5 000 rows, first as inserts, then again as updates of the same rows
// (the upsert and the merge). The server's CPU is read from /proc for the
// backend that runs them.
func BenchmarkTargetWrite(b *testing.B) {
	sv := startServers(b)
	s := sv.newSetup(b)
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, s.dstURL)
	if err != nil {
		b.Fatal(err)
	}
	defer conn.Close(ctx)
	var pid int
	conn.QueryRow(ctx, `SELECT pg_backend_pid()`).Scan(&pid)
	for _, t := range []string{"items_copy", "items_plain", "items_copyin"} {
		if _, err := conn.Exec(ctx, `CREATE TABLE `+t+` (LIKE items INCLUDING ALL)`); err != nil {
			b.Fatal(err)
		}
	}
	const batch, batches = 5000, 20
	at := time.Now().UTC().Format(time.RFC3339Nano)
	cols := func(first, round int) [][]string {
		c := make([][]string, 5)
		for i := first; i < first+batch; i++ {
			c[0] = append(c[0], strconv.Itoa(i))
			c[1] = append(c[1], "item "+strconv.Itoa(i+round))
			c[2] = append(c[2], strconv.Itoa(i%1000))
			c[3] = append(c[3], fmt.Sprintf("%d.%02d", i/100, i%100))
			c[4] = append(c[4], at)
		}
		return c
	}
	const set = ` ON CONFLICT (id) DO UPDATE SET name = EXCLUDED.name, qty = EXCLUDED.qty, price = EXCLUDED.price, created_at = EXCLUDED.created_at`
	upsert := `INSERT INTO items AS t (id, name, qty, price, created_at) SELECT u.c0::bigint, u.c1::text, u.c2::int, u.c3::numeric, u.c4::timestamptz
		FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[]) AS u(c0, c1, c2, c3, c4)` + set
	merge := `INSERT INTO items_copy AS t (id, name, qty, price, created_at) SELECT id::bigint, name, qty::int, price::numeric, created_at::timestamptz FROM remix_load` + set
	plain := `INSERT INTO items_plain (id, name, qty, price, created_at) SELECT u.c0::bigint, u.c1::text, u.c2::int, u.c3::numeric, u.c4::timestamptz
		FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[]) AS u(c0, c1, c2, c3, c4)`
	write := map[string]func(pgx.Tx, [][]string) error{
		"unnest insert": func(tx pgx.Tx, c [][]string) error {
			_, err := tx.Exec(ctx, plain, c[0], c[1], c[2], c[3], c[4])
			return err
		},
		"COPY in": func(tx pgx.Tx, c [][]string) error {
			var text strings.Builder
			for i := range c[0] {
				fmt.Fprintf(&text, "%s\t%s\t%s\t%s\t%s\n", c[0][i], c[1][i], c[2][i], c[3][i], c[4][i])
			}
			_, err := tx.Conn().PgConn().CopyFrom(ctx, strings.NewReader(text.String()), `COPY items_copyin (id, name, qty, price, created_at) FROM STDIN`)
			return err
		},
		"unnest upsert": func(tx pgx.Tx, c [][]string) error {
			_, err := tx.Exec(ctx, upsert, c[0], c[1], c[2], c[3], c[4])
			return err
		},
		"COPY and merge": func(tx pgx.Tx, c [][]string) error {
			if _, err := tx.Exec(ctx, `CREATE TEMP TABLE IF NOT EXISTS remix_load (id text, name text, qty text, price text, created_at text) ON COMMIT DELETE ROWS`); err != nil {
				return err
			}
			rows := make([][]any, len(c[0]))
			for i := range rows {
				rows[i] = []any{c[0][i], c[1][i], c[2][i], c[3][i], c[4][i]}
			}
			if _, err := tx.CopyFrom(ctx, pgx.Identifier{"remix_load"}, []string{"id", "name", "qty", "price", "created_at"}, pgx.CopyFromRows(rows)); err != nil {
				return err
			}
			_, err := tx.Exec(ctx, merge)
			return err
		},
	}
	for round, what := range []string{"inserts", "updates"} {
		var line []string
		for _, method := range []string{"unnest upsert", "COPY and merge", "unnest insert", "COPY in"} {
			if round > 0 && (method == "unnest insert" || method == "COPY in") {
				continue
			}
			_, before, _ := procStat(pid)
			for i := 0; i < batches; i++ {
				tx, err := conn.Begin(ctx)
				if err != nil {
					b.Fatal(err)
				}
				if err := write[method](tx, cols(i*batch, round)); err != nil {
					b.Fatal(err)
				}
				if err := tx.Commit(ctx); err != nil {
					b.Fatal(err)
				}
			}
			_, after, _ := procStat(pid)
			line = append(line, fmt.Sprintf("%s %.1f", method, perRow(after-before, batch*batches)))
		}
		fmt.Printf("target server CPU µs/row, batches of %d, %s: %s\n", batch, what, line)
		record("target server CPU µs/row for batches of 5 000 rows", "remix", what+": "+strings.Join(line, ", "))
	}
}
