package patron

import (
	"encoding/json"
	"fmt"
	"slices"
	"sort"
	"time"
)

// keepHeld gives m the held lists of the segment kinds not in changed: the
// rows stay as they are, ids included.
func keepHeld(m, cur *User, changed map[string]bool) {
	if !changed[KindIdentifiers] {
		m.Identifiers = cur.Identifiers
	}
	if !changed[KindAddresses] {
		m.Addresses = cur.Addresses
	}
	if !changed[KindEmails] {
		m.Emails = cur.Emails
	}
	if !changed[KindPhones] {
		m.Phones = cur.Phones
	}
	if !changed[KindNotes] {
		m.Notes = cur.Notes
	}
	if !changed[KindBlocks] {
		m.Blocks = cur.Blocks
	}
	if !changed[KindStatistics] {
		m.Statistics = cur.Statistics
	}
	if !changed[KindProxyFor] {
		m.ProxyFor = cur.ProxyFor
	}
}

// mergeIncoming builds the record an update by ApplyExternal leaves: the
// incoming core fields but the retained ones staff changed by hand (or
// that arrive empty), the incoming External segments, and the Internal
// segments held.
func (s *Service) mergeIncoming(cur, in *User, overridden map[string]bool) (*User, error) {
	m := *in
	m.ID, m.Institution, m.CreatedAt, m.Version = cur.ID, cur.Institution, cur.CreatedAt, cur.Version
	keep := func(field string, held string, incoming *string) {
		if overridden[field] || *incoming == "" {
			*incoming = held
		}
	}
	keep("user_group", cur.UserGroup, &m.UserGroup)
	keep("job_category", cur.JobCategory, &m.JobCategory)
	keep("preferred_language", cur.PreferredLanguage, &m.PreferredLanguage)
	keep("campus_code", cur.CampusCode, &m.CampusCode)
	keep("rs_library", cur.RSLibrary, &m.RSLibrary)
	m.PINHash = cur.PINHash
	if in.PINNumber != "" && !overridden["pin_number"] && !s.pinMatches(cur.PINHash, in.PINNumber) {
		h, err := s.hashPIN(in.PINNumber)
		if err != nil {
			return nil, err
		}
		m.PINHash = h
	}
	m.PINNumber = ""
	now := s.clock()
	stampSIS(&m, now)
	// Keep the dates of notes and blocks the SIS sent before.
	keepSISDates(&m, cur)
	// An identifier the SIS now sends replaces the library's own copy.
	sent := map[[2]string]bool{}
	for _, id := range m.Identifiers {
		sent[[2]string{id.IDType, id.ValueKey}] = true
	}
	m.Identifiers = slices.Clone(m.Identifiers)
	for _, id := range internalOf(cur.Identifiers) {
		if !sent[[2]string{id.IDType, id.ValueKey}] {
			m.Identifiers = append(m.Identifiers, id)
		}
	}
	m.Addresses = append(slices.Clone(m.Addresses), internalOf(cur.Addresses)...)
	m.Emails = append(slices.Clone(m.Emails), internalOf(cur.Emails)...)
	m.Phones = append(slices.Clone(m.Phones), internalOf(cur.Phones)...)
	m.Notes = append(slices.Clone(m.Notes), internalOf(cur.Notes)...)
	m.Blocks = append(slices.Clone(m.Blocks), internalOf(cur.Blocks)...)
	m.Statistics = append(slices.Clone(m.Statistics), internalOf(cur.Statistics)...)
	m.ProxyFor = append(slices.Clone(m.ProxyFor), internalOf(cur.ProxyFor)...)
	// The SIS says which contact is preferred when it says so at all.
	sisPrefers(m.Emails, func(e *Email) *bool { return &e.Preferred })
	sisPrefers(m.Phones, func(p *Phone) *bool { return &p.Preferred })
	sisPrefers(m.Phones, func(p *Phone) *bool { return &p.PreferredSMS })
	sisPrefers(m.Addresses, func(a *Address) *bool { return &a.Preferred })
	return &m, nil
}

func internalOf[T segmentRow](list []T) []T {
	var out []T
	for _, x := range list {
		if !x.segment().IsExternal() {
			out = append(out, x)
		}
	}
	return out
}

