package patron

import (
	"encoding/json"
	"maps"
	"slices"
	"unicode/utf8"
)

// The bounds of the details of a change (see ChangeDetails).
const (
	// detailItems is the most entries of one segment list an entry
	// shows added, and as many removed; the rest are counted.
	detailItems = 20
	// detailValue is the most characters of one value shown; a longer
	// one is cut and ends with "…".
	detailValue = 500
	// detailBytes is the most bytes the details of one entry take: a
	// larger change names its fields only, each as "changed".
	detailBytes = 32 << 10
)

// Changed is what the details of a change give for a secret that changed
// (the PIN), and for every field of a change too large to show whole:
// never the value, nor its hash.
const Changed = "changed"

// secretFields are the fields of a user record whose values an audit
// entry never shows: the PIN, kept as a slow hash only.
var secretFields = []string{"pin_number"}

// ChangeDetails describes the change of a user record from before to
// after for its audit entry (AuditEvent.Details), as a JSON object with a
// member per field or segment list that changed:
//
//   - a core field by its JSON name, as {"old": ..., "new": ...}; a side
//     that is empty is left out: {"last_name":{"old":"Doe","new":"Roe"}},
//     {"middle_name":{"new":"J."}};
//   - a segment list by its JSON name (user_identifiers, addresses,
//     emails, phones, user_notes, user_blocks, user_statistics,
//     proxy_for_users), as the entries "added" and "removed", each with
//     its fields but its id: an entry edited in place is its old content
//     removed and its new one added. At most 20 entries of each side are
//     shown; "more_added" and "more_removed" count the rest;
//   - a secret (pin_number) only as "changed", never its value or hash.
//
// A creation (before nil) gives the new values only, a deletion (after
// nil) the old ones. Values longer than 500 characters are cut, ending
// with "…"; a change whose details would take more than 32 KiB names its
// fields only, each as "changed". What the service keeps for itself (the
// version, the dates of the record, the SIS's fingerprint) is left out,
// and so is what did not change: a change of nothing is "{}".
func ChangeDetails(before, after *User) string {
	d := changeDiff(before, after)
	b, _ := json.Marshal(d) // strings, counts and lists of them: cannot fail
	if len(b) <= detailBytes {
		return string(b)
	}
	names := make(map[string]string, len(d))
	for k := range d {
		names[k] = Changed
	}
	b, _ = json.Marshal(names)
	return string(b)
}

// changeDiff is the members of ChangeDetails.
func changeDiff(before, after *User) map[string]any {
	out := map[string]any{}
	oldCore, newCore := coreOf(before), coreOf(after)
	for _, k := range slices.Sorted(maps.Keys(mapUnion(oldCore, newCore))) {
		o, n := oldCore[k], newCore[k]
		if o == n {
			continue
		}
		c := map[string]string{}
		if o != "" {
			c["old"] = clipValue(o)
		}
		if n != "" {
			c["new"] = clipValue(n)
		}
		out[k] = c
	}
	if pinHash(before) != pinHash(after) {
		out["pin_number"] = Changed
	}
	oldSegs, newSegs := printsOf(before), printsOf(after)
	for _, kind := range SegmentKinds {
		added, removed := multisetDiff(oldSegs[kind], newSegs[kind])
		if len(added) == 0 && len(removed) == 0 {
			continue
		}
		c := map[string]any{}
		side(c, "added", added)
		side(c, "removed", removed)
		out[kind] = c
	}
	return out
}

// coreOf is the core fields of u by JSON name, without the secrets and
// the empty ones; nothing for nil.
func coreOf(u *User) map[string]string {
	if u == nil {
		return nil
	}
	m := coreMap(u)
	for _, k := range secretFields {
		delete(m, k)
	}
	for k, v := range m {
		if v == "" {
			delete(m, k)
		}
	}
	return m
}

func pinHash(u *User) string {
	if u == nil {
		return ""
	}
	return u.PINHash
}

// printsOf is segmentPrints of u; nothing for nil.
func printsOf(u *User) map[string][]string {
	if u == nil {
		return nil
	}
	return segmentPrints(u)
}

func mapUnion(a, b map[string]string) map[string]string {
	u := make(map[string]string, len(a)+len(b))
	maps.Copy(u, a)
	maps.Copy(u, b)
	return u
}

// multisetDiff gives the prints of after that before does not hold, and
// those of before that after does not, counting repeats; both are sorted.
func multisetDiff(before, after []string) (added, removed []string) {
	held := map[string]int{}
	for _, p := range before {
		held[p]++
	}
	for _, p := range after {
		if held[p] > 0 {
			held[p]--
			continue
		}
		added = append(added, p)
	}
	for _, p := range before {
		if held[p] > 0 {
			held[p]--
			removed = append(removed, p)
		}
	}
	return added, removed
}

// side puts up to detailItems entries of prints into c under name, and
// counts the rest under "more_" + name.
func side(c map[string]any, name string, prints []string) {
	if len(prints) == 0 {
		return
	}
	var items []map[string]any
	for _, p := range prints[:min(len(prints), detailItems)] {
		var item map[string]any
		_ = json.Unmarshal([]byte(p), &item) // made by json.Marshal
		delete(item, "id")
		delete(item, "created_date") // zeroed by segmentPrints; the entry is dated
		for k, v := range item {
			if s, ok := v.(string); ok {
				item[k] = clipValue(s)
			}
		}
		items = append(items, item)
	}
	c[name] = items
	if more := len(prints) - detailItems; more > 0 {
		c["more_"+name] = more
	}
}

// clipValue cuts s to detailValue characters.
func clipValue(s string) string {
	if utf8.RuneCountInString(s) <= detailValue {
		return s
	}
	return string([]rune(s)[:detailValue-1]) + "…"
}
