package almaapi

import (
	"bytes"
	"errors"
	"io"
	"math"
	"net/http"
	"slices"
	"strconv"
	"strings"

	"github.com/gin-gonic/gin"

	"github.com/patronkit/patronkit/circulation"
	"github.com/patronkit/patronkit/fault"
	"github.com/patronkit/patronkit/patron"
	"github.com/patronkit/patronkit/patron/sis"
)

// route is a route of the API, the action the enforcer is asked for, and
// its handler.
type route struct {
	Method, Path string
	// Action is the action of casbinmodel the key's user needs, the same
	// as the native API's for the same deed.
	Action string
	// Named: the route names a user (:user_id), whose own record the
	// key's user may be reading.
	Named bool
	// NotFound is Alma's code of a lookup of the route that finds
	// nothing ("" for the user's).
	NotFound string
	handle   gin.HandlerFunc
}

// routes are the routes of Alma's users API that patronkit serves.
func (a *api) routes() []route {
	return slices.Concat(a.userRoutes(), a.userOpRoutes(), a.loanRoutes(), a.requestRoutes(), a.feeRoutes(), a.attachmentRoutes(), a.personalDataRoutes())
}

// userRoutes are Alma's routes on users.
func (a *api) userRoutes() []route {
	return []route{
		{http.MethodGet, "/users", "users.read", false, "", a.listUsers},
		{http.MethodPost, "/users", "users.create", false, "", a.createUser},
		{http.MethodGet, "/users/:user_id", "users.read", true, "", a.getUser},
		{http.MethodPut, "/users/:user_id", "users.write", true, "", a.replaceUser},
		{http.MethodDelete, "/users/:user_id", "users.delete", true, "", a.deleteUser},
	}
}

// limitOffset reads Alma's limit (0..100, default 10) and offset.
func limitOffset(c *gin.Context) (int, int, error) {
	limit, offset := 10, 0
	if s := c.Query("limit"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 0 || n > 100 {
			return 0, 0, badParameter("limit", "must be a whole number from 0 to 100")
		}
		limit = n
	}
	if s := c.Query("offset"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 0 {
			return 0, 0, badParameter("offset", "must be a whole number from 0")
		}
		offset = n
	}
	return limit, offset, nil
}

// parseQ reads Alma's q: field~value terms joined by AND (a term
// without a field is ALL~term).
func parseQ(q string) []patron.Term {
	var out []patron.Term
	for _, part := range splitAND(q) {
		part = strings.TrimSpace(part)
		if part == "" {
			continue
		}
		field, value, ok := strings.Cut(part, "~")
		if !ok {
			field, value = "ALL", part
		}
		field = strings.TrimSpace(field)
		if !strings.EqualFold(field, "ALL") {
			field = strings.ToLower(field)
		} else {
			field = "ALL"
		}
		out = append(out, patron.Term{Field: field, Value: value})
	}
	return out
}

// splitAND splits q at " AND " (any case).
func splitAND(q string) []string {
	var out []string
	for {
		i := strings.Index(strings.ToUpper(q), " AND ")
		if i < 0 {
			return append(out, q)
		}
		out = append(out, q[:i])
		q = q[i+5:]
	}
}

func (a *api) listUsers(c *gin.Context) {
	limit, offset, err := limitOffset(c)
	if err != nil {
		a.fail(c, err)
		return
	}
	order, _, _ := strings.Cut(c.Query("order_by"), ",")
	q := patron.Query{Terms: parseQ(c.Query("q")), OrderBy: strings.ToLower(strings.TrimSpace(order)), Limit: limit, Offset: offset}
	if limit == 0 { // the count only: no user is read (nor audited as read)
		q.Limit, q.Offset = 1, math.MaxInt32
	}
	page, err := a.kit.Patrons.List(a.ctx(c), a.inst(c), q)
	if err != nil {
		a.fail(c, err)
		return
	}
	desc, err := a.descs(c)
	if err != nil {
		a.fail(c, err)
		return
	}
	if wantsXML(c) {
		a.writeXML(c, http.StatusOK, func(w io.Writer) error {
			io.WriteString(w, `<users total_record_count="`+strconv.FormatInt(page.TotalRecordCount, 10)+`">`+"\n")
			for i := range page.Users {
				u := &page.Users[i]
				if err := sis.WriteAPIUserXML(w, u, &sis.APIUser{Desc: desc, Link: a.link(c, "users", u.PrimaryID), Brief: true}); err != nil {
					return err
				}
				io.WriteString(w, "\n")
			}
			_, err := io.WriteString(w, "</users>\n")
			return err
		})
		return
	}
	var b bytes.Buffer
	b.WriteString(`{"total_record_count":` + strconv.FormatInt(page.TotalRecordCount, 10))
	if len(page.Users) > 0 {
		b.WriteString(`,"user":[`)
		for i := range page.Users {
			u := &page.Users[i]
			j, err := sis.APIUserJSON(u, &sis.APIUser{Desc: desc, Link: a.link(c, "users", u.PrimaryID), Brief: true})
			if err != nil {
				a.fail(c, err)
				return
			}
			if i > 0 {
				b.WriteByte(',')
			}
			b.Write(j)
		}
		b.WriteByte(']')
	}
	b.WriteByte('}')
	a.writeJSON(c, http.StatusOK, b.Bytes())
}

