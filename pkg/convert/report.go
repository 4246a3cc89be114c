package convert

import (
	"errors"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
)

// WriteReport writes what became of one BuildConfig: the Build and its
// strategy, then a table of every field and where it went, the fields only
// the BuildConfig keeps first.
func WriteReport(w io.Writer, r *Result) error {
	var b strings.Builder
	if len(r.Errors) > 0 {
		fmt.Fprintf(&b, "BuildConfig %s (%s): not converted:\n", r.Doc.Name(), r.Doc.Origin)
		for _, e := range r.Errors {
			fmt.Fprintf(&b, "  InvalidInput: %s\n", e)
		}
		_, err := io.WriteString(w, b.String())
		return err
	}
	build := r.Build.Metadata.Name
	if ns := r.Build.Metadata.Namespace; ns != "" {
		build = ns + "/" + build
	}
	fmt.Fprintf(&b, "BuildConfig %s (%s) -> Build %s, strategy %s", r.Doc.Name(), r.Doc.Origin, build, r.Build.Spec.Strategy.Name)
	switch {
	case !r.RunsBuildConfig():
		b.WriteString(": nothing stays with the BuildConfig\n")
	case r.BuildConfig != nil:
		b.WriteString(": runs the BuildConfig, written before it\n")
	default:
		b.WriteString(": runs the BuildConfig, which exists already\n")
	}
	tw := tabwriter.NewWriter(&b, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "  FIELD\tWHERE IT WENT")
	// The fields that made the Build run the BuildConfig come first.
	rank := func(e Entry) int {
		switch {
		case e.How == Kept && e.Dest != "the BuildConfig":
			return 0
		case e.How == Kept:
			return 1
		case e.How == Mapped:
			return 2
		}
		return 3
	}
	for pass := 0; pass < 4; pass++ {
		for _, e := range r.Entries {
			if rank(e) != pass {
				continue
			}
			var dest string
			switch e.How {
			case Mapped:
				dest = e.Dest
			case Kept:
				dest = "BuildConfig only: " + e.Dest
				if e.Dest == "the BuildConfig" {
					dest = "BuildConfig"
				}
			case Ignored:
				dest = "not converted: " + e.Dest
			}
			fmt.Fprintf(tw, "  %s\t%s\n", e.Path, dest)
		}
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	for _, wn := range r.Warnings {
		fmt.Fprintf(&b, "  warning: %s\n", wn)
	}
	_, err := io.WriteString(w, b.String())
	return err
}

func joinErrors(errs []error) error { return errors.Join(errs...) }
