package patron

import (
	"context"
	"strings"

	"github.com/patronkit/patronkit/fault"
)

// Query selects users for a list. Empty fields do not filter.
type Query struct {
	// Q matches words against names, primary_id, identifiers and email
	// addresses; every word must match somewhere (case-insensitive).
	Q           string
	UserGroup   string
	Status      string
	AccountType string
	RecordType  string
	// Terms match words against one field each, every term and every
	// word of it (Alma's q=last_name~smith AND first_name~john): see
	// Term.
	Terms []Term
	// OrderBy orders the page: "" or "last_name" (last name, first name,
	// primary_id), "first_name" (first name, last name, primary_id) or
	// "primary_id".
	OrderBy string
	// Limit is the page size: default 10, at most 100.
	Limit int
	// Offset is how many matching users to pass over.
	Offset int
}

// Term is one condition of Query.Terms: every word of Value must be in
// Field, one of TermFields (case-insensitive; a "*" in a word stands for
// anything). ALL is every field Q matches.
type Term struct {
	Field string
	Value string
}

// TermFields are the fields a Term may name.
var TermFields = []string{"primary_id", "first_name", "last_name", "email", "identifiers", "user_group", "ALL"}

// termClauses are the conditions a word (a LIKE pattern) meets in each
// field of a Term; ALL is Q's.
var termClauses = map[string]string{
	"primary_id":  `primary_id_key LIKE ? ESCAPE '!'`,
	"first_name":  `LOWER(first_name) LIKE ? ESCAPE '!'`,
	"last_name":   `LOWER(last_name) LIKE ? ESCAPE '!'`,
	"email":       `EXISTS (SELECT 1 FROM pk_user_emails e WHERE e.user_id = pk_users.id AND LOWER(e.email_address) LIKE ? ESCAPE '!')`,
	"identifiers": `EXISTS (SELECT 1 FROM pk_user_identifiers i WHERE i.user_id = pk_users.id AND i.value_key LIKE ? ESCAPE '!')`,
	"user_group":  `LOWER(user_group) LIKE ? ESCAPE '!'`,
}

// Page is one page of a list, with the count of all matches.
type Page struct {
	Users            []User `json:"user"`
	TotalRecordCount int64  `json:"total_record_count"`
}

// List returns a page of an institution's users, ordered by last name,
// first name and primary_id. Listed users carry core fields only. Each
// user listed is on the audit trail before the page is returned; when
// the entries cannot be written, List fails.
func (s *Service) List(ctx context.Context, inst string, q Query) (Page, error) {
	if q.Limit <= 0 {
		q.Limit = 10
	}
	if q.Limit > 100 || q.Offset < 0 {
		return Page{}, invalid(fault.FieldError{Field: "limit", Code: "out_of_range", Message: "limit must be 1..100 and offset at least 0"})
	}
	var bad []fault.FieldError
	for _, f := range [][2]string{{"q", q.Q}, {"user_group", q.UserGroup}, {"status", q.Status}, {"account_type", q.AccountType}, {"record_type", q.RecordType}} {
		if e := TextError(f[0], f[1], false); e != nil {
			bad = append(bad, *e)
		}
	}
	for _, t := range q.Terms {
		if _, ok := termClauses[t.Field]; !ok && t.Field != "ALL" {
			bad = append(bad, fault.FieldError{Field: "q", Code: "unknown_value", Message: "cannot search the field " + t.Field + "; the fields are " + strings.Join(TermFields, ", ")})
		} else if e := TextError("q", t.Value, false); e != nil {
			bad = append(bad, *e)
		}
	}
	order := "last_name, first_name, primary_id_key"
	switch q.OrderBy {
	case "", "last_name":
	case "first_name":
		order = "first_name, last_name, primary_id_key"
	case "primary_id":
		order = "primary_id_key"
	default:
		bad = append(bad, fault.FieldError{Field: "order_by", Code: "unknown_value", Message: "must be last_name, first_name or primary_id"})
	}
	if len(bad) > 0 {
		return Page{}, &fault.Error{Kind: fault.Invalid, Detail: "the query is not valid", Fields: bad}
	}
	db := s.conn(ctx).Model(&User{}).Where("institution = ?", inst)
	for field, v := range map[string]string{"user_group": q.UserGroup, "status": strings.ToUpper(q.Status), "account_type": strings.ToUpper(q.AccountType), "record_type": strings.ToUpper(q.RecordType)} {
		if v != "" {
			db = db.Where(field+" = ?", v)
		}
	}
	for _, word := range strings.Fields(strings.ToLower(q.Q)) {
		like := "%" + escapeLike(word) + "%"
		db = db.Where(`LOWER(first_name) LIKE ? ESCAPE '!' OR LOWER(last_name) LIKE ? ESCAPE '!' OR primary_id_key LIKE ? ESCAPE '!'`+
			` OR EXISTS (SELECT 1 FROM pk_user_identifiers i WHERE i.user_id = pk_users.id AND i.value_key LIKE ? ESCAPE '!')`+
			` OR EXISTS (SELECT 1 FROM pk_user_emails e WHERE e.user_id = pk_users.id AND LOWER(e.email_address) LIKE ? ESCAPE '!')`,
			like, like, like, like, like)
	}
	for _, t := range q.Terms {
		for _, word := range strings.Fields(strings.ToLower(t.Value)) {
			like := "%" + strings.ReplaceAll(escapeLike(strings.Trim(word, "*")), "*", "%") + "%"
			if t.Field != "ALL" {
				db = db.Where(termClauses[t.Field], like)
				continue
			}
			db = db.Where(termClauses["first_name"]+" OR "+termClauses["last_name"]+" OR "+termClauses["primary_id"]+" OR "+termClauses["identifiers"]+" OR "+termClauses["email"],
				like, like, like, like, like)
		}
	}
	var page Page
	if err := db.Count(&page.TotalRecordCount).Error; err != nil {
		return Page{}, err
	}
	if err := db.Order(order).Limit(q.Limit).Offset(q.Offset).Find(&page.Users).Error; err != nil {
		return Page{}, err
	}
	var es []AuditEvent
	for i := range page.Users {
		u := &page.Users[i]
		s.finishRead(u)
		u.Warnings = nil // computed from segments, which a list does not carry
		if s.audit != nil {
			es = append(es, s.event(ctx, inst, AuditRead, u.PrimaryID, "user list"))
		}
	}
	// One entry per user listed, all kept in one call before the page
	// leaves; a page whose entries cannot be written is not handed out.
	if err := s.keepMany(ctx, es); err != nil {
		return Page{}, err
	}
	if page.Users == nil {
		page.Users = []User{}
	}
	return page, nil
}

// escapeLike makes a user's words literal inside LIKE, with '!' as escape.
func escapeLike(s string) string {
	r := strings.NewReplacer("!", "!!", "%", "!%", "_", "!_")
	return r.Replace(s)
}
