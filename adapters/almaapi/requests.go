package almaapi

import (
	"encoding/xml"
	"net/http"
	"strings"

	"github.com/gin-gonic/gin"

	"github.com/patronkit/patronkit/circulation"
	"github.com/patronkit/patronkit/fault"
	"github.com/patronkit/patronkit/patron/sis"
)

// Alma's codes of the request routes.
const (
	codeRequestMissing = "401694" // Request Identifier not found.
	codeNoItems        = "401129" // No items can fulfill the submitted request.
	codeDuplicate      = "401136" // Failed to save the request: Patron has active request for selected item.
)

// userRequest is Alma's user_request.
type userRequest struct {
	XMLName               xml.Name `xml:"user_request" json:"-"`
	Link                  string   `xml:"link,attr,omitempty" json:"link,omitempty"`
	UserPrimaryID         string   `xml:"user_primary_id" json:"user_primary_id"`
	RequestID             string   `xml:"request_id" json:"request_id"`
	RequestType           string   `xml:"request_type" json:"request_type"`
	RequestSubType        code     `xml:"request_sub_type" json:"request_sub_type"`
	Title                 string   `xml:"title,omitempty" json:"title,omitempty"`
	MMSID                 string   `xml:"mms_id,omitempty" json:"mms_id,omitempty"`
	Barcode               string   `xml:"barcode,omitempty" json:"barcode,omitempty"`
	PickupLocationType    string   `xml:"pickup_location_type" json:"pickup_location_type"`
	PickupLocation        string   `xml:"pickup_location,omitempty" json:"pickup_location,omitempty"`
	PickupLocationLibrary string   `xml:"pickup_location_library,omitempty" json:"pickup_location_library,omitempty"`
	RequestStatus         string   `xml:"request_status" json:"request_status"`
	PlaceInQueue          int      `xml:"place_in_queue,omitempty" json:"place_in_queue,omitempty"`
	RequestDate           string   `xml:"request_date" json:"request_date"`
	RequestTime           string   `xml:"request_time" json:"request_time"`
	LastInterestDate      string   `xml:"last_interest_date,omitempty" json:"last_interest_date,omitempty"`
	ExpiryDate            string   `xml:"expiry_date,omitempty" json:"expiry_date,omitempty"`
}

// userRequests is Alma's user_requests.
type userRequests struct {
	XMLName  xml.Name      `xml:"user_requests" json:"-"`
	Total    int           `xml:"total_record_count,attr" json:"total_record_count"`
	Requests []userRequest `xml:"user_request" json:"user_request"`
}

// requestOut is a request as Alma writes it.
func (a *api) requestOut(c *gin.Context, r *circulation.Request, libs map[string]string) userRequest {
	out := userRequest{
		Link: a.link(c, "users", r.PrimaryID, "requests", r.ID), UserPrimaryID: r.PrimaryID, RequestID: r.ID, RequestType: "HOLD",
		RequestSubType: code{"PATRON_PHYSICAL", "Patron physical item request"}, Title: r.Title, MMSID: r.TitleID, Barcode: r.Barcode,
		PickupLocationType: "LIBRARY", PickupLocation: libs[r.PickupLibrary], PickupLocationLibrary: r.PickupLibrary,
		PlaceInQueue: r.Place, RequestDate: sis.APIDate(r.PlacedAt.UTC().Format("2006-01-02")), RequestTime: almaTime(r.PlacedAt),
		LastInterestDate: sis.APIDate(r.NotNeededAfter),
	}
	if r.DeliveryAddress != "" {
		out.PickupLocationType, out.PickupLocation = "USER_HOME_ADDRESS", ""
	}
	switch r.Status {
	case circulation.RequestWaiting:
		out.RequestStatus = "NOT_STARTED"
	case circulation.RequestOnHoldShelf:
		out.RequestStatus = "ON_HOLD_SHELF"
		if r.HoldUntil != nil {
			out.ExpiryDate = sis.APIDate(r.HoldUntil.UTC().Format("2006-01-02"))
		}
	default:
		out.RequestStatus = "HISTORY"
	}
	return out
}

