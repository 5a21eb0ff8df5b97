package patronkittest

import (
	"context"
	"slices"
	"sync"

	"github.com/patronkit/patronkit/circulation"
)

// Notifier is a circulation.Notifier that keeps the messages it is given
// instead of delivering them, or refuses them all while Refuse has set an
// error. A Kit has one for email and one for SMS. It is safe for
// concurrent use.
type Notifier struct {
	mu       sync.Mutex
	messages []circulation.Message
	err      error
}

var _ circulation.Notifier = (*Notifier)(nil)

// Notify records m, or answers the error Refuse set.
func (n *Notifier) Notify(_ context.Context, m circulation.Message) error {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.err != nil {
		return n.err
	}
	if m.Notice != nil {
		cp := *m.Notice
		m.Notice = &cp
	}
	n.messages = append(n.messages, m)
	return nil
}

// Messages returns the messages recorded so far, in the order they came.
func (n *Notifier) Messages() []circulation.Message {
	n.mu.Lock()
	defer n.mu.Unlock()
	return slices.Clone(n.messages)
}

// Reset forgets the messages recorded.
func (n *Notifier) Reset() {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.messages = nil
}

// Refuse makes Notify answer err, as a channel that is down does (the
// kit tries the notice again later); nil accepts messages again.
func (n *Notifier) Refuse(err error) {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.err = err
}