// sisPrefers clears the flag on Internal entries when an External one has
// it: at most one entry of a kind is preferred.
func sisPrefers[T segmentRow](list []T, flag func(*T) *bool) {
	sis := false
	for i := range list {
		if list[i].segment().IsExternal() && *flag(&list[i]) {
			sis = true
		}
	}
	if !sis {
		return
	}
	for i := range list {
		if !list[i].segment().IsExternal() {
			*flag(&list[i]) = false
		}
	}
}

// keepSISDates gives incoming notes and blocks that the SIS sent before the
// dates they were first received.
func keepSISDates(m, cur *User) {
	noteDates := map[string][]int{}
	for i, n := range cur.Notes {
		if n.IsExternal() {
			noteDates[n.NoteType+"\x00"+n.NoteText] = append(noteDates[n.NoteType+"\x00"+n.NoteText], i)
		}
	}
	for i := range m.Notes {
		k := m.Notes[i].NoteType + "\x00" + m.Notes[i].NoteText
		if idx := noteDates[k]; len(idx) > 0 {
			m.Notes[i].CreatedDate, noteDates[k] = cur.Notes[idx[0]].CreatedDate, idx[1:]
		}
	}
	blockDates := map[string][]int{}
	for i, b := range cur.Blocks {
		if b.IsExternal() {
			blockDates[b.BlockType+"\x00"+b.BlockDescription] = append(blockDates[b.BlockType+"\x00"+b.BlockDescription], i)
		}
	}
	for i := range m.Blocks {
		k := m.Blocks[i].BlockType + "\x00" + m.Blocks[i].BlockDescription
		if idx := blockDates[k]; len(idx) > 0 {
			m.Blocks[i].CreatedDate, blockDates[k] = cur.Blocks[idx[0]].CreatedDate, idx[1:]
		}
	}
}

// syncChanges names what differs between the held record and the merged
// one: core fields by JSON name, segment lists by kind.
func syncChanges(cur, m *User) []string {
	var out []string
	a, b := coreMap(cur), coreMap(m)
	for k, v := range b {
		if a[k] != v {
			out = append(out, k)
		}
	}
	if cur.PINHash != m.PINHash {
		out = append(out, "pin_number")
	}
	ka, kb := segmentPrints(cur), segmentPrints(m)
	for _, kind := range SegmentKinds {
		if !slices.Equal(ka[kind], kb[kind]) {
			out = append(out, kind)
		}
	}
	sort.Strings(out)
	return out
}

// coreMap is the core fields of u by JSON name, as text.
func coreMap(u *User) map[string]string {
	c := *u
	c.Identifiers, c.Addresses, c.Emails, c.Phones, c.Notes, c.Blocks, c.Statistics, c.ProxyFor = nil, nil, nil, nil, nil, nil, nil, nil
	c.Version, c.Warnings = 0, nil
	c.CreatedAt, c.UpdatedAt = time.Time{}, time.Time{}
	b, _ := json.Marshal(c)
	var m map[string]any
	_ = json.Unmarshal(b, &m)
	out := make(map[string]string, len(m))
	for k, v := range m {
		if k == "created_date" || k == "updated_date" || k == "version" {
			continue
		}
		out[k] = fmt.Sprint(v)
	}
	return out
}

// segmentPrints lists, per kind, the content of each segment (without ids
// and dates), sorted: two users with the same prints hold the same
// segments.
func segmentPrints(u *User) map[string][]string {
	c := cloneUser(u)
	eachSegment(c, func(_ string, seg *Segment) { seg.ID, seg.UserID = "", "" })
	out := map[string][]string{}
	add := func(kind string, v any) {
		b, _ := json.Marshal(v) // plain data: cannot fail
		out[kind] = append(out[kind], string(b))
	}
	for _, x := range c.Identifiers {
		add(KindIdentifiers, x)
	}
	for _, x := range c.Addresses {
		add(KindAddresses, x)
	}
	for _, x := range c.Emails {
		add(KindEmails, x)
	}
	for _, x := range c.Phones {
		add(KindPhones, x)
	}
	for _, x := range c.Notes {
		x.CreatedDate = time.Time{}
		add(KindNotes, x)
	}
	for _, x := range c.Blocks {
		x.CreatedDate = time.Time{}
		add(KindBlocks, x)
	}
	for _, x := range c.Statistics {
		add(KindStatistics, x)
	}
	for _, x := range c.ProxyFor {
		add(KindProxyFor, x)
	}
	for k := range out {
		sort.Strings(out[k])
	}
	return out
}
