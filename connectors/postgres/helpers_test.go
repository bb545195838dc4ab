package postgres

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/sqlpipe/remix/config"
	"github.com/sqlpipe/remix/connectors"
	"github.com/sqlpipe/remix/mixer"
)

// testSystem builds a postgresql system the way the loader would, with
// the spec's defaults.
func testSystem(name, dsn string, recv *mixer.Receiver, push *mixer.PushMixer, settings map[string]any) *config.System {
	s := &config.System{Name: name, Type: Type, Spec: Spec(), Settings: config.Settings{}, Receive: recv, Push: push}
	for _, st := range Spec().Settings {
		if st.Default != nil {
			s.Settings[st.Name] = config.Setting{Value: st.Default}
		}
	}
	s.Settings[SettingDSN] = config.Setting{Value: config.NewSecret(dsn), Set: true}
	for k, v := range settings {
		s.Settings[k] = config.Setting{Value: v, Set: true}
	}
	return s
}

// openSink opens a sink of system "target" that pushes model to loc
// with fields, closed when the test ends; the push rule makes records.
func openSink(tb testing.TB, url string, model *mixer.Model, loc string, fields []mixer.PushField) (*Sink, *mixer.PushRule) {
	tb.Helper()
	return openSinkWith(tb, url, model, loc, fields, nil)
}

// openSinkWith is openSink with settings of the target system.
func openSinkWith(tb testing.TB, url string, model *mixer.Model, loc string, fields []mixer.PushField, settings map[string]any) (*Sink, *mixer.PushRule) {
	tb.Helper()
	rule, err := mixer.NewPushRule(model, loc, fields)
	if err != nil {
		tb.Fatal(err)
	}
	push := mixer.NewPushMixer()
	push.Add(model.Title, rule)
	sink, _ := NewSink(testSystem("target", url, nil, push, settings), connectors.SinkDeps{})
	if err := sink.Open(context.Background()); err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { sink.Close(context.Background()) })
	return sink.(*Sink), rule
}

func connect(t testing.TB, url string) *pgx.Conn {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close(context.Background()) })
	return conn
}

func exec(t testing.TB, conn *pgx.Conn, sql ...string) {
	t.Helper()
	for _, q := range sql {
		if _, err := conn.Exec(context.Background(), q); err != nil {
			t.Fatalf("%s: %v", strings.TrimSpace(q), err)
		}
	}
}

// rowJSON reads one row as JSON values (numbers as json.Number).
func rowJSON(ctx context.Context, conn *pgx.Conn, query string, args ...any) (map[string]any, bool, error) {
	var raw []byte
	err := conn.QueryRow(ctx, query, args...).Scan(&raw)
	if err == pgx.ErrNoRows {
		return nil, false, nil
	}
	if err != nil {
		return nil, false, err
	}
	dec := json.NewDecoder(strings.NewReader(string(raw)))
	dec.UseNumber()
	var m map[string]any
	if err := dec.Decode(&m); err != nil {
		return nil, false, err
	}
	return m, true, nil
}
