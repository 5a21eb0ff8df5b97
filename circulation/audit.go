package circulation

import (
	"context"
	"encoding/json"
	"maps"
	"slices"
	"time"

	"github.com/patronkit/patronkit/patron"
)

// details writes the details of an event: d as JSON (a map of plain
// values and changes), or "" for none.
func details(d map[string]any) string {
	if len(d) == 0 {
		return ""
	}
	b, err := json.Marshal(d)
	if err != nil { // only plain values are given
		panic("circulation: audit details: " + err.Error())
	}
	return string(b)
}

// change is a field's change in the details of an event.
func change(old, new any) map[string]any { return map[string]any{"old": old, "new": new} }

// auditRead records that the actor of ctx read what of the patron
// primaryID (the patron service leaves out a patron's reads of their own
// data); its error fails the read.
func (s *Service) auditRead(ctx context.Context, inst, primaryID, what string, d map[string]any) error {
	if s.patrons == nil {
		return nil
	}
	return s.patrons.RecordAudit(ctx, inst, patron.AuditRead, primaryID, what, details(d))
}

// auditReads records a read of what naming several patrons: one event
// per subject (its PrimaryID and Details), given together (the patron
// service leaves out a patron's reads of their own data).
func (s *Service) auditReads(ctx context.Context, inst, what string, subjects []patron.AuditEvent) error {
	if s.patrons == nil {
		return nil
	}
	for i := range subjects {
		subjects[i].Action, subjects[i].What = patron.AuditRead, what
	}
	return s.patrons.RecordAuditMany(ctx, inst, subjects)
}

// auditChange records a change (action patron.AuditCreate or
// patron.AuditUpdate) of what of the patron primaryID, within the
// change's transaction (ctx carries it).
func (s *Service) auditChange(ctx context.Context, inst, action, primaryID, what string, d map[string]any) error {
	if s.patrons == nil {
		return nil
	}
	return s.patrons.RecordAudit(ctx, inst, action, primaryID, what, details(d))
}

// subjects returns the primary_id of each patron named by internal id in
// userIDs as it is now, keyed by id; a patron who is gone keeps the one
// fallback gives (the primary_id a row recorded), and one with neither
// (an anonymized row) is left out.
func (s *Service) subjects(ctx context.Context, inst string, userIDs []string, fallback func(userID string) string) (map[string]string, error) {
	ids := slices.Compact(slices.Sorted(slices.Values(slices.DeleteFunc(slices.Clone(userIDs), func(id string) bool { return id == "" }))))
	out := map[string]string{}
	if s.patrons != nil {
		var err error
		if out, err = s.patrons.PrimaryIDs(ctx, inst, ids); err != nil {
			return nil, err
		}
	}
	for _, id := range userIDs {
		if _, ok := out[id]; !ok && fallback != nil {
			if p := fallback(id); p != "" {
				out[id] = p
			}
		}
	}
	return out, nil
}

// subject is the primary_id the patron with internal id userID has now,
// or recorded when they are gone.
func (s *Service) subject(ctx context.Context, inst, userID, recorded string) (string, error) {
	m, err := s.subjects(ctx, inst, []string{userID}, func(string) string { return recorded })
	if err != nil {
		return "", err
	}
	return m[userID], nil
}

// withJobActor returns ctx with the job's actor, and the job as the way
// in, when it carries none, so that the trail names the job that changed
// a patron's data.
func withJobActor(ctx context.Context, inst, job string) context.Context {
	if _, ok := patron.ActorFrom(ctx); ok {
		return ctx
	}
	if _, ok := patron.OriginFrom(ctx); !ok {
		ctx = patron.WithOrigin(ctx, patron.Origin{Via: "job " + job})
	}
	return patron.WithActor(ctx, patron.Actor{Institution: inst, ID: "system:" + job})
}

// stamp is a time as details write it: RFC 3339 in UTC.
func stamp(t time.Time) string { return t.UTC().Format(time.RFC3339Nano) }

// stampOf is stamp of a time that may be missing (nil: null).
func stampOf(t *time.Time) any {
	if t == nil {
		return nil
	}
	return stamp(*t)
}

// auditRows records a read of what of the patrons rows name: one event
// per patron (named as their record is now, see subjects), its details d
// and the ids of their rows (kind_id for one, kind_ids for several). of
// gives a row's user id, the primary_id it recorded, and its id.
func auditRows[T any](ctx context.Context, s *Service, inst, what, kind string, rows []T, of func(T) (userID, primaryID, id string), d map[string]any) error {
	if len(rows) == 0 {
		return nil
	}
	userIDs := make([]string, len(rows))
	recorded := map[string]string{}
	for i, r := range rows {
		uid, pid, _ := of(r)
		userIDs[i] = uid
		recorded[uid] = pid
	}
	pids, err := s.subjects(ctx, inst, userIDs, func(id string) string { return recorded[id] })
	if err != nil {
		return err
	}
	var order []string
	ids := map[string][]string{}
	for _, r := range rows {
		uid, _, id := of(r)
		p, ok := pids[uid]
		if !ok {
			continue
		}
		if _, seen := ids[p]; !seen {
			order = append(order, p)
		}
		ids[p] = append(ids[p], id)
	}
	subs := make([]patron.AuditEvent, 0, len(order))
	for _, p := range order {
		dd := maps.Clone(d)
		if len(ids[p]) == 1 {
			dd[kind+"_id"] = ids[p][0]
		} else {
			dd[kind+"_ids"] = ids[p]
		}
		subs = append(subs, patron.AuditEvent{PrimaryID: p, Details: details(dd)})
	}
	return s.auditReads(ctx, inst, what, subs)
}
