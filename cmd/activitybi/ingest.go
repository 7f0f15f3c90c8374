package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"golang.org/x/term"

	"github.com/activitybi/activitybi/internal/event"
	"github.com/activitybi/activitybi/internal/spool"
	"github.com/activitybi/activitybi/internal/upload"
)

// Ingest limits and pacing.
const (
	ingestChunkRecords = 1000    // records per spool append
	ingestChunkBytes   = 1 << 20 // bytes per spool append
	ingestMaxErrors    = 100     // rejected lines printed before summarising
	backpressureWait   = 100 * time.Millisecond
	backpressureNote   = 10 * time.Second // how often to say we are still waiting
	progressEvery      = 200 * time.Millisecond
)

func (a *app) ingestCmd() *cobra.Command {
	var rejectsPath string
	var source string
	cmd := &cobra.Command{
		Use:   "ingest [FILE|-]",
		Short: "Ingest NDJSON events from a file or stdin",
		Long: `Read ActivitySchema events, one JSON object per line, and append them to the
spool. Each line may carry activity_id, ts, customer, activity,
anonymous_customer_id, feature_json, revenue_impact and link; a line without a
customer gets the configured identity. Events that carry an activity_id are
idempotent: ingesting the same file twice adds no rows.

A bad line is reported with its line number and reason and the good lines are
kept; the exit status is 1 when any line was rejected. At the backpressure
limit ingest waits for the uploader instead of failing.`,
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if !event.ValidSource(source) {
				return fmt.Errorf("--source: %q is not one of %s", source, strings.Join(event.Sources(), ", "))
			}
			name := "-"
			if len(args) == 1 {
				name = args[0]
			}
			var r io.Reader = a.stdin
			var size int64 = -1
			var inputInfo os.FileInfo
			if f, ok := a.stdin.(*os.File); ok && name == "-" {
				inputInfo, _ = f.Stat()
			}
			if name != "-" {
				f, err := os.Open(name)
				if err != nil {
					return err
				}
				defer f.Close()
				if st, err := f.Stat(); err == nil {
					inputInfo = st
					if st.Mode().IsRegular() {
						size = st.Size()
					}
				}
				r = f
			}
			var rejects *bufio.Writer
			var rejectsFile *os.File
			if rejectsPath != "" {
				// Opening it truncates it: never the file being read.
				if st, err := os.Stat(rejectsPath); err == nil && inputInfo != nil && inputInfo.Mode().IsRegular() && os.SameFile(st, inputInfo) {
					return fmt.Errorf("--rejects %s is the input file; writing the rejected lines there would erase it: name another file", rejectsPath)
				}
				f, err := os.OpenFile(rejectsPath, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o600)
				if err != nil {
					return err
				}
				defer f.Close()
				rejects, rejectsFile = bufio.NewWriter(f), f
			}
			w, err := a.openSpool()
			if err != nil {
				return err
			}
			in := &ingester{a: a, w: w, src: source, name: name, size: size, start: time.Now(),
				// A chunk must fit under the backpressure limit to ever be accepted.
				chunkMax: max(1, min(ingestChunkRecords, a.cfg.Spool.MaxPending/2))}
			in.tty = size > 0 && isTerminal(a.stderr)
			if rejects != nil {
				in.rejects = rejects
			}
			runErr := in.run(cmd, r)
			closeErr := w.Close()
			var rejectsErr error
			if rejects != nil {
				// The rejected lines are kept only there: say when they are not.
				rejectsErr = rejects.Flush()
				if cerr := rejectsFile.Close(); rejectsErr == nil {
					rejectsErr = cerr
				}
			}
			in.summary()
			if runErr != nil {
				return runErr
			}
			if closeErr != nil {
				return closeErr
			}
			if rejectsErr != nil {
				return fmt.Errorf("--rejects %s: the rejected lines were not all written: %w", rejectsPath, rejectsErr)
			}
			if in.rejected > 0 {
				return &exitError{code: 1}
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&rejectsPath, "rejects", "", "write rejected lines with their reasons to this NDJSON file")
	cmd.Flags().StringVar(&source, "source", event.SourceImport, "the _source column of ingested events")
	return cmd
}

func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	return ok && term.IsTerminal(int(f.Fd()))
}

