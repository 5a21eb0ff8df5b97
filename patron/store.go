package patron

import (
	"errors"
	"fmt"

	"golang.org/x/sync/errgroup"
	"gorm.io/gorm"

	"github.com/patronkit/patronkit/internal/dberr"
	"github.com/patronkit/patronkit/internal/keys"
)

// segmentAssociations names the segment lists of User, which writes of the
// core record omit.
var segmentAssociations = []string{"Identifiers", "Addresses", "Emails", "Phones", "Notes", "Blocks", "Statistics", "ProxyFor"}

func loadUser(db *gorm.DB, inst, primaryID string) (*User, error) {
	return loadWhere(db, false, "institution = ? AND primary_id_key = ?", inst, keys.Fold(primaryID))
}

func loadUserByID(db *gorm.DB, inst, id string) (*User, error) {
	return loadWhere(db, false, "institution = ? AND id = ?", inst, id)
}

// loadWhere reads one user and its segments. With parallel (only outside a
// transaction, which holds one connection) the eight segment lists are read
// in two halves at once, on two connections: a read waits for five round
// trips to the database instead of nine. Two, because database/sql keeps two
// idle connections by default: more would open and close connections on
// every read of a host that kept the default pool.
func loadWhere(db *gorm.DB, parallel bool, where string, args ...any) (*User, error) {
	return loadKinds(db, parallel, SegmentKinds, where, args...)
}

// loadKinds is loadWhere reading only the segment lists of kinds.
func loadKinds(db *gorm.DB, parallel bool, kinds []string, where string, args ...any) (*User, error) {
	for _, a := range args {
		if k, ok := a.(string); ok && !Findable(k) {
			return nil, notFound("no such user")
		}
	}
	var u User
	err := db.Where(where, args...).Take(&u).Error
	if errors.Is(err, gorm.ErrRecordNotFound) {
		return nil, notFound("no such user")
	}
	if err != nil {
		return nil, err
	}
	all := map[string]func() error{
		KindIdentifiers: segmentsOf(db, u.ID, &u.Identifiers),
		KindAddresses:   segmentsOf(db, u.ID, &u.Addresses),
		KindEmails:      segmentsOf(db, u.ID, &u.Emails),
		KindPhones:      segmentsOf(db, u.ID, &u.Phones),
		KindNotes:       segmentsOf(db, u.ID, &u.Notes),
		KindBlocks:      segmentsOf(db, u.ID, &u.Blocks),
		KindStatistics:  segmentsOf(db, u.ID, &u.Statistics),
		KindProxyFor:    segmentsOf(db, u.ID, &u.ProxyFor),
	}
	var reads []func() error
	for _, k := range kinds {
		if r, ok := all[k]; ok {
			reads = append(reads, r)
		}
	}
	if !parallel || len(reads) < 2 {
		return &u, firstErr(reads...)
	}
	var g errgroup.Group
	half := len(reads) / 2
	g.Go(func() error { return firstErr(reads[:half]...) })
	g.Go(func() error { return firstErr(reads[half:]...) })
	return &u, g.Wait()
}

// segmentsOf reads one segment list of a user, in the order written.
func segmentsOf[T any](db *gorm.DB, userID string, dst *[]T) func() error {
	return func() error { return db.Where("user_id = ?", userID).Order("id").Find(dst).Error }
}

// eachSegment visits the common part of every segment of u, with its JSON
// path for error messages.
func eachSegment(u *User, visit func(path string, s *Segment)) {
	for i := range u.Identifiers {
		visit(fmt.Sprintf("user_identifiers[%d]", i), &u.Identifiers[i].Segment)
	}
	for i := range u.Addresses {
		visit(fmt.Sprintf("addresses[%d]", i), &u.Addresses[i].Segment)
	}
	for i := range u.Emails {
		visit(fmt.Sprintf("emails[%d]", i), &u.Emails[i].Segment)
	}
	for i := range u.Phones {
		visit(fmt.Sprintf("phones[%d]", i), &u.Phones[i].Segment)
	}
	for i := range u.Notes {
		visit(fmt.Sprintf("user_notes[%d]", i), &u.Notes[i].Segment)
	}
	for i := range u.Blocks {
		visit(fmt.Sprintf("user_blocks[%d]", i), &u.Blocks[i].Segment)
	}
	for i := range u.Statistics {
		visit(fmt.Sprintf("user_statistics[%d]", i), &u.Statistics[i].Segment)
	}
	for i := range u.ProxyFor {
		visit(fmt.Sprintf("proxy_for_users[%d]", i), &u.ProxyFor[i].Segment)
	}
}

// insertSegments writes the segments of u (only those of segment type only,
// when it is not empty). A segment keeps its id when it is one of held, the ids of
// the user's segments being replaced; any other gets a fresh id.
func insertSegments(tx *gorm.DB, u *User, only string, held map[string]bool) error {
	return insertSegmentKinds(tx, u, only, held, nil)
}

