package ginapi

import (
	"bytes"
	"fmt"
	"io"
	"mime"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/patronkit/patronkit/circulation"
	"github.com/patronkit/patronkit/fault"
)

// circulationRoutes registers the staff routes on libraries, items, the
// terms of use, and the terms a user would get for an item.
func (a *api) circulationRoutes(g *routes) {
	g.GET("/libraries", a.listLibraries)
	g.POST("/libraries", a.createLibrary)
	g.GET("/libraries/:library", a.getLibrary)
	g.PUT("/libraries/:library", a.replaceLibrary)
	g.DELETE("/libraries/:library", a.deleteLibrary)
	g.GET("/items", a.listItems)
	g.POST("/items", a.createItem)
	g.POST("/items/bulk", a.loadItems)
	g.GET("/items/:barcode", a.getItem)
	g.PUT("/items/:barcode", a.replaceItem)
	g.DELETE("/items/:barcode", a.deleteItem)
	g.GET("/terms-of-use", a.getTermsOfUse)
	g.PUT("/terms-of-use", a.replaceTermsOfUse)
	g.GET("/users/:primary_id/terms", a.userTerms)
}

func (a *api) listLibraries(c *gin.Context) {
	ls, err := a.kit.Circulation.Libraries(a.ctx(c), a.who(c).Institution)
	if err != nil {
		fail(c, err)
		return
	}
	c.JSON(http.StatusOK, gin.H{"libraries": ls, "total_record_count": len(ls)})
}

func (a *api) createLibrary(c *gin.Context) {
	var in circulation.Library
	if err := decodeJSON(c, a.opts.MaxBodyBytes, &in); err != nil {
		fail(c, err)
		return
	}
	// A new library, like a bulk load of items, is for roles held in
	// every library.
	if !a.allowIn(c, "*") {
		return
	}
	l, err := a.kit.Circulation.CreateLibrary(a.ctx(c), a.who(c).Institution, &in)
	if err != nil {
		fail(c, err)
		return
	}
	c.Header("Location", a.path("libraries", l.Code))
	writeVersioned(c, http.StatusCreated, l.Version, l)
}

func (a *api) getLibrary(c *gin.Context) {
	l, err := a.kit.Circulation.Library(a.ctx(c), a.who(c).Institution, c.Param("library"))
	if err != nil {
		fail(c, err)
		return
	}
	writeVersioned(c, http.StatusOK, l.Version, l)
}

func (a *api) replaceLibrary(c *gin.Context) {
	version, err := ifMatch(c)
	if err != nil {
		fail(c, err)
		return
	}
	var in circulation.Library
	if err := decodeJSON(c, a.opts.MaxBodyBytes, &in); err != nil {
		fail(c, err)
		return
	}
	if !a.allowIn(c, c.Param("library")) {
		return
	}
	l, err := a.kit.Circulation.ReplaceLibrary(a.ctx(c), a.who(c).Institution, c.Param("library"), version, &in)
	if err != nil {
		fail(c, err)
		return
	}
	writeVersioned(c, http.StatusOK, l.Version, l)
}

func (a *api) deleteLibrary(c *gin.Context) {
	if !a.allowIn(c, c.Param("library")) {
		return
	}
	if err := a.kit.Circulation.DeleteLibrary(a.ctx(c), a.who(c).Institution, c.Param("library")); err != nil {
		fail(c, err)
		return
	}
	c.Status(http.StatusNoContent)
}

func (a *api) listItems(c *gin.Context) {
	limit, offset, err := pageParams(c)
	if err != nil {
		fail(c, err)
		return
	}
	page, err := a.kit.Circulation.Items(a.ctx(c), a.who(c).Institution, circulation.ItemQuery{
		Q:       c.Query("q"),
		Library: c.Query("library"),
		Status:  c.Query("status"),
		Limit:   limit,
		Offset:  offset,
	})
	if err != nil {
		fail(c, err)
		return
	}
	c.JSON(http.StatusOK, page)
}

func (a *api) createItem(c *gin.Context) {
	var in circulation.Item
	if err := decodeJSON(c, a.opts.MaxBodyBytes, &in); err != nil {
		fail(c, err)
		return
	}
	if !a.allowIn(c, strings.TrimSpace(in.Library)) {
		return
	}
	it, err := a.kit.Circulation.CreateItem(a.ctx(c), a.who(c).Institution, &in)
	if err != nil {
		fail(c, err)
		return
	}
	c.Header("Location", a.path("items", it.Barcode))
	writeVersioned(c, http.StatusCreated, it.Version, it)
}

func (a *api) getItem(c *gin.Context) {
	it, err := a.kit.Circulation.Item(a.ctx(c), a.who(c).Institution, c.Param("barcode"))
	if err != nil {
		fail(c, err)
		return
	}
	writeVersioned(c, http.StatusOK, it.Version, it)
}

func (a *api) replaceItem(c *gin.Context) {
	version, err := ifMatch(c)
	if err != nil {
		fail(c, err)
		return
	}
	var in circulation.Item
	if err := decodeJSON(c, a.opts.MaxBodyBytes, &in); err != nil {
		fail(c, err)
		return
	}
	if !a.allowItem(c, c.Param("barcode")) || !a.allowIn(c, strings.TrimSpace(in.Library)) {
		return
	}
	it, err := a.kit.Circulation.ReplaceItem(a.ctx(c), a.who(c).Institution, c.Param("barcode"), version, &in)
	if err != nil {
		fail(c, err)
		return
	}
	writeVersioned(c, http.StatusOK, it.Version, it)
}