type ingester struct {
	a        *app
	w        *spool.Writer
	src      string
	rejects  io.Writer
	name     string
	size     int64
	tty      bool
	start    time.Time
	read     int64 // bytes read
	lines    int
	accepted int
	rejected int
	chunk    [][]byte
	chunkB   int
	chunkIDs int // records of the chunk that carried an activity_id
	withID   int // accepted records that carried an activity_id
	chunkMax int // records per append
	first    int // line number of the chunk's first record
	waits    int // appends refused by backpressure and retried
	lastProg time.Time
}

func (in *ingester) run(cmd *cobra.Command, r io.Reader) error {
	ctx := cmd.Context()
	br := bufio.NewReaderSize(r, 1<<20)
	defaults := event.Defaults{Customer: in.a.cfg.Customer, Source: in.src}
	for {
		// Before a read that may wait for input (a pipe such as
		// `tail -f x | activitybi ingest -`, a terminal), hand what was
		// read to the spool: lines must not sit in memory, where a kill
		// loses them, for as long as the input is quiet.
		if len(in.chunk) > 0 && !lineBuffered(br) {
			if err := in.flush(ctx.Done()); err != nil {
				return err
			}
		}
		line, n, tooLong, err := readLine(br, event.MaxLineBytes)
		if len(line) > 0 || tooLong {
			in.lines++
			in.read += int64(n) + 1
			if tooLong {
				in.reject(line, "line: "+event.LineTooLong(n))
			} else if len(bytes.TrimSpace(line)) > 0 {
				in.one(line, defaults)
			}
			if len(in.chunk) >= in.chunkMax || in.chunkB >= ingestChunkBytes {
				if err := in.flush(ctx.Done()); err != nil {
					return err
				}
			}
			in.progress(false)
		} else if err == nil {
			in.lines++ // an empty line
		}
		if err == io.EOF {
			break
		}
		if err != nil {
			return fmt.Errorf("read %s: %w", in.name, err)
		}
		if ctx.Err() != nil {
			break
		}
	}
	if err := in.flush(ctx.Done()); err != nil {
		return err
	}
	in.progress(true)
	if ctx.Err() != nil {
		return fmt.Errorf("interrupted after line %d; everything before it was accepted", in.lines)
	}
	return nil
}

func (in *ingester) one(line []byte, d event.Defaults) {
	inp, err := event.DecodeInput(line)
	if err == nil {
		var ev event.Event
		ev, err = event.Normalize(inp, d)
		if err == nil {
			var p []byte
			p, err = event.Marshal(&ev)
			if err == nil {
				if len(in.chunk) == 0 {
					in.first = in.lines
				}
				in.chunk = append(in.chunk, p)
				in.chunkB += len(p)
				if inp.ActivityID != "" {
					in.chunkIDs++
				}
				return
			}
		}
	}
	in.reject(line, err.Error())
}

func (in *ingester) reject(line []byte, reason string) {
	in.rejected++
	if in.rejected <= ingestMaxErrors {
		in.clearProgress()
		fmt.Fprintf(in.a.stderr, "%s:%d: %s\n", in.name, in.lines, reason)
	}
	if in.rejects != nil {
		rec := map[string]any{"line": in.lines, "reason": reason, "raw": string(line)}
		b, _ := json.Marshal(rec)
		in.rejects.Write(append(b, '\n'))
	}
}

// flush appends the chunk, waiting at the backpressure limit.
func (in *ingester) flush(done <-chan struct{}) error {
	if len(in.chunk) == 0 {
		return nil
	}
	waitingSince := time.Time{}
	lastNote := time.Time{}
	for {
		err := in.w.AppendBatch(upload.KindEvent, in.chunk)
		if err == nil {
			break
		}
		if !errors.Is(err, spool.ErrBackpressure) {
			return err
		}
		in.waits++
		now := time.Now()
		if waitingSince.IsZero() {
			waitingSince = now
		}
		if now.Sub(lastNote) >= backpressureNote {
			in.clearProgress()
			// The spool's own message ends in "retry later", which is
			// what ingest does: say so instead.
			msg := err.Error()
			var bp *spool.BackpressureError
			if errors.As(err, &bp) {
				msg = fmt.Sprintf("the spool holds %d events not yet in the warehouse (spool.max_pending %d; is `activitybi serve` running?)", bp.Pending, bp.Limit)
			}
			fmt.Fprintf(in.a.stderr, "ingest: %s: waiting for the uploader (%s so far)\n", msg, now.Sub(waitingSince).Round(time.Second))
			lastNote = now
		}
		select {
		case <-done:
			return fmt.Errorf("interrupted while waiting for the uploader; the %d events from line %d on were not accepted (everything before was)", len(in.chunk), in.first)
		case <-time.After(backpressureWait):
		}
	}
	in.accepted += len(in.chunk)
	in.withID += in.chunkIDs
	in.chunk = in.chunk[:0]
	in.chunkB, in.chunkIDs = 0, 0
	return nil
}