// descs gives the descriptions of the institution's codes, read once
// per request.
func (a *api) descs(c *gin.Context) (func(table, code string) string, error) {
	labels, err := a.kit.Patrons.CodeLabels(c.Request.Context(), a.inst(c))
	if err != nil {
		return nil, err
	}
	m := make(map[[2]string]string, len(labels))
	for _, l := range labels {
		m[[2]string{l.CodeTable, l.Code}] = l.Description
	}
	return func(table, code string) string { return m[[2]string{table, code}] }, nil
}

// byIDType tells whether the request names its user by an identifier
// type (user_id_type other than all_unique).
func byIDType(c *gin.Context) (string, bool) {
	t := strings.TrimSpace(c.Query("user_id_type"))
	return t, t != "" && !strings.EqualFold(t, "all_unique")
}

// user reads the user the path names (:user_id, of user_id_type): with
// all_unique (the default), the primary_id, else an identifier of any
// type, as Alma.
func (a *api) user(c *gin.Context) (*patron.User, error) {
	if t, ok := byIDType(c); ok {
		return a.kit.Patrons.GetByIdentifier(a.ctx(c), a.inst(c), t, c.Param("user_id"))
	}
	u, err := a.kit.Patrons.Get(a.ctx(c), a.inst(c), c.Param("user_id"))
	if errors.Is(err, fault.ErrNotFound) {
		if byID, err2 := a.kit.Patrons.GetByAnyIdentifier(a.ctx(c), a.inst(c), c.Param("user_id")); err2 == nil {
			return byID, nil
		}
	}
	return u, err
}

// userRef names a user: their internal id and their primary_id as their
// record spells it.
type userRef struct {
	ID, PrimaryID string
}

// named is the user the path names (:user_id, of user_id_type): read
// through an identifier when user_id_type names its type, or when no
// primary_id is the one named (all_unique).
func (a *api) named(c *gin.Context) (userRef, error) {
	if _, ok := byIDType(c); !ok {
		id, spelled, err := a.kit.Patrons.ID(a.ctx(c), a.inst(c), c.Param("user_id"))
		if err == nil || !errors.Is(err, fault.ErrNotFound) {
			return userRef{id, spelled}, err
		}
	}
	u, err := a.user(c)
	if err != nil {
		return userRef{}, err
	}
	return userRef{u.ID, u.PrimaryID}, nil
}

// pathUser is named for a handler: when the user is not found (or the
// lookup fails) it answers Alma's error (401861, 401890 by user_id_type)
// and returns false.
func (a *api) pathUser(c *gin.Context) (userRef, bool) {
	u, err := a.named(c)
	if err != nil {
		a.fail(c, err)
		return userRef{}, false
	}
	return u, true
}