// requestRoutes are Alma's routes on a user's requests.
func (a *api) requestRoutes() []route {
	return []route{
		{http.MethodGet, "/users/:user_id/requests", "requests.read", true, "", a.listRequests},
		{http.MethodPost, "/users/:user_id/requests", "requests.place", true, "", a.placeRequest},
		{http.MethodGet, "/users/:user_id/requests/:request_id", "requests.read", true, codeRequestMissing, a.getRequest},
		{http.MethodDelete, "/users/:user_id/requests/:request_id", "requests.cancel", true, codeRequestMissing, a.cancelRequest},
		{http.MethodPut, "/users/:user_id/requests/:request_id", "requests.place", true, codeRequestMissing, a.updateRequest},
	}
}

func (a *api) listRequests(c *gin.Context) {
	active := true
	switch strings.ToLower(strings.TrimSpace(c.Query("status"))) {
	case "", "active":
	case "history", "all":
		active = false
	default:
		a.fail(c, badParameter("status", "must be active or history"))
		return
	}
	if t := strings.ToUpper(strings.TrimSpace(c.Query("request_type"))); t != "" && t != "HOLD" {
		if !almaRequestTypes[t] {
			a.fail(c, badParameter("request_type", t+" is not one of Alma's request types (HOLD, DIGITIZATION, BOOKING...)"))
			return
		}
		a.answer(c, http.StatusOK, userRequests{Requests: []userRequest{}}) // holds are the only requests kept here
		return
	}
	limit, offset, err := limitOffset(c)
	if err != nil {
		a.fail(c, err)
		return
	}
	who, ok := a.pathUser(c)
	if !ok {
		return
	}
	pid := who.PrimaryID
	rs, err := a.kit.Circulation.Requests(a.ctx(c), a.inst(c), pid, active)
	if err != nil {
		a.fail(c, err)
		return
	}
	libs := a.libraryNames(c)
	out := userRequests{Total: len(rs), Requests: []userRequest{}}
	for i := offset; i < len(rs) && i < offset+limit; i++ {
		out.Requests = append(out.Requests, a.requestOut(c, &rs[i], libs))
	}
	a.answer(c, http.StatusOK, out)
}

// almaRequestTypes are the request types of Alma's user_request; HOLD
// is the only one patronkit keeps.
var almaRequestTypes = map[string]bool{"HOLD": true, "DIGITIZATION": true, "BOOKING": true, "MOVE": true, "WORK_ORDER": true,
	"TRANSIT": true, "RESOURCE_SHARING_P2P_REQUEST": true, "STAFF_PHYSICAL_DIGITIZATION": true}

// holdOnly checks the request_type and pickup_location_type of a
// user_request sent: a HOLD (or none) picked up at a library. Another of
// Alma's types answers Alma's unsupported operation (401873) naming it,
// a type Alma does not have 401666, a delivery 60308; it returns false
// when it answered.
func (a *api) holdOnly(c *gin.Context, requestType, pickupType string) bool {
	if t := strings.ToUpper(strings.TrimSpace(requestType)); t != "" && t != "HOLD" {
		if !almaRequestTypes[t] {
			a.fail(c, badParameter("request_type", t+" is not one of Alma's request types (HOLD, DIGITIZATION, BOOKING...)"))
			return false
		}
		a.almaError(c, http.StatusBadRequest, codeNotSupported, "The operation is not supported: request_type "+t+": only HOLD requests are kept here.")
		return false
	}
	if t := strings.ToUpper(strings.TrimSpace(pickupType)); t != "" && t != "LIBRARY" {
		a.almaError(c, http.StatusBadRequest, "60308", "Delivery to personal address is not supported through this API.")
		return false
	}
	return true
}

// newRequestBody is the user_request a client sends to place a hold.
type newRequestBody struct {
	XMLName               xml.Name `xml:"user_request" json:"-"`
	RequestType           string   `xml:"request_type" json:"request_type"`
	PickupLocationType    string   `xml:"pickup_location_type" json:"pickup_location_type"`
	PickupLocationLibrary string   `xml:"pickup_location_library" json:"pickup_location_library"`
	LastInterestDate      string   `xml:"last_interest_date" json:"last_interest_date"`
}

