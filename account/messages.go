package account

import (
	"context"

	"github.com/patronkit/patronkit/circulation"
	"github.com/patronkit/patronkit/fault"
	"github.com/patronkit/patronkit/patron"
)

// LatestNotices is how many of the notices sent to a patron Standing
// shows.
const LatestNotices = 10

// Standing is what stands between the patron and the library's services,
// and what the library told them.
type Standing struct {
	// Blocks are the patron's blocks: those set on the record and those
	// the library sets by itself (expiry, fines over a limit), each with
	// what it stops.
	Blocks []circulation.Block
	// Messages are the library's notes the patron may see (user_viewable);
	// notes for staff only are never among them. Never nil.
	Messages []patron.Note
	// Notices are the latest notices sent to the patron, at most
	// LatestNotices, the newest first. Never nil.
	Notices []circulation.Notice
}

// Standing answers the patron's blocks, the library's messages to them
// and the latest notices they were sent.
func (s *Service) Standing(ctx context.Context, inst, primaryID string) (*Standing, error) {
	u, err := s.patrons.GetSegments(ctx, inst, primaryID, patron.KindNotes, patron.KindBlocks)
	if err != nil {
		return nil, err
	}
	bs, err := s.circ.BlocksOf(ctx, inst, u)
	if err != nil {
		return nil, err
	}
	msgs := []patron.Note{}
	for _, n := range u.Notes {
		if n.UserViewable {
			msgs = append(msgs, n)
		}
	}
	all, err := s.circ.Notices(ctx, inst, u.PrimaryID)
	if err != nil {
		return nil, err
	}
	sent := []circulation.Notice{}
	for _, n := range all {
		if n.Status == circulation.NoticeSent && len(sent) < LatestNotices {
			sent = append(sent, n)
		}
	}
	return &Standing{Blocks: bs, Messages: msgs, Notices: forPatron(sent)}, nil
}

// Notices answers every notice written to the patron, the newest first:
// sent, waiting, failed or skipped (opted out of, or no address for it).
// What a channel answered when it refused one is for staff: a patron sees
// it only for a notice that was skipped.
func (s *Service) Notices(ctx context.Context, inst, primaryID string) ([]circulation.Notice, error) {
	ns, err := s.circ.Notices(ctx, inst, primaryID)
	if err != nil {
		return nil, err
	}
	return forPatron(ns), nil
}

// forPatron drops what a channel answered when it refused a notice: for
// staff, not for the patron.
func forPatron(ns []circulation.Notice) []circulation.Notice {
	for i := range ns {
		if ns[i].Status != circulation.NoticeSkipped {
			ns[i].Error = ""
		}
	}
	return ns
}

// NoticeFile answers a notice sent to the patron as it was archived on
// their record: the attachment and its content. A notice that was not
// sent (nothing was archived) is NotFound, as is another patron's.
func (s *Service) NoticeFile(ctx context.Context, inst, primaryID, noticeID string) (*patron.Attachment, []byte, error) {
	n, err := s.circ.Notice(ctx, inst, primaryID, noticeID)
	if err != nil {
		return nil, nil, err
	}
	if n.AttachmentID == "" {
		return nil, nil, &fault.Error{Kind: fault.NotFound, Detail: "notice " + n.ID + " was not sent"}
	}
	return s.patrons.AttachmentContent(ctx, inst, primaryID, n.AttachmentID)
}
