package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/aptflow/aptflow/api"
)

const tokenUsage = `usage:
  aptflow token create NAME [--scope admin|instruction|depot|lecture] [--procedure ID]... [--expires DURATION]
  aptflow token list
  aptflow token revoke ID|NAME
`

// runToken runs `aptflow token create|list|revoke`.
func runToken(ctx context.Context, cfg Config, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		fmt.Fprint(stderr, tokenUsage)
		return errUsage
	}
	var opts api.TokenOptions
	switch args[0] {
	case "create":
		var err error
		if opts, err = parseTokenCreate(args[1:], stderr); err != nil {
			return err
		}
	case "list", "revoke":
		if (args[0] == "list") != (len(args) == 1) || len(args) > 2 {
			fmt.Fprint(stderr, tokenUsage)
			return errUsage
		}
	default:
		fmt.Fprint(stderr, tokenUsage)
		return errUsage
	}
	pool, err := openPool(ctx, cfg, 2)
	if err != nil {
		return err
	}
	defer pool.Close()
	switch args[0] {
	case "create":
		token, err := api.NewToken(ctx, pool, opts)
		if err != nil {
			return err
		}
		fmt.Fprintln(stdout, token)
	case "list":
		list, err := api.ListTokens(ctx, pool)
		if err != nil {
			return err
		}
		printTokens(stdout, list)
	case "revoke":
		t, already, err := api.RevokeToken(ctx, pool, args[1])
		if err != nil {
			return err
		}
		if already {
			fmt.Fprintf(stdout, "token %d (%s) was already revoked on %s\n", t.ID, t.Name, t.RevokedAt.Format(time.RFC3339))
		} else {
			fmt.Fprintf(stdout, "revoked token %d (%s): every process refuses it within 2 seconds\n", t.ID, t.Name)
		}
	}
	return nil
}

// parseTokenCreate reads NAME and the flags of `token create`, in any
// order.
func parseTokenCreate(args []string, stderr io.Writer) (api.TokenOptions, error) {
	var o api.TokenOptions
	fs := flag.NewFlagSet("token create", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() { fmt.Fprint(stderr, tokenUsage) }
	scope := fs.String("scope", string(api.ScopeAdmin), "admin, instruction, depot or lecture")
	expires := fs.String("expires", "", "lifetime, e.g. 720h or 90d; default: none")
	fs.Func("procedure", "a procedure the token is limited to (repeat for several); default: every one", func(s string) error {
		id, err := strconv.ParseInt(s, 10, 64)
		if err != nil || id <= 0 {
			return errors.New("a procedure id is expected")
		}
		o.Procedures = append(o.Procedures, id)
		return nil
	})
	// flag stops at the first argument that is not a flag: NAME may stand
	// before the flags, after them or between.
	var names []string
	for {
		if err := fs.Parse(args); err != nil {
			return o, errUsage
		}
		if fs.NArg() == 0 {
			break
		}
		names, args = append(names, fs.Arg(0)), fs.Args()[1:]
	}
	if len(names) != 1 {
		fmt.Fprint(stderr, tokenUsage)
		return o, errUsage
	}
	o.Name, o.Scope = names[0], api.Scope(*scope)
	if *expires != "" {
		d, err := parseLifetime(*expires)
		if err != nil {
			return o, fmt.Errorf("--expires: %w", err)
		}
		o.Expires = d
	}
	return o, nil
}

// parseLifetime reads a Go duration (720h), or a number of days (90d).
func parseLifetime(s string) (time.Duration, error) {
	var d time.Duration
	var err error
	if days, ok := strings.CutSuffix(s, "d"); ok {
		var n int
		n, err = strconv.Atoi(days)
		d = time.Duration(n) * 24 * time.Hour
	} else {
		d, err = time.ParseDuration(s)
	}
	if err != nil || d <= 0 {
		return 0, fmt.Errorf("a positive duration such as 720h or 90d is expected, got %q", s)
	}
	return d, nil
}

// printTokens writes the tokens as a table: never the token itself, which
// is not stored.
func printTokens(w io.Writer, list []api.TokenInfo) {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tNAME\tSCOPE\tPROCEDURES\tCREATED\tLAST USED\tEXPIRES\tREVOKED")
	when := func(t *time.Time) string {
		if t == nil {
			return "-"
		}
		return t.Local().Format(time.RFC3339)
	}
	for _, t := range list {
		procs := "all"
		if t.Procedures != nil {
			var ids []string
			for _, id := range t.Procedures {
				ids = append(ids, strconv.FormatInt(id, 10))
			}
			procs = strings.Join(ids, ",")
		}
		fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", t.ID, t.Name, t.Scope, procs, when(&t.CreatedAt), when(t.LastUsedAt), when(t.ExpiresAt), when(t.RevokedAt))
	}
	tw.Flush()
}
