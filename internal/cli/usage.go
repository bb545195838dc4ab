package cli

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"runtime/debug"
	"strconv"
	"strings"
)

// Usage describes a command for its help text.
type Usage struct {
	Synopsis string // "remix dlq list [flags]"
	Summary  string // what it does, a few lines
}

// Parse parses a command's flags. Positional arguments may come before,
// between or after the flags; they are returned in order. Help (-h,
// -help, --help) prints the command's usage and its own flags to stdout:
// done is set, with code 0. A bad flag prints the problem and the usage to
// stderr: done, code 2.
func Parse(fs *flag.FlagSet, u Usage, args []string, stdout, stderr io.Writer) (positional []string, done bool, code int) {
	fs.SetOutput(stderr)
	fs.Usage = func() {} // printed below, to the right stream
	for {
		err := fs.Parse(args)
		if errors.Is(err, flag.ErrHelp) {
			PrintUsage(fs, u, stdout)
			return nil, true, 0
		}
		if err != nil {
			PrintUsage(fs, u, stderr)
			return nil, true, 2
		}
		args = fs.Args()
		if len(args) == 0 {
			return positional, false, 0
		}
		positional = append(positional, args[0])
		args = args[1:]
	}
}

// PrintUsage writes a command's synopsis, summary and flags.
func PrintUsage(fs *flag.FlagSet, u Usage, w io.Writer) {
	fmt.Fprintf(w, "usage: %s\n", u.Synopsis)
	if u.Summary != "" {
		fmt.Fprintf(w, "\n%s\n", strings.TrimRight(u.Summary, "\n"))
	}
	n := 0
	fs.VisitAll(func(*flag.Flag) { n++ })
	if n == 0 {
		return
	}
	fmt.Fprintf(w, "\nflags:\n")
	out := fs.Output()
	fs.SetOutput(w)
	fs.PrintDefaults()
	fs.SetOutput(out)
}

// Version describes the build of a binary from the information the Go
// toolchain embeds: the module version, the commit and its time when the
// build had them, and the Go version.
func Version(binary string) string {
	info, ok := debug.ReadBuildInfo()
	if !ok {
		return binary + " (no build information)"
	}
	settings := map[string]string{}
	for _, s := range info.Settings {
		settings[s.Key] = s.Value
	}
	version := info.Main.Version
	if version == "" {
		version = "(devel)"
	}
	var parts []string
	if rev := settings["vcs.revision"]; rev != "" {
		commit := "commit " + rev[:min(12, len(rev))]
		if t := settings["vcs.time"]; t != "" {
			commit += " of " + t
		}
		if settings["vcs.modified"] == "true" {
			commit += ", with local changes"
		}
		parts = append(parts, commit)
	}
	parts = append(parts, info.GoVersion)
	return fmt.Sprintf("%s %s (%s)", binary, version, strings.Join(parts, ", "))
}

// Plural is "1 problem", "2 problems", "0 problems".
func Plural(n int, one, many string) string {
	if n == 1 {
		return "1 " + one
	}
	return strconv.Itoa(n) + " " + many
}
