package librarycard

import (
	"context"
	"sync"
	"time"
)

// librariesFor is how long the pages keep an institution's libraries
// (their names and time zones) before reading them again: a library's
// new time zone shows on the pages within it.
const librariesFor = time.Minute

// libraries are the names and time zones of an institution's libraries,
// by code, as the pages show them.
type libraries struct {
	read time.Time
	// codes are the libraries' codes, in the order of their codes.
	codes []string
	names map[string]string
	zones map[string]*time.Location
}

// libraryCache keeps each institution's libraries for librariesFor, so
// that a page does not read the library table again for each date.
type libraryCache struct {
	mu     sync.Mutex
	byInst map[string]*libraries
}

// libraries answers the libraries of inst, read at most librariesFor ago.
func (c *card) libraries(ctx context.Context, inst string) (*libraries, error) {
	now := c.kit.Now()
	c.libs.mu.Lock()
	l := c.libs.byInst[inst]
	c.libs.mu.Unlock()
	if l != nil && now.Sub(l.read) < librariesFor && !now.Before(l.read) {
		return l, nil
	}
	all, err := c.kit.Circulation.Libraries(ctx, inst)
	if err != nil {
		return nil, err
	}
	l = &libraries{read: now, names: map[string]string{}, zones: map[string]*time.Location{}}
	for _, lib := range all {
		l.codes = append(l.codes, lib.Code)
		l.names[lib.Code] = lib.Name
		if loc, err := lib.Location(); err == nil {
			l.zones[lib.Code] = loc
		}
	}
	c.libs.mu.Lock()
	if c.libs.byInst == nil {
		c.libs.byInst = map[string]*libraries{}
	}
	c.libs.byInst[inst] = l
	c.libs.mu.Unlock()
	return l, nil
}

// zone answers the time zone of the library code, or the mount's
// (Options.Location) when the library is unknown or names none.
func (c *card) zone(l *libraries, code string) *time.Location {
	if l != nil {
		if loc := l.zones[code]; loc != nil {
			return loc
		}
	}
	return c.opts.Location
}

// The formats of the dates shown: a day, and a moment with its hour and
// the abbreviation of its time zone (pages may show libraries of several).
const (
	dateFormat     = "2006-01-02"
	dateTimeFormat = "2006-01-02 15:04 MST"
)