// placeRequest is Alma's POST /users/{user_id}/requests?mms_id= (a title)
// or ?item_pid= (an item by its internal id, the item_id of its loans) or
// ?item_barcode=, with a user_request body of type HOLD, picked up at a
// library.
func (a *api) placeRequest(c *gin.Context) {
	var in newRequestBody
	if !a.decode(c, &in, "user_request", true) {
		return
	}
	if !a.holdOnly(c, in.RequestType, in.PickupLocationType) {
		return
	}
	nr := circulation.NewRequest{TitleID: strings.TrimSpace(c.Query("mms_id")), Barcode: strings.TrimSpace(c.Query("item_barcode")), PickupLibrary: strings.TrimSpace(in.PickupLocationLibrary)}
	if d, err := sis.Date(in.LastInterestDate); err != nil {
		a.fail(c, badParameter("last_interest_date", err.Error()))
		return
	} else {
		nr.NotNeededAfter = d
	}
	if nr.Barcode == "" && strings.TrimSpace(c.Query("item_pid")) != "" {
		it, err := a.item(c, "")
		if err != nil {
			a.failRequest(c, err)
			return
		}
		nr.Barcode = it.Barcode
	}
	if nr.TitleID == "" && nr.Barcode == "" {
		a.fail(c, &requestError{codeMandatory, "Mandatory field is missing: mms_id, item_pid or item_barcode"})
		return
	}
	who, ok := a.pathUser(c)
	if !ok {
		return
	}
	pid := who.PrimaryID
	libs, err := a.kit.Circulation.NewRequestLibraries(a.ctx(c), a.inst(c), nr)
	if err != nil {
		a.failRequest(c, err)
		return
	}
	if libs != nil && !a.allowInAnyLibrary(c, libs) {
		return
	}
	r, err := a.kit.Circulation.PlaceRequest(a.ctx(c), a.inst(c), pid, nr)
	if err != nil {
		a.failRequest(c, err)
		return
	}
	a.answer(c, http.StatusOK, a.requestOut(c, r, a.libraryNames(c)))
}

// failRequest answers a request that cannot be placed with Alma's code.
func (a *api) failRequest(c *gin.Context, err error) {
	if e, ok := fault.As(err); ok && e.Kind == fault.Refused {
		a.almaError(c, http.StatusBadRequest, codeNoItems, "No items can fulfill the submitted request: "+strings.Join(append([]string{e.Detail}, e.Reasons...), "; "))
		return
	}
	if e, ok := fault.As(err); ok && e.Kind == fault.Conflict {
		a.almaError(c, http.StatusBadRequest, codeDuplicate, "Failed to save the request: "+e.Detail)
		return
	}
	if e, ok := fault.As(err); ok && e.Kind == fault.NotFound && !strings.Contains(strings.ToLower(e.Detail), "user") {
		a.almaError(c, http.StatusBadRequest, "60328", "Item for request was not found: "+e.Detail)
		return
	}
	a.fail(c, err)
}

// allowInAnyLibrary asks for the route's action in any of libs (a
// request concerns its pickup library and its item's).
func (a *api) allowInAnyLibrary(c *gin.Context, libs []string) bool {
	if len(libs) == 0 {
		return a.allowIn(c, "*")
	}
	rt, _ := c.Get(routeKey)
	for _, lib := range libs {
		ok, err := a.decide(c, rt.(route).Action, lib)
		if err != nil {
			a.fail(c, err)
			return false
		}
		if ok {
			return true
		}
	}
	a.almaError(c, http.StatusUnauthorized, codeUnauthorized, unauthorizedMessage+" The roles of the key's user do not allow "+rt.(route).Action+" in library "+strings.Join(libs, " or ")+".")
	return false
}

// userRequestOf reads the request the path names, of the user.
func (a *api) userRequestOf(c *gin.Context) (*circulation.Request, string, bool) {
	who, ok := a.pathUser(c)
	if !ok {
		return nil, "", false
	}
	r, err := a.kit.Circulation.Request(a.ctx(c), a.inst(c), who.PrimaryID, c.Param("request_id"))
	if err != nil {
		a.fail(c, err)
		return nil, "", false
	}
	return r, who.PrimaryID, true
}

func (a *api) getRequest(c *gin.Context) {
	r, _, ok := a.userRequestOf(c)
	if !ok {
		return
	}
	a.answer(c, http.StatusOK, a.requestOut(c, r, a.libraryNames(c)))
}

