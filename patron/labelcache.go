package patron

import (
	"context"
	"slices"
	"sync"
	"time"

	"github.com/patronkit/patronkit/internal/txctx"
)

// DefaultCodeLabelsCacheFor is how long an instance answers CodeLabels
// from memory by default (Options.CodeLabelsCacheFor).
const DefaultCodeLabelsCacheFor = 30 * time.Second

// labelCache keeps each institution's code labels in memory for a while:
// every call of the Alma users API describes the codes of what it
// answers. SaveLabels on this instance empties it (at once, and again
// once its transaction commits); another instance's changes are seen
// once ttl has passed.
type labelCache struct {
	ttl    time.Duration // <= 0: no cache
	mu     sync.Mutex
	gen    uint64 // counts the emptyings: a read that overlapped one is not kept
	byInst map[string]cachedLabels
}

type cachedLabels struct {
	labels []CodeLabel
	until  time.Time
}

// get is CodeLabels of inst as cached, or read by read and kept.
func (c *labelCache) get(ctx context.Context, inst string, now time.Time, read func() ([]CodeLabel, error)) ([]CodeLabel, error) {
	if c.ttl <= 0 || txctx.In(ctx) {
		// Within a transaction the labels it wrote, not yet committed,
		// must neither be missed nor kept for others.
		return read()
	}
	c.mu.Lock()
	e, ok := c.byInst[inst]
	gen := c.gen
	c.mu.Unlock()
	if ok && now.Before(e.until) {
		return slices.Clone(e.labels), nil
	}
	labels, err := read()
	if err != nil {
		return nil, err
	}
	c.mu.Lock()
	if c.gen == gen {
		if c.byInst == nil {
			c.byInst = map[string]cachedLabels{}
		}
		c.byInst[inst] = cachedLabels{labels: slices.Clone(labels), until: now.Add(c.ttl)}
	}
	c.mu.Unlock()
	return labels, nil
}

// forget empties the cache of inst.
func (c *labelCache) forget(inst string) {
	c.mu.Lock()
	c.gen++
	delete(c.byInst, inst)
	c.mu.Unlock()
}
