package account

import (
	"context"
	"strings"

	"github.com/patronkit/patronkit/circulation"
)

// CancelledByPatron is the reason a request cancelled by its patron gets
// when they give none.
const CancelledByPatron = "cancelled by the patron"

// Requests answers the patron's requests: the active ones (waiting, each
// with its place in its queue, or on the hold shelf) in the order they
// were placed, or (active false) all of them, the latest first.
func (s *Service) Requests(ctx context.Context, inst, primaryID string, active bool) ([]circulation.Request, error) {
	return s.circ.Requests(ctx, inst, primaryID, active)
}

// Request answers one of the patron's requests.
func (s *Service) Request(ctx context.Context, inst, primaryID, requestID string) (*circulation.Request, error) {
	return s.circ.Request(ctx, inst, primaryID, requestID)
}

// PlaceRequest places a hold request for the patron, as the terms of use
// and their blocks allow (see circulation.Service.PlaceRequest).
func (s *Service) PlaceRequest(ctx context.Context, inst, primaryID string, in circulation.NewRequest) (*circulation.Request, error) {
	return s.circ.PlaceRequest(ctx, inst, primaryID, in)
}

// CancelRequest cancels one of the patron's active requests, for reason,
// or CancelledByPatron when they give none.
func (s *Service) CancelRequest(ctx context.Context, inst, primaryID, requestID, reason string) (*circulation.Request, error) {
	if strings.TrimSpace(reason) == "" {
		reason = CancelledByPatron
	}
	return s.circ.CancelRequest(ctx, inst, primaryID, requestID, reason)
}

// QueuePlace tells the patron what they would see of the queue of the
// item with barcode before requesting it: whether a request is needed at
// all, how many wait, and their place (see circulation.QueuePlace). The
// patron is looked up first: an unknown one is NotFound whatever the item.
func (s *Service) QueuePlace(ctx context.Context, inst, primaryID, barcode string) (*circulation.QueuePlace, error) {
	if _, err := s.patrons.GetSegments(ctx, inst, primaryID); err != nil {
		return nil, err
	}
	return s.circ.QueueFor(ctx, inst, primaryID, barcode)
}