// cancelRequest is Alma's DELETE of a request, for reason (a code of
// Alma's RequestCancellationReasons, CannotBeFulfilled when none) and
// note, where the key's user's roles hold in a library the request
// concerns.
func (a *api) cancelRequest(c *gin.Context) {
	r, pid, ok := a.userRequestOf(c)
	if !ok {
		return
	}
	libs, err := a.kit.Circulation.RequestLibraries(a.ctx(c), a.inst(c), r)
	if err != nil {
		a.fail(c, err)
		return
	}
	if !a.allowInAnyLibrary(c, libs) {
		return
	}
	reason := strings.TrimSpace(c.Query("reason"))
	if reason == "" {
		reason = "CannotBeFulfilled"
	}
	if note := strings.TrimSpace(c.Query("note")); note != "" {
		reason += ": " + note
	}
	if _, err := a.kit.Circulation.CancelRequest(a.ctx(c), a.inst(c), pid, r.ID, reason); err != nil {
		a.fail(c, err)
		return
	}
	c.Status(http.StatusNoContent)
}

// requestChangeBody is the user_request a client sends to change one:
// a field left out stays as it is.
type requestChangeBody struct {
	XMLName               xml.Name `xml:"user_request" json:"-"`
	RequestType           string   `xml:"request_type" json:"request_type"`
	PickupLocationType    string   `xml:"pickup_location_type" json:"pickup_location_type"`
	PickupLocationLibrary *string  `xml:"pickup_location_library" json:"pickup_location_library"`
	LastInterestDate      *string  `xml:"last_interest_date" json:"last_interest_date"`
	Comment               string   `xml:"comment" json:"comment"`
}

// requestFields are Alma's names of the fields of circulation's request.
var requestFields = map[string]string{"pickup_library": "pickup_location_library", "not_needed_after": "last_interest_date"}

// updateRequest is Alma's PUT .../requests/{request_id}: what circulation
// lets a waiting hold change (circulation.Service.UpdateRequest), its
// pickup_location_library and last_interest_date (empty: none); a field
// the body leaves out stays as it is. It asks requests.place where the
// request, or its new pickup library, concerns. A comment is refused:
// patronkit keeps none on a request.
func (a *api) updateRequest(c *gin.Context) {
	var in requestChangeBody
	if !a.decode(c, &in, "user_request", false) {
		return
	}
	if !a.holdOnly(c, in.RequestType, in.PickupLocationType) {
		return
	}
	if strings.TrimSpace(in.Comment) != "" {
		a.fail(c, badParameter("comment", "patronkit keeps no comment on a request"))
		return
	}
	var ch circulation.RequestChange
	if in.PickupLocationLibrary != nil {
		ch.PickupLibrary = in.PickupLocationLibrary
	}
	if in.LastInterestDate != nil {
		d, err := sis.Date(*in.LastInterestDate)
		if err != nil {
			a.fail(c, badParameter("last_interest_date", err.Error()))
			return
		}
		ch.NotNeededAfter = &d
	}
	r, pid, ok := a.userRequestOf(c)
	if !ok {
		return
	}
	libs, err := a.kit.Circulation.RequestLibraries(a.ctx(c), a.inst(c), r)
	if err != nil {
		a.fail(c, err)
		return
	}
	if ch.PickupLibrary != nil && strings.TrimSpace(*ch.PickupLibrary) != "" {
		libs = append(libs, strings.TrimSpace(*ch.PickupLibrary))
	}
	if !a.allowInAnyLibrary(c, libs) {
		return
	}
	r, err = a.kit.Circulation.UpdateRequest(a.ctx(c), a.inst(c), pid, r.ID, ch)
	if e, ok := fault.As(err); ok && e.Kind == fault.Invalid {
		var errs []almaErr
		for _, f := range e.Fields {
			name := f.Field
			if n, ok := requestFields[name]; ok {
				name = n
			}
			errs = append(errs, almaErr{codeParameter, name + " parameter is not valid: " + f.Message})
		}
		if len(errs) > 0 {
			a.almaErrors(c, http.StatusBadRequest, errs)
			return
		}
	}
	if err != nil {
		a.fail(c, err)
		return
	}
	a.answer(c, http.StatusOK, a.requestOut(c, r, a.libraryNames(c)))
}