func (in *ingester) progress(final bool) {
	if !in.tty {
		return
	}
	now := time.Now()
	if !final && now.Sub(in.lastProg) < progressEvery {
		return
	}
	in.lastProg = now
	pct := float64(in.read) / float64(in.size) * 100
	if pct > 100 || final {
		pct = 100
	}
	const width = 30
	filled := int(pct / 100 * width)
	bar := bytes.Repeat([]byte("="), filled)
	bar = append(bar, bytes.Repeat([]byte(" "), width-filled)...)
	rate := float64(in.accepted) / max(now.Sub(in.start).Seconds(), 0.001)
	fmt.Fprintf(in.a.stderr, "\r[%s] %5.1f%%  %d events  %.0f/s", bar, pct, in.accepted+len(in.chunk), rate)
	if final {
		fmt.Fprintln(in.a.stderr)
	}
}

func (in *ingester) clearProgress() {
	if in.tty {
		fmt.Fprint(in.a.stderr, "\r\033[K")
	}
}

func (in *ingester) summary() {
	d := time.Since(in.start)
	fmt.Fprintf(in.a.stderr, "ingest: %d events accepted, %d lines rejected, from %s in %s (%.0f events/s)\n",
		in.accepted, in.rejected, in.name, d.Round(time.Millisecond), float64(in.accepted)/max(d.Seconds(), 0.001))
	if in.withID > 0 {
		// "Accepted" is written to the spool; whether a row is added is
		// decided when it loads.
		fmt.Fprintf(in.a.stderr, "ingest: %d of them carry an activity_id: one the warehouse already holds for the same customer (an earlier ingest of this file, or a repeat within it) adds no row\n", in.withID)
	}
	if in.waits > 0 {
		fmt.Fprintf(in.a.stderr, "ingest: waited for the uploader %d times at the backpressure limit (spool.max_pending %d)\n", in.waits, in.a.cfg.Spool.MaxPending)
	}
	if in.rejected > ingestMaxErrors {
		fmt.Fprintf(in.a.stderr, "ingest: only the first %d rejected lines were printed; use --rejects FILE for all\n", ingestMaxErrors)
	}
}

// lineBuffered reports whether br holds a whole line, so that reading it
// cannot wait for input.
func lineBuffered(br *bufio.Reader) bool {
	b, _ := br.Peek(br.Buffered())
	return bytes.IndexByte(b, '\n') >= 0
}

// readLine returns the next line without its newline, and the line's
// length (without the newline). A line longer than limit is consumed to
// its end and reported with tooLong set (its first bytes are returned for
// the rejects file).
func readLine(br *bufio.Reader, limit int) (line []byte, n int, tooLong bool, err error) {
	var buf []byte
	for {
		chunk, err := br.ReadSlice('\n')
		n += len(chunk)
		if len(buf)+len(chunk) > limit+1 {
			tooLong = true
			if len(buf) < 256 {
				buf = append(buf, chunk[:min(len(chunk), 256)]...)
			}
		} else {
			buf = append(buf, chunk...)
		}
		if err == bufio.ErrBufferFull {
			continue
		}
		switch {
		case bytes.HasSuffix(chunk, []byte("\r\n")):
			n -= 2
		case bytes.HasSuffix(chunk, []byte("\n")):
			n--
		}
		buf = bytes.TrimSuffix(buf, []byte("\n"))
		buf = bytes.TrimSuffix(buf, []byte("\r"))
		return buf, n, tooLong, err
	}
}
