package sis

import (
	"context"
	"io"
	"time"
)

// File is a file a Source offers.
type File struct {
	// Name identifies the file within its source (a base name).
	Name    string
	Size    int64
	ModTime time.Time
}

// Source is where an integration profile's files come from: a drop folder,
// an SFTP server, or a host's own system. A run lists the new files, reads
// each, and marks it done or failed so that it is not read again.
//
// A host may implement Source; examples/custom-sis shows one.
type Source interface {
	// Name is the code profiles use to name the source.
	Name() string
	// List returns the files not yet marked, oldest first.
	List(ctx context.Context) ([]File, error)
	// Open reads one listed file.
	Open(ctx context.Context, name string) (io.ReadCloser, error)
	// Done marks a file processed (ok) or failed, so that List no longer
	// offers it; a drop folder moves it aside.
	Done(ctx context.Context, name string, ok bool) error
}
