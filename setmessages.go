package patronkit

import (
	"context"

	"github.com/patronkit/patronkit/circulation"
	"github.com/patronkit/patronkit/sets"
)

// setMessenger gives the notify jobs over sets (sets.Messenger)
// circulation's notice outbox: each message a notice of kind
// circulation.NoticeMessage, sent by the notices job and archived on the
// patron's record.
type setMessenger struct{ circ *circulation.Service }

func (m setMessenger) CheckMessage(msg *sets.Message) error {
	sm := circulation.StaffMessage(*msg)
	if err := m.circ.CheckMessage(&sm); err != nil {
		return err
	}
	*msg = sets.Message(sm)
	return nil
}

func (m setMessenger) QueueMessage(ctx context.Context, inst, userID, key string, msg sets.Message, dry bool) (*sets.Sent, error) {
	n, err := m.circ.QueueMessage(ctx, inst, userID, key, circulation.StaffMessage(msg), dry)
	if err != nil {
		return nil, err
	}
	out := &sets.Sent{Channel: n.Channel, Recipient: n.Recipient, Subject: n.Subject, Body: n.Body, Status: n.Status, Error: n.Error}
	if !dry {
		out.NoticeID = n.ID
	}
	return out, nil
}
