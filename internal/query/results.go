package query

import (
	"context"
	"errors"
	"fmt"
	"os"
	"regexp"
	"strings"
	"time"

	"github.com/activitybi/activitybi/internal/fsutil"
)

// ResultStore keeps succeeded tickets' result files somewhere other than
// the engine's directory: the core gives the engine its artifact store, so
// results live where cards do (a local folder, or S3 on a team server),
// are listed in the artifacts table with their owner and expiry, and can be
// downloaded whole by their owner at /artifacts/{id}.
//
// The engine still owns a result's life: it deletes the result when the
// ticket expires or is cancelled after it was written. The store's own
// expiry (the ticket's plus resultStoreSlack) removes whatever a crash
// left behind.
type ResultStore interface {
	// PutResult stores the result file of a customer's ticket until
	// expires and returns its id in the store.
	PutResult(ctx context.Context, customer, ticket string, data []byte, expires time.Time) (string, error)
	// GetResult reads the customer's result with that id, refusing one
	// larger than limit bytes. A result that is not there (another
	// customer's id included) is an error matching os.ErrNotExist.
	GetResult(ctx context.Context, customer, id string, limit int64) ([]byte, error)
	// DeleteResult removes the customer's result; one that is not there is
	// not an error.
	DeleteResult(ctx context.Context, customer, id string) error
}

const (
	// resultRefPrefix marks, in the store's result_path column, a result
	// kept in Options.Results rather than a file in Options.Dir.
	resultRefPrefix = "artifact:"
	// resultStoreSlack is how much longer than its ticket a result is
	// kept by the store: the engine expires the ticket (and deletes the
	// result) first, so a status never promises a result already gone.
	resultStoreSlack = 10 * time.Minute
	// resultStoreTimeout bounds one write, read or delete of a result in
	// Options.Results (an S3 round trip of at most ResultCap bytes).
	resultStoreTimeout = 30 * time.Second
)

// resultIDPattern is what the engine accepts back from the store as a
// result id: the artifact store's ids are 39 lowercase base32 characters;
// anything of letters and digits up to 64 is taken, anything else (a path)
// is not.
var resultIDPattern = regexp.MustCompile(`^[0-9a-z]{1,64}$`)

// storedResultRef is what a ticket's result_path column holds: the
// artifact reference, or the local file's path (informational: load
// recomputes it from the ticket id, never trusting a stored path).
func storedResultRef(t *Ticket) string {
	if t.ResultArtifact != "" {
		return resultRefPrefix + t.ResultArtifact
	}
	return t.ResultPath
}

// parseResultRef returns the artifact id in a stored result_path, or ""
// when it names a local file (or nothing usable).
func parseResultRef(s string) string {
	id, ok := strings.CutPrefix(s, resultRefPrefix)
	if !ok || !resultIDPattern.MatchString(id) {
		return ""
	}
	return id
}

// readResult reads a succeeded ticket's result file from wherever it is.
func (e *Engine) readResult(ctx context.Context, customer string, snap *Ticket) ([]byte, error) {
	limit := e.opts.ResultCap + maxResultFileSlack
	if snap.ResultArtifact == "" {
		return readResultFile(snap.ResultPath, limit)
	}
	if e.opts.Results == nil {
		// A ticket of a run that had a result store, read by one that has
		// none (the configuration changed between runs).
		return nil, fmt.Errorf("result %s is in the artifact store, which this process was not given: %w",
			snap.ResultArtifact, os.ErrNotExist)
	}
	ctx, cancel := context.WithTimeout(ctx, resultStoreTimeout)
	defer cancel()
	return e.opts.Results.GetResult(ctx, customer, snap.ResultArtifact, limit)
}

// writeResult stores a finished run's result file and returns the artifact
// id ("" when it went to Options.Dir).
func (e *Engine) writeResult(ctx context.Context, customer, id string, file []byte, expires time.Time) (string, error) {
	if e.opts.Results == nil {
		return "", fsutil.WriteFileAtomic(e.resultPath(id), file, fileMode, "")
	}
	ctx, cancel := context.WithTimeout(ctx, resultStoreTimeout)
	defer cancel()
	ref, err := e.opts.Results.PutResult(ctx, customer, id, file, expires.Add(resultStoreSlack))
	if err != nil {
		return "", err
	}
	if !resultIDPattern.MatchString(ref) {
		e.deleteResult(ctx, customer, ref)
		return "", fmt.Errorf("the result store returned an unusable id %q", clip(ref))
	}
	return ref, nil
}

// deleteResult removes a result from the store, logging a failure (the
// store's own expiry removes it later).
func (e *Engine) deleteResult(ctx context.Context, customer, ref string) {
	if e.opts.Results == nil || ref == "" {
		return
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), resultStoreTimeout)
	defer cancel()
	if err := e.opts.Results.DeleteResult(ctx, customer, ref); err != nil && !errors.Is(err, os.ErrNotExist) {
		e.m.storeErrors.WithLabelValues("delete_result").Inc()
		e.log.Warn("query: delete a result from the artifact store (its expiry removes it later)", "artifact", ref, "err", err)
	}
}

// resultToDelete is a result to remove once Engine.mu is released.
type resultToDelete struct{ customer, ref string }