// writeUser answers one user, in the view and with the counts the request
// asks (view=full|brief, expand=loans,requests,fees).
func (a *api) writeUser(c *gin.Context, status int, u *patron.User) {
	o := &sis.APIUser{Link: a.link(c, "users", u.PrimaryID)}
	switch v := strings.ToLower(strings.TrimSpace(c.Query("view"))); v {
	case "", "full":
	case "brief":
		o.Brief = true
	default:
		a.fail(c, badParameter("view", "must be full or brief"))
		return
	}
	for _, e := range strings.Split(c.Query("expand"), ",") {
		switch strings.ToLower(strings.TrimSpace(e)) {
		case "", "none":
		case "loans":
			loans, err := a.kit.Circulation.Loans(a.ctx(c), u.Institution, u.PrimaryID, true)
			if err != nil {
				a.fail(c, err)
				return
			}
			n := len(loans)
			o.Loans, o.LoansLink = &n, a.link(c, "users", u.PrimaryID, "loans")
		case "requests":
			reqs, err := a.kit.Circulation.Requests(a.ctx(c), u.Institution, u.PrimaryID, true)
			if err != nil {
				a.fail(c, err)
				return
			}
			n := len(reqs)
			o.Requests, o.RequestsLink = &n, a.link(c, "users", u.PrimaryID, "requests")
		case "fees":
			bal, err := a.kit.Circulation.Balance(a.ctx(c), u.Institution, u.PrimaryID)
			if err != nil {
				a.fail(c, err)
				return
			}
			var sum float64
			for cur, v := range bal {
				f, _ := strconv.ParseFloat(circulation.FormatMoney(v, cur), 64)
				sum += f
			}
			o.Fees, o.FeesLink = &sum, a.link(c, "users", u.PrimaryID, "fees")
		default:
			a.fail(c, badParameter("expand", "must be none or a comma-separated list of loans, requests, fees"))
			return
		}
	}
	desc, err := a.descs(c)
	if err != nil {
		a.fail(c, err)
		return
	}
	o.Desc = desc
	if wantsXML(c) {
		a.writeXML(c, status, func(w io.Writer) error { return sis.WriteAPIUserXML(w, u, o) })
		return
	}
	j, err := sis.APIUserJSON(u, o)
	if err != nil {
		a.fail(c, err)
		return
	}
	a.writeJSON(c, status, j)
}

func (a *api) getUser(c *gin.Context) {
	u, err := a.user(c)
	if err != nil {
		a.fail(c, err)
		return
	}
	a.writeUser(c, http.StatusOK, u)
}

// readUser reads the user of a POST or PUT body: Alma's 400 (401676)
// when it is not a user in XML or JSON.
func (a *api) readUser(c *gin.Context) (*patron.User, error) {
	body, asXML, err := a.body(c)
	if err != nil {
		return nil, err
	}
	u, _, err := sis.ReadAPIUser(body, asXML, sis.Limits{MaxUserBytes: a.opts.MaxBodyBytes})
	if err != nil {
		what := "XML"
		if !asXML {
			what = "JSON"
		}
		return nil, &requestError{codeInvalidXML, "No valid " + what + " was given: " + err.Error()}
	}
	return u, nil
}

// boolParam checks that a query parameter, when given, is true or false.
func boolParam(c *gin.Context, name string) error {
	switch strings.ToLower(c.Query(name)) {
	case "", "true", "false":
		return nil
	}
	return badParameter(name, "must be true or false")
}

func (a *api) createUser(c *gin.Context) {
	for _, p := range []string{"social_authentication", "send_pin_number_letter"} {
		if err := boolParam(c, p); err != nil {
			a.fail(c, err)
			return
		}
	}
	in, err := a.readUser(c)
	if err != nil {
		a.fail(c, err)
		return
	}
	if isStaff(in.RecordType) && !a.allowStaff(c, "create a STAFF record") {
		return
	}
	u, err := a.kit.Patrons.Create(a.ctx(c), a.inst(c), in)
	if err != nil {
		a.fail(c, err)
		return
	}
	a.writeUser(c, http.StatusOK, u)
}

func isStaff(recordType string) bool {
	return strings.EqualFold(strings.TrimSpace(recordType), patron.RecordStaff)
}

// allowStaff asks for users.staff besides the route's action, as the
// native API does: a STAFF record signs in as staff and holds roles.
func (a *api) allowStaff(c *gin.Context, what string) bool {
	ok, err := a.decide(c, "users.staff", "")
	if err != nil {
		a.fail(c, err)
		return false
	}
	if !ok {
		a.almaError(c, http.StatusUnauthorized, codeUnauthorized, unauthorizedMessage+" The roles of the key's user do not allow users.staff: to "+what+".")
	}
	return ok
}

