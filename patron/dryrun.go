package patron

import (
	"gorm.io/gorm"

	"github.com/patronkit/patronkit/internal/keys"
)

// dryRun is what the users a dry run has applied so far would have left in
// the database, as far as the users after them can tell: which user holds
// each primary_id and identifier the run touched, and, for the users a
// later user may still match, the record they would have. Each user of a
// dry run is applied in a transaction that is rolled back, after the keys
// that earlier users gave up are freed in it; the checks of primary_ids
// and identifiers look here first, then in the database. So a dry run
// gives the effects the run gives, the file's own conflicts included,
// without holding a transaction (and its locks) for the whole run.
type dryRun struct {
	pids map[string]*dryHolder // by primary_id_key
	ids  map[idKey]*dryHolder  // by id_type and value_key
	// users are the records a later user may match, by id, with the
	// fingerprint they would hold: those holding more than one value of
	// the key the load matches on (or every user, with keepAll). The
	// others are matched by one key only, which a later user of the load
	// does not have (see ExternalLoad).
	users   map[string]*User
	keepAll bool
}

type idKey struct{ idType, valueKey string }

// dryHolder is the user that holds a key after the users applied so far;
// nil when the key was given up and nobody holds it.
type dryHolder struct {
	id, primaryID string
}

func newDryRun(keepAll bool) *dryRun {
	return &dryRun{pids: map[string]*dryHolder{}, ids: map[idKey]*dryHolder{}, users: map[string]*User{}, keepAll: keepAll}
}

func valueKeyOf(id *Identifier) string {
	if id.ValueKey != "" {
		return id.ValueKey
	}
	return keys.Fold(id.Value)
}

// matchHolder tells who holds the key u is matched on, when the run
// touched it.
func (d *dryRun) matchHolder(u *User, rule ExternalApply) (*dryHolder, bool) {
	if rule.Match.OnPrimaryID() {
		h, ok := d.pids[u.PrimaryIDKey]
		return h, ok
	}
	id := identifierOf(u, rule.Match.IDType)
	if id == nil {
		return nil, false
	}
	h, ok := d.ids[idKey{id.IDType, valueKeyOf(id)}]
	return h, ok
}

// adjustKnown corrects the stored fingerprints read for a batch with what
// the users applied before it changed.
func (d *dryRun) adjustKnown(known map[string]knownUser, in []*User, pending []int, rule ExternalApply) {
	for _, i := range pending {
		h, ok := d.matchHolder(in[i], rule)
		if !ok {
			continue
		}
		k := rule.Match.Of(in[i])
		switch {
		case h == nil:
			delete(known, k)
		case d.users[h.id] != nil:
			known[k] = knownUser{id: h.id, hash: d.users[h.id].SISHash, external: true}
		default:
			known[k] = knownUser{id: h.id, external: true}
		}
	}
}

// match finds the user u matches when the run touched its key: found says
// the run decides (cur nil: nobody holds the key any more).
func (d *dryRun) match(u *User, rule ExternalApply) (cur *User, found bool, err error) {
	if d == nil {
		return nil, false, nil
	}
	h, ok := d.matchHolder(u, rule)
	if !ok {
		return nil, false, nil
	}
	if h == nil {
		return nil, true, nil
	}
	held := d.users[h.id]
	if held == nil {
		// Only a second user of the load with the same key gets here,
		// and a load refuses those first.
		return nil, true, conflict("the %s %q was matched by an earlier user of the load", rule.Match, rule.Match.value(u))
	}
	return cloneUser(held), true, nil
}

// virtual tells whether cur is a record of the dry run, not the stored
// one: an update of it is checked but not written.
func (d *dryRun) virtual(cur *User) bool {
	return d != nil && d.users[cur.ID] != nil
}

// primaryIDFree is checkPrimaryIDFree after the users applied so far.
func (d *dryRun) primaryIDFree(tx *gorm.DB, inst, key, self string) error {
	if d != nil {
		if h, ok := d.pids[key]; ok {
			if h == nil || h.id == self {
				return nil
			}
			return conflict("primary_id %q is already taken by another user", h.primaryID)
		}
	}
	return checkPrimaryIDFree(tx, inst, key, self)
}

// identifiersFree is checkIdentifiersFree after the users applied so far.
func (d *dryRun) identifiersFree(tx *gorm.DB, inst string, ids []Identifier, self string) error {
	if d == nil {
		return checkIdentifiersFree(tx, inst, ids, self)
	}
	var rest []Identifier
	for i := range ids {
		h, ok := d.ids[idKey{ids[i].IDType, valueKeyOf(&ids[i])}]
		switch {
		case !ok:
			rest = append(rest, ids[i])
		case h != nil && h.id != self:
			return conflict("identifier %s %q is already held by another user", ids[i].IDType, ids[i].Value)
		}
	}
	return checkIdentifiersFree(tx, inst, rest, self)
}

// free frees, in the transaction of a user about to be written, the keys
// of u that earlier users gave up: the stored rows still hold them.
func (d *dryRun) free(tx *gorm.DB, inst string, u *User) error {
	if d == nil {
		return nil
	}
	if h, ok := d.pids[keys.Fold(u.PrimaryID)]; ok && h == nil {
		// The user who held it has another one by now; the id stands in.
		if err := tx.Model(&User{}).Where("institution = ? AND primary_id_key = ? AND id <> ?", inst, keys.Fold(u.PrimaryID), u.ID).
			UpdateColumn("primary_id_key", gorm.Expr("id")).Error; err != nil {
			return err
		}
	}
	for i := range u.Identifiers {
		id := &u.Identifiers[i]
		if h, ok := d.ids[idKey{id.IDType, valueKeyOf(id)}]; ok && h == nil {
			if err := tx.Where("institution = ? AND id_type = ? AND value_key = ? AND user_id <> ?", inst, id.IDType, valueKeyOf(id), u.ID).
				Delete(&Identifier{}).Error; err != nil {
				return err
			}
		}
	}
	return nil
}

// record notes what applying a user did: before is the record matched
// (nil for a user created), after the record it left (nil when nothing was
// written), hash the fingerprint stored with it.
func (d *dryRun) record(before, after *User, hash string, rule ExternalApply) {
	if after == nil {
		return
	}
	if before != nil {
		if keys.Fold(before.PrimaryID) != keys.Fold(after.PrimaryID) {
			d.pids[keys.Fold(before.PrimaryID)] = nil
		}
		kept := map[idKey]bool{}
		for i := range after.Identifiers {
			kept[idKey{after.Identifiers[i].IDType, valueKeyOf(&after.Identifiers[i])}] = true
		}
		for i := range before.Identifiers {
			if k := (idKey{before.Identifiers[i].IDType, valueKeyOf(&before.Identifiers[i])}); !kept[k] {
				d.ids[k] = nil
			}
		}
	}
	h := &dryHolder{id: after.ID, primaryID: after.PrimaryID}
	d.pids[keys.Fold(after.PrimaryID)] = h
	matchKeys := 0
	for i := range after.Identifiers {
		d.ids[idKey{after.Identifiers[i].IDType, valueKeyOf(&after.Identifiers[i])}] = h
		if after.Identifiers[i].IDType == rule.Match.IDType {
			matchKeys++
		}
	}
	if d.keepAll || matchKeys > 1 {
		kept := cloneUser(after)
		kept.SISHash = hash
		d.users[after.ID] = kept
	} else {
		delete(d.users, after.ID)
	}
}
