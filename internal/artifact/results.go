package artifact

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"time"
)

const (
	// KindQueryResult is the Kind of a query ticket's result file.
	KindQueryResult = "query_result"
	// ResultContentType is a result file's media type: a header line and
	// one JSON array per row.
	ResultContentType = "application/x-ndjson"
)

// PutResult stores the result file of a customer's query ticket until
// expires and returns its id: the query engine's result store
// (query.ResultStore) is the artifact store, so a result is listed, served
// at /artifacts/{id} to its owner only, and swept like a card.
func (s *Store) PutResult(ctx context.Context, customer, ticket string, data []byte, expires time.Time) (string, error) {
	m, err := s.Put(ctx, customer, Meta{ContentType: ResultContentType, Name: ticket + ".ndjson",
		Kind: KindQueryResult, ExpiresAt: expires}, bytes.NewReader(data))
	if err != nil {
		return "", err
	}
	return m.ID, nil
}

// GetResult reads the customer's result artifact id, refusing one of more
// than limit bytes. An id that is not the customer's (or not there)
// matches both ErrNotFound and os.ErrNotExist.
func (s *Store) GetResult(ctx context.Context, customer, id string, limit int64) ([]byte, error) {
	m, r, err := s.Get(ctx, customer, id)
	if errors.Is(err, ErrNotFound) {
		return nil, fmt.Errorf("result artifact %s: %w (%w)", id, ErrNotFound, os.ErrNotExist)
	}
	if err != nil {
		return nil, err
	}
	defer r.Close()
	if m.Size > limit {
		return nil, fmt.Errorf("result artifact %s is %d bytes, over the %d a result may have", id, m.Size, limit)
	}
	data, err := io.ReadAll(io.LimitReader(r, limit+1))
	if err != nil {
		return nil, fmt.Errorf("read result artifact %s: %w", id, err)
	}
	if int64(len(data)) > limit {
		return nil, fmt.Errorf("result artifact %s is over the %d bytes a result may have", id, limit)
	}
	return data, nil
}

// DeleteResult removes the customer's result artifact; one that is not
// there is not an error.
func (s *Store) DeleteResult(ctx context.Context, customer, id string) error {
	if err := s.Delete(ctx, customer, id); err != nil && !errors.Is(err, ErrNotFound) {
		return err
	}
	return nil
}
