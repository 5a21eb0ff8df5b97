package ginapi

import (
	"fmt"
	"mime"
	"net/http"

	"github.com/gin-gonic/gin"

	"github.com/patronkit/patronkit/sets"
)

// setRoutes registers the sets of users: make one (a saved query, or a
// list of identifiers uploaded as a file), list them, read one with its
// count and its members in pages, freeze a query set into an itemized
// one, delete one.
func (a *api) setRoutes(g *routes) {
	g.POST("/sets", a.createSet)
	g.GET("/sets", a.listSets)
	g.GET("/sets/:set_id", a.getSet)
	g.GET("/sets/:set_id/members", a.setMembers)
	g.POST("/sets/:set_id/freeze", a.freezeSet)
	g.DELETE("/sets/:set_id", a.deleteSet)
}

// createSet makes a query set from a JSON body, or an itemized set from a
// file of identifiers sent as text/csv (one a line), with name,
// description and id_type in the query string (201, Location the set).
func (a *api) createSet(c *gin.Context) {
	mt, _, err := mime.ParseMediaType(c.GetHeader("Content-Type"))
	if err != nil {
		mt = ""
	}
	inst := a.who(c).Institution
	switch mt {
	case gin.MIMEJSON:
		var in sets.New
		if err := decodeJSON(c, a.opts.MaxBodyBytes, &in); err != nil {
			fail(c, err)
			return
		}
		set, err := a.kit.Sets.Create(a.ctx(c), inst, in)
		if err != nil {
			fail(c, err)
			return
		}
		c.Header("Location", a.path("sets", set.ID))
		c.JSON(http.StatusCreated, set)
	case "text/csv":
		file := http.MaxBytesReader(c.Writer, c.Request.Body, a.opts.MaxUploadBytes)
		in := sets.NewItemized{Name: c.Query("name"), Description: c.Query("description"), IDType: c.Query("id_type")}
		made, err := a.kit.Sets.CreateFromFile(a.ctx(c), inst, in, file)
		if err != nil {
			a.failUpload(c, err)
			return
		}
		c.Header("Location", a.path("sets", made.ID))
		c.JSON(http.StatusCreated, made)
	default:
		fail(c, &requestError{status: http.StatusUnsupportedMediaType, slug: "unsupported-media-type",
			detail: "send a query set as application/json, or a file of identifiers, one a line, as text/csv"})
	}
}

// failUpload answers a failure of an upload: 413 past MaxUploadBytes.
func (a *api) failUpload(c *gin.Context, err error) {
	if tooLarge(err) {
		fail(c, &requestError{status: http.StatusRequestEntityTooLarge, slug: "too-large", detail: fmt.Sprintf("the file is larger than %d bytes", a.opts.MaxUploadBytes)})
		return
	}
	fail(c, err)
}

func (a *api) listSets(c *gin.Context) {
	limit, err := intParam(c, "limit", 20, 100)
	if err != nil {
		fail(c, err)
		return
	}
	p, err := a.kit.Sets.List(a.ctx(c), a.who(c).Institution, c.Query("after"), limit)
	if err != nil {
		fail(c, err)
		return
	}
	c.JSON(http.StatusOK, p)
}

func (a *api) getSet(c *gin.Context) {
	set, err := a.kit.Sets.Get(a.ctx(c), a.who(c).Institution, c.Param("set_id"))
	if err != nil {
		fail(c, err)
		return
	}
	c.JSON(http.StatusOK, set)
}

// setMembers answers a page of a set's members, by primary_id after the
// one given (after), with their count.
func (a *api) setMembers(c *gin.Context) {
	limit, err := intParam(c, "limit", 20, 100)
	if err != nil {
		fail(c, err)
		return
	}
	p, err := a.kit.Sets.Members(a.ctx(c), a.who(c).Institution, c.Param("set_id"), c.Query("after"), limit)
	if err != nil {
		fail(c, err)
		return
	}
	c.JSON(http.StatusOK, p)
}

// freezeSet makes an itemized set of a query set's members now (201,
// Location the new set); the body, optional, names it: {"name": "..."}.
func (a *api) freezeSet(c *gin.Context) {
	var in struct {
		Name string `json:"name"`
	}
	if c.Request.ContentLength != 0 && c.Request.Body != nil && c.Request.Body != http.NoBody {
		if err := decodeJSON(c, a.opts.MaxBodyBytes, &in); err != nil {
			fail(c, err)
			return
		}
	}
	set, err := a.kit.Sets.Freeze(a.ctx(c), a.who(c).Institution, c.Param("set_id"), in.Name)
	if err != nil {
		fail(c, err)
		return
	}
	c.Header("Location", a.path("sets", set.ID))
	c.JSON(http.StatusCreated, set)
}

func (a *api) deleteSet(c *gin.Context) {
	if err := a.kit.Sets.Delete(a.ctx(c), a.who(c).Institution, c.Param("set_id")); err != nil {
		fail(c, err)
		return
	}
	c.Status(http.StatusNoContent)
}