// retained are the fields Alma's PUT keeps when the body leaves them
// empty, unless override names them.
var retained = []struct {
	name string
	at   func(*patron.User) *string
}{
	{"user_group", func(u *patron.User) *string { return &u.UserGroup }},
	{"job_category", func(u *patron.User) *string { return &u.JobCategory }},
	{"preferred_language", func(u *patron.User) *string { return &u.PreferredLanguage }},
	{"campus_code", func(u *patron.User) *string { return &u.CampusCode }},
	{"rs_libraries", func(u *patron.User) *string { return &u.RSLibrary }},
	{"user_title", func(u *patron.User) *string { return &u.UserTitle }},
}

// replaceUser is Alma's PUT: the record is replaced by the body, every
// segment list swapped whole; the retained fields the body leaves empty
// are kept unless override names them; on an external user the External
// segments are the SIS's and stay as they are (those sent are set aside).
func (a *api) replaceUser(c *gin.Context) {
	if err := boolParam(c, "send_pin_number_letter"); err != nil {
		a.fail(c, err)
		return
	}
	override := map[string]bool{}
	for _, f := range strings.Split(c.Query("override"), ",") {
		if f = strings.ToLower(strings.TrimSpace(f)); f != "" {
			override[f] = true
		}
	}
	cur, err := a.user(c)
	if err != nil {
		a.fail(c, err)
		return
	}
	in, err := a.readUser(c)
	if err != nil {
		a.fail(c, err)
		return
	}
	for _, r := range retained {
		if *r.at(in) == "" && !override[r.name] {
			*r.at(in) = *r.at(cur)
		}
	}
	if strings.TrimSpace(in.PrimaryID) == "" {
		in.PrimaryID = cur.PrimaryID
	}
	if cur.IsExternal() {
		dropExternal(in)
	}
	if what := staffChange(cur, in); what != "" && !a.allowStaff(c, what) {
		return
	}
	u, err := a.kit.Patrons.Replace(a.ctx(c), a.inst(c), cur.PrimaryID, cur.Version, in)
	if err != nil {
		a.fail(c, err)
		return
	}
	a.writeUser(c, http.StatusOK, u)
}

// staffChange says what a replacement changes that makes a staff member
// (the native API's rule), or "".
func staffChange(cur, in *patron.User) string {
	was := cur.RecordType == patron.RecordStaff
	sent := strings.TrimSpace(in.RecordType)
	switch {
	case !was && isStaff(sent):
		return "make a record STAFF"
	case was && sent != "" && !isStaff(sent):
		return "make a STAFF record " + strings.ToUpper(sent)
	case was && in.PINNumber != "":
		return "set the PIN of a STAFF record"
	case was && !strings.EqualFold(strings.TrimSpace(in.PrimaryID), cur.PrimaryID):
		return "change the primary_id of a STAFF record"
	}
	return ""
}

// dropExternal sets aside the External segments of a body: an external
// user's are the SIS's, kept as they are.
func dropExternal(u *patron.User) {
	keep := func(s patron.Segment) bool { return s.SegmentType == patron.SegmentExternal }
	u.Identifiers = slices.DeleteFunc(u.Identifiers, func(x patron.Identifier) bool { return keep(x.Segment) })
	u.Addresses = slices.DeleteFunc(u.Addresses, func(x patron.Address) bool { return keep(x.Segment) })
	u.Emails = slices.DeleteFunc(u.Emails, func(x patron.Email) bool { return keep(x.Segment) })
	u.Phones = slices.DeleteFunc(u.Phones, func(x patron.Phone) bool { return keep(x.Segment) })
	u.Notes = slices.DeleteFunc(u.Notes, func(x patron.Note) bool { return keep(x.Segment) })
	u.Blocks = slices.DeleteFunc(u.Blocks, func(x patron.Block) bool { return keep(x.Segment) })
	u.Statistics = slices.DeleteFunc(u.Statistics, func(x patron.Statistic) bool { return keep(x.Segment) })
}

func (a *api) deleteUser(c *gin.Context) {
	who, ok := a.pathUser(c)
	if !ok {
		return
	}
	pid := who.PrimaryID
	err := a.kit.Patrons.Delete(a.ctx(c), a.inst(c), pid)
	if e, ok := fault.As(err); ok && e.Kind == fault.Refused {
		a.almaError(c, http.StatusBadRequest, codeDeleteFailed, "Failed to delete user with identifier "+pid+": "+strings.Join(append([]string{e.Detail}, e.Reasons...), "; "))
		return
	}
	if err != nil {
		a.fail(c, err)
		return
	}
	c.Status(http.StatusNoContent)
}
