package blob

import (
	"fmt"
	"slices"
	"sort"
	"strings"

	"github.com/sqlpipe/remix/config"
	"github.com/sqlpipe/remix/mixer"
)

// Dataset describes one dataset of a blob system: where its files are and
// the queries that turn its changes into its current table.
type Dataset struct {
	Location string
	Models   []string // the models pushed to it
	Format   string
	// Columns are the data columns and their types, as DuckDB spells them.
	Columns [][2]string
	layout  *layout
}

// Datasets lists the datasets a blob system writes, by location.
func Datasets(sys *config.System, models map[string]*mixer.Model) ([]Dataset, error) {
	layouts, problems := layoutsOf(sys, models)
	if len(problems) > 0 {
		return nil, problems
	}
	var out []Dataset
	for loc, l := range layouts {
		d := Dataset{Location: loc, Format: sys.Settings.String(SettingFormat), layout: l}
		for _, m := range sys.Push.Models() {
			for _, r := range sys.Push.Rules(m) {
				if r.Location() == loc && !slices.Contains(d.Models, m) {
					d.Models = append(d.Models, m)
				}
			}
		}
		for _, c := range l.columns {
			d.Columns = append(d.Columns, [2]string{c.name, c.typeName()})
		}
		out = append(out, d)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Location < out[j].Location })
	return out, nil
}

// Folder is where a dataset's files are, inside the system's store:
// s3://bucket/prefix/people/, a local path for a file system.
func Folder(sys *config.System, location string) string {
	s := sys.Settings
	prefix := strings.Trim(s.String(SettingPrefix), "/")
	if prefix != "" {
		prefix += "/"
	}
	switch sys.Type {
	case TypeS3:
		return "s3://" + s.String(SettingBucket) + "/" + prefix + location + "/"
	case TypeGCS:
		return "gs://" + s.String(SettingBucket) + "/" + prefix + location + "/"
	case TypeAzure:
		return "az://" + s.String(SettingContainer) + "/" + prefix + location + "/"
	}
	return strings.TrimSuffix(s.String(SettingPath), "/") + "/" + location + "/"
}

func quoteIdent(s string) string { return `"` + strings.ReplaceAll(s, `"`, `""`) + `"` }

func quoteString(s string) string { return "'" + strings.ReplaceAll(s, "'", "''") + "'" }

// DuckDBSource is the DuckDB table function that reads the change files
// under folder (ending in /) as they are.
func (d Dataset) DuckDBSource(folder string) string {
	if d.Format == FormatJSONL {
		cols := make([]string, 0, len(d.Columns)+9)
		for _, c := range d.Columns {
			cols = append(cols, quoteString(c[0])+": "+quoteString(c[1]))
		}
		for _, m := range [][2]string{{ColOp, "VARCHAR"}, {ColKey, "VARCHAR"}, {ColVersion, "DECIMAL(38,0)"},
			{ColCommitted, "TIMESTAMP WITH TIME ZONE"}, {ColCreated, "BOOLEAN"}, {ColAbsent, "VARCHAR[]"},
			{ColSource, "VARCHAR"}, {ColPosition, "VARCHAR"}, {ColSystem, "VARCHAR"}} {
			cols = append(cols, quoteString(m[0])+": "+quoteString(m[1]))
		}
		return fmt.Sprintf("read_json(%s, format = 'newline_delimited', compression = 'gzip', columns = {%s})",
			quoteString(folder+"**/*.jsonl.gz"), strings.Join(cols, ", "))
	}
	return fmt.Sprintf("read_parquet(%s, union_by_name = true, hive_partitioning = false)", quoteString(folder+"**/*.parquet"))
}

// DuckDBQuery is the latest-state query in DuckDB: the dataset's current
// table, one row per key with each column's latest value (a column a
// change did not carry keeps the value before it), keys whose latest
// change is a delete left out, and nothing from before the last truncate.
func (d Dataset) DuckDBQuery(folder string) string {
	return d.latestQuery("SELECT * FROM "+d.DuckDBSource(folder), "arg_max", "{'v': %s}", "list_contains", quoteIdent)
}

// SparkQuery is the same query in Spark SQL (Databricks), reading the
// folder as a Parquet table.
func (d Dataset) SparkQuery(folder string) string {
	src := "SELECT * FROM parquet.`" + folder + "`"
	if d.Format == FormatJSONL {
		src = "SELECT * FROM json.`" + folder + "`"
	}
	return d.latestQuery(src, "max_by", "named_struct('v', %s)", "array_contains", quoteSpark)
}

func quoteSpark(s string) string { return "`" + strings.ReplaceAll(s, "`", "``") + "`" }

func (d Dataset) latestQuery(source, maxBy, wrap, contains string, quote func(string) string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "WITH changes AS (%s),\n", source)
	fmt.Fprintf(&b, "since AS (SELECT coalesce(max(_remix_version) FILTER (WHERE _remix_op = 'truncate'), 0) AS v FROM changes),\n")
	fmt.Fprintf(&b, "latest AS (\n  SELECT _remix_key,\n    %s(_remix_op, _remix_version) AS _remix_op", maxBy)
	for _, c := range d.Columns {
		q := quote(c[0])
		fmt.Fprintf(&b, ",\n    %s(%s, _remix_version) FILTER (WHERE NOT %s(_remix_absent, %s)) AS %s",
			maxBy, fmt.Sprintf(wrap, q), contains, quoteString(c[0]), q)
	}
	b.WriteString("\n  FROM changes WHERE _remix_op <> 'truncate' AND _remix_version > (SELECT v FROM since)\n  GROUP BY _remix_key)\nSELECT ")
	for i, c := range d.Columns {
		if i > 0 {
			b.WriteString(", ")
		}
		q := quote(c[0])
		fmt.Fprintf(&b, "%s.v AS %s", q, q)
	}
	b.WriteString("\nFROM latest WHERE _remix_op = 'upsert'")
	return b.String()
}
