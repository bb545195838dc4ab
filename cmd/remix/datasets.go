package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"slices"
	"strings"

	"github.com/sqlpipe/remix/connectors/blob"
	"github.com/sqlpipe/remix/internal/cli"
)

var datasetsUsage = cli.Usage{Synopsis: "remix datasets [--system S] [--query duckdb|spark] [--format text|json] [flags]",
	Summary: `Lists the datasets of every blob system (s3, gcs, azure_blob, file): where each model's files
are, how many files and rows they hold, their first and last day, and their epoch (truncates).
--query prints, for each dataset, the query that turns its change files into its current table.
Exit status: 0 listed, 1 a store could not be read, 2 bad usage.`}

// datasets prints what each dataset of the blob systems holds.
func datasets(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("remix datasets", flag.ContinueOnError)
	var common cli.Common
	common.RegisterConfig(fs)
	system := fs.String("system", "", "only this system")
	query := fs.String("query", "", "print the latest-state query of each dataset: duckdb or spark")
	format := fs.String("format", "text", "text or json")
	rest, done, code := cli.Parse(fs, datasetsUsage, args, stdout, stderr)
	if done {
		return code
	}
	if len(rest) > 0 || (*query != "" && *query != "duckdb" && *query != "spark") || (*format != "text" && *format != "json") {
		fmt.Fprintf(stderr, "remix datasets: bad arguments\n")
		return 2
	}
	cfg, err := common.Load()
	if err != nil {
		fmt.Fprintf(stderr, "remix datasets: %v\n", err)
		return 1
	}
	type view struct {
		System string `json:"system"`
		Type   string `json:"type"`
		blob.Inventory
		Query string `json:"query,omitempty"`
	}
	var out []view
	found := false
	for _, sys := range cfg.Systems {
		if !slices.Contains(blob.Types(), sys.Type) || sys.Push == nil || (*system != "" && sys.Name != *system) {
			continue
		}
		found = true
		invs, err := blob.Take(ctx, sys, cfg.Models)
		if err != nil {
			fmt.Fprintf(stderr, "remix datasets: %s: %v\n", sys.Name, err)
			return 1
		}
		for _, inv := range invs {
			v := view{System: sys.Name, Type: sys.Type, Inventory: inv}
			switch *query {
			case "duckdb":
				v.Query = inv.DuckDBQuery(inv.Folder)
			case "spark":
				v.Query = inv.SparkQuery(inv.Folder)
			}
			out = append(out, v)
		}
	}
	if !found {
		fmt.Fprintf(stderr, "remix datasets: no blob system with a push mixer%s\n", map[bool]string{true: " named " + *system}[*system != ""])
		return 1
	}
	if *format == "json" {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		if err := enc.Encode(out); err != nil {
			return 1
		}
		return 0
	}
	for _, v := range out {
		days := "no files yet"
		if v.First != "" {
			days = v.First + " to " + v.Last
		}
		fmt.Fprintf(stdout, "%s.%s (%s)  %s\n  %s, %s, %s of %s, %s; epoch %d\n", v.System, v.Location, strings.Join(v.Models, ", "), v.Folder,
			cli.Plural(v.Files, "file", "files"), cli.Plural(int(v.Rows), "row", "rows"), humanBytes(v.Bytes), v.Format, days, v.Epoch)
		if v.Unfinished > 0 {
			fmt.Fprintf(stdout, "  %s left by a writer that stopped (readers skip them; delete at will)\n", cli.Plural(v.Unfinished, "temporary file", "temporary files"))
		}
		if v.Query != "" {
			fmt.Fprintf(stdout, "\n%s;\n\n", v.Query)
		}
	}
	return 0
}

func humanBytes(n int64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	div, exp := int64(unit), 0
	for m := n / unit; m >= unit; m /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f %ciB", float64(n)/float64(div), "KMGTPE"[exp])
}
