package patronkittest

import (
	"context"
	"fmt"
	"io"
	"slices"
	"strings"
	"sync"

	"github.com/patronkit/patronkit/patron/sis"
)

// Source is an in-memory sis.Source: the test adds files, an SIS run
// reads them in the order they were added and marks them done or failed.
// Give it to the kit in Config.Sources (an Option) and name it in a
// profile. It is safe for concurrent use.
type Source struct {
	name  string
	mu    sync.Mutex
	files []memFile
	gate  chan struct{}
}

type memFile struct {
	name, content string
	marked, ok    bool
}

var _ sis.Source = (*Source)(nil)

// NewSource returns an empty Source that profiles name as name.
func NewSource(name string) *Source { return &Source{name: name} }

// Add offers a file holding content (e.g. Alma's SIS user XML), after
// those added before; a file of the same name is replaced and offered
// again. A run reads a file's format from its profile, or from the
// extension of name.
func (s *Source) Add(name, content string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.files = slices.DeleteFunc(s.files, func(f memFile) bool { return f.name == name })
	s.files = append(s.files, memFile{name: name, content: content})
}

// Name is the code profiles use to name the source.
func (s *Source) Name() string { return s.name }

// List returns the files not yet marked, in the order they were added.
// Their ModTime is zero: a run takes the kit's clock as their date.
func (s *Source) List(context.Context) ([]sis.File, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []sis.File
	for _, f := range s.files {
		if !f.marked {
			out = append(out, sis.File{Name: f.name, Size: int64(len(f.content))})
		}
	}
	return out, nil
}

// Open reads a file added. While the source is held (Hold), it waits
// until Release or until ctx ends.
func (s *Source) Open(ctx context.Context, name string) (io.ReadCloser, error) {
	s.mu.Lock()
	gate := s.gate
	s.mu.Unlock()
	if gate != nil {
		select {
		case <-gate:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, f := range s.files {
		if f.name == name {
			return io.NopCloser(strings.NewReader(f.content)), nil
		}
	}
	return nil, fmt.Errorf("patronkittest: source %s has no file %s", s.name, name)
}

// Hold makes Open wait until Release: a run of the source's profile stays
// in progress (holding the profile) as long as the test needs.
func (s *Source) Hold() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.gate == nil {
		s.gate = make(chan struct{})
	}
}

// Release lets the Opens waiting since Hold, and those to come, through.
func (s *Source) Release() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.gate != nil {
		close(s.gate)
		s.gate = nil
	}
}

// Done marks a file processed (ok) or failed: List no longer offers it.
func (s *Source) Done(_ context.Context, name string, ok bool) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	for i := range s.files {
		if s.files[i].name == name {
			s.files[i].marked, s.files[i].ok = true, ok
			return nil
		}
	}
	return fmt.Errorf("patronkittest: source %s has no file %s", s.name, name)
}

// Marked tells whether a run marked the file name, and whether as
// processed (ok) or failed.
func (s *Source) Marked(name string) (marked, ok bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, f := range s.files {
		if f.name == name {
			return f.marked, f.ok
		}
	}
	return false, false
}
