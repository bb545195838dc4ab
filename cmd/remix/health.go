package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"
)

const healthcheckUsage = `usage: remix healthcheck [--timeout 3s] URL

Asks a Remix process's /healthz or /readyz and exits 0 when it answers 2xx,
1 when it answers anything else or nothing, 2 on bad usage. It prints the
status and the start of the answer (the /readyz reasons). The image has no
curl or wget: container health checks run this, e.g.
  remix healthcheck http://127.0.0.1:8080/readyz
`

// healthcheckBody bounds what is read and printed of an answer: enough for
// the /readyz lines of every system, small enough for a health log.
const healthcheckBody = 4 << 10

// healthcheck is the container health check: one GET, no proxy, no
// redirects followed.
func healthcheck(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("remix healthcheck", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprint(fs.Output(), healthcheckUsage, "\nflags:\n")
		fs.PrintDefaults()
	}
	timeout := fs.Duration("timeout", 3*time.Second, "how long to wait for the whole answer")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	if fs.NArg() != 1 {
		fmt.Fprint(stderr, healthcheckUsage)
		return 2
	}
	u, err := url.Parse(fs.Arg(0))
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		fmt.Fprintf(stderr, "remix healthcheck: %q is not an http(s) URL with a host\n", fs.Arg(0))
		return 2
	}
	if *timeout <= 0 {
		fmt.Fprintln(stderr, "remix healthcheck: --timeout must be positive")
		return 2
	}
	ctx, cancel := context.WithTimeout(ctx, *timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	if err != nil {
		fmt.Fprintf(stderr, "remix healthcheck: %v\n", err)
		return 2
	}
	client := &http.Client{
		// The check talks to the process itself: a proxy from the
		// environment is not in the way, and a redirect is not health.
		Transport:     &http.Transport{Proxy: nil, DisableKeepAlives: true},
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
	resp, err := client.Do(req)
	if err != nil {
		fmt.Fprintf(stderr, "remix healthcheck: %v\n", err)
		return 1
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, healthcheckBody))
	fmt.Fprintln(stdout, resp.Status)
	if text := strings.TrimRight(string(body), "\n"); text != "" {
		fmt.Fprintln(stdout, text)
	}
	if err != nil {
		fmt.Fprintf(stderr, "remix healthcheck: reading the answer: %v\n", err)
		return 1
	}
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return 1
	}
	return 0
}