// insertSegmentKinds is insertSegments for the segment kinds named in
// kinds (see SegmentKinds); nil means every kind.
func insertSegmentKinds(tx *gorm.DB, u *User, only string, held map[string]bool, kinds map[string]bool) error {
	used := map[string]bool{}
	eachSegment(u, func(_ string, s *Segment) {
		if !held[s.ID] || used[s.ID] {
			s.ID = keys.NewID()
		}
		used[s.ID] = true
		s.UserID = u.ID
	})
	keep := func(s Segment) bool { return only == "" || s.SegmentType == only }
	var steps []func() error
	add := func(kind string, step func() error) {
		if kinds == nil || kinds[kind] {
			steps = append(steps, step)
		}
	}
	add(KindIdentifiers, insertKept(tx, u.Identifiers, func(x Identifier) bool { return keep(x.Segment) }))
	add(KindAddresses, insertKept(tx, u.Addresses, func(x Address) bool { return keep(x.Segment) }))
	add(KindEmails, insertKept(tx, u.Emails, func(x Email) bool { return keep(x.Segment) }))
	add(KindPhones, insertKept(tx, u.Phones, func(x Phone) bool { return keep(x.Segment) }))
	add(KindNotes, insertKept(tx, u.Notes, func(x Note) bool { return keep(x.Segment) }))
	add(KindBlocks, insertKept(tx, u.Blocks, func(x Block) bool { return keep(x.Segment) }))
	add(KindStatistics, insertKept(tx, u.Statistics, func(x Statistic) bool { return keep(x.Segment) }))
	add(KindProxyFor, insertKept(tx, u.ProxyFor, func(x ProxyFor) bool { return keep(x.Segment) }))
	return firstErr(steps...)
}

func insertKept[T any](tx *gorm.DB, rows []T, keep func(T) bool) func() error {
	return func() error {
		var out []T
		for _, r := range rows {
			if keep(r) {
				out = append(out, r)
			}
		}
		if len(out) == 0 {
			return nil
		}
		return tx.Create(&out).Error
	}
}

func firstErr(steps ...func() error) error {
	for _, s := range steps {
		if err := s(); err != nil {
			return err
		}
	}
	return nil
}

// segmentModels lists one value of each segment table.
var segmentModels = []any{&Identifier{}, &Address{}, &Email{}, &Phone{}, &Note{}, &Block{}, &Statistic{}, &ProxyFor{}}

// segmentModelOf gives the table of each segment kind.
var segmentModelOf = map[string]any{
	KindIdentifiers: &Identifier{}, KindAddresses: &Address{}, KindEmails: &Email{}, KindPhones: &Phone{},
	KindNotes: &Note{}, KindBlocks: &Block{}, KindStatistics: &Statistic{}, KindProxyFor: &ProxyFor{},
}

// deleteSegments removes the segments of a user: all of them, or only those
// of segment type only; note, when not nil, is told how many rows of each
// table went.
func deleteSegments(tx *gorm.DB, userID string, only string, note func(table string, rows int64)) error {
	for _, m := range segmentModels {
		q := tx.Where("user_id = ?", userID)
		if only != "" {
			q = q.Where("segment_type = ?", only)
		}
		res := q.Delete(m)
		if res.Error != nil {
			return res.Error
		}
		if note != nil {
			note(res.Statement.Table, res.RowsAffected)
		}
	}
	return nil
}

// checkPrimaryIDFree refuses a primary_id held by a user other than self.
func checkPrimaryIDFree(tx *gorm.DB, inst, key, self string) error {
	var other User
	err := tx.Select("id", "primary_id").Where("institution = ? AND primary_id_key = ?", inst, key).Take(&other).Error
	if errors.Is(err, gorm.ErrRecordNotFound) || (err == nil && other.ID == self) {
		return nil
	}
	if err != nil {
		return err
	}
	return conflict("primary_id %q is already taken by another user", other.PrimaryID)
}

// checkIdentifiersFree refuses identifiers held by a user other than self,
// (case and surrounding blanks do not count).
func checkIdentifiersFree(tx *gorm.DB, inst string, ids []Identifier, self string) error {
	for _, id := range ids {
		var other Identifier
		err := tx.Where("institution = ? AND id_type = ? AND value_key = ?", inst, id.IDType, id.ValueKey).Take(&other).Error
		if errors.Is(err, gorm.ErrRecordNotFound) || (err == nil && other.UserID == self) {
			continue
		}
		if err != nil {
			return err
		}
		return conflict("identifier %s %q is already held by another user", id.IDType, id.Value)
	}
	return nil
}

// translate maps database errors to the service's own (see dberr.Translate).
func (s *Service) translate(err error) error {
	return dberr.Translate(s.db, err, "the record conflicts with one written at the same time (a primary_id or identifier is taken)")
}