func (a *api) deleteItem(c *gin.Context) {
	if !a.allowItem(c, c.Param("barcode")) {
		return
	}
	if err := a.kit.Circulation.DeleteItem(a.ctx(c), a.who(c).Institution, c.Param("barcode")); err != nil {
		fail(c, err)
		return
	}
	c.Status(http.StatusNoContent)
}

// loadItems loads items in bulk from a JSON array or a CSV file. The whole
// body is read first, so that a body over the limit (MaxBodyBytes) is
// refused before any item is written.
func (a *api) loadItems(c *gin.Context) {
	// A bulk load may name any library: it is for roles held in all.
	if !a.allowIn(c, "*") {
		return
	}
	mt, _, err := mime.ParseMediaType(c.GetHeader("Content-Type"))
	isJSON := err == nil && (mt == "application/json" || strings.HasSuffix(mt, "+json"))
	isCSV := err == nil && mt == "text/csv"
	if !isJSON && !isCSV {
		fail(c, &requestError{status: http.StatusUnsupportedMediaType, slug: "unsupported-media-type", detail: "send the items as application/json (an array of items) or text/csv (with the header barcode,title,author,library,location,item_policy,material_type)"})
		return
	}
	var rep circulation.LoadReport
	if isJSON {
		var items []circulation.Item
		if err := decodeJSON(c, a.opts.MaxBodyBytes, &items); err != nil {
			fail(c, err)
			return
		}
		if items == nil {
			fail(c, badRequest("the body must be a JSON array of items"))
			return
		}
		rep, err = a.kit.Circulation.LoadItems(a.ctx(c), a.who(c).Institution, items)
	} else {
		body, rerr := io.ReadAll(http.MaxBytesReader(c.Writer, c.Request.Body, a.opts.MaxBodyBytes))
		if rerr != nil {
			if tooLarge(rerr) {
				fail(c, &requestError{status: http.StatusRequestEntityTooLarge, slug: "too-large", detail: fmt.Sprintf("the body is larger than %d bytes", a.opts.MaxBodyBytes)})
				return
			}
			fail(c, badRequest("the body cannot be read: "+rerr.Error()))
			return
		}
		rep, err = a.kit.Circulation.LoadItemsCSV(a.ctx(c), a.who(c).Institution, bytes.NewReader(body))
	}
	if err != nil {
		fail(c, err)
		return
	}
	c.JSON(http.StatusOK, rep)
}

func (a *api) getTermsOfUse(c *gin.Context) {
	set, err := a.kit.Circulation.Rules(a.ctx(c), a.who(c).Institution)
	if err != nil {
		fail(c, err)
		return
	}
	writeVersioned(c, http.StatusOK, set.Version, set)
}

// termsOfUseBody is the body of PUT /terms-of-use. version and
// updated_date are accepted, so that a rule set read can be sent back, and
// ignored: If-Match names the version.
type termsOfUseBody struct {
	Rules       *[]circulation.Rule      `json:"rules"`
	BlockLimits []circulation.BlockLimit `json:"block_limits"`
	Version     *int                     `json:"version"`
	UpdatedAt   *time.Time               `json:"updated_date"`
}

func (a *api) replaceTermsOfUse(c *gin.Context) {
	// The first rule set replaces version 0, the version of none.
	version, err := ifMatchFrom(c, 0)
	if err != nil {
		fail(c, err)
		return
	}
	var in termsOfUseBody
	if err := decodeJSON(c, a.opts.MaxBodyBytes, &in); err != nil {
		fail(c, err)
		return
	}
	if in.Rules == nil {
		// An empty list clears the rules; a body without one is a mistake.
		fail(c, &fault.Error{Kind: fault.Invalid, Detail: "the rules are not valid",
			Fields: []fault.FieldError{{Field: "rules", Code: "required", Message: "is required (an empty list removes every rule)"}}})
		return
	}
	set, err := a.kit.Circulation.ReplaceRules(a.ctx(c), a.who(c).Institution, version, *in.Rules, in.BlockLimits)
	if err != nil {
		fail(c, err)
		return
	}
	writeVersioned(c, http.StatusOK, set.Version, set)
}

// userTerms answers the terms of use the user would get for the item now,
// the due date such a loan would have and the rule that gives them.
func (a *api) userTerms(c *gin.Context) { a.quote(c, c.Param("primary_id"), c.Query("barcode")) }

// ifMatchFrom reads If-Match as ifMatch does, accepting versions from min
// (0 for a resource that may not exist yet).
func ifMatchFrom(c *gin.Context, min int) (int, error) {
	h := strings.TrimSpace(c.GetHeader("If-Match"))
	if h == "" {
		return 0, &requestError{status: http.StatusPreconditionRequired, slug: "precondition-required", detail: "send If-Match with the version (ETag) you read"}
	}
	h = strings.TrimPrefix(h, "W/")
	if unq, err := strconv.Unquote(h); err == nil {
		h = unq
	}
	v, err := strconv.Atoi(h)
	if err != nil || v < min {
		return 0, badRequest("If-Match must be the ETag that was read, e.g. \"3\"")
	}
	return v, nil
}

// allowItem is allowIn for the library of the item with barcode; an
// unknown item answers 404.
func (a *api) allowItem(c *gin.Context, barcode string) bool {
	it, err := a.kit.Circulation.Item(a.ctx(c), a.who(c).Institution, barcode)
	if err != nil {
		fail(c, err)
		return false
	}
	return a.allowIn(c, it.Library)
}
