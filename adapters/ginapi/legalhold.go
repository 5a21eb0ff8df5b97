package ginapi

import (
	"errors"
	"net/http"
	"strconv"
	"strings"

	"github.com/gin-gonic/gin"

	"github.com/patronkit/patronkit/privacy"
)

// legalHoldRoutes registers the legal hold on a user (set or replace,
// lift, read) and the erasure it stops.
func (a *api) legalHoldRoutes(g *routes) {
	g.GET("/users/:primary_id/legal-hold", a.getLegalHold)
	g.PUT("/users/:primary_id/legal-hold", a.setLegalHold)
	g.DELETE("/users/:primary_id/legal-hold", a.clearLegalHold)
	g.POST("/users/:primary_id/erasure", a.eraseUser)
}

// eraseUser erases a user now and answers the proof of erasure.
func (a *api) eraseUser(c *gin.Context) {
	proof, err := a.kit.Erasure.Erase(a.ctx(c), a.who(c).Institution, c.Param("primary_id"))
	if err != nil {
		fail(c, err)
		return
	}
	c.JSON(http.StatusOK, proof)
}

// legalHoldBody is the body of PUT /users/{primary_id}/legal-hold.
type legalHoldBody struct {
	Reason string `json:"reason"`
}

func (a *api) getLegalHold(c *gin.Context) {
	h, err := a.kit.LegalHolds.Get(a.ctx(c), a.who(c).Institution, c.Param("primary_id"))
	if errors.Is(err, privacy.ErrNoLegalHold) {
		c.Header("ETag", strconv.Quote(privacy.NoLegalHoldTag)) // the If-Match of a first hold
	}
	if err != nil {
		fail(c, err)
		return
	}
	c.Header("ETag", strconv.Quote(h.Tag()))
	c.JSON(http.StatusOK, h)
}

func (a *api) setLegalHold(c *gin.Context) {
	tag := strings.TrimPrefix(strings.TrimSpace(c.GetHeader("If-Match")), "W/")
	if unq, err := strconv.Unquote(tag); err == nil {
		tag = unq
	}
	if tag == "" {
		fail(c, &requestError{status: http.StatusPreconditionRequired, slug: "precondition-required",
			detail: "send If-Match with the ETag of the legal hold you read (GET /users/{primary_id}/legal-hold; \"none\" when it answered 404)"})
		return
	}
	var in legalHoldBody
	if err := decodeJSON(c, a.opts.MaxBodyBytes, &in); err != nil {
		fail(c, err)
		return
	}
	h, err := a.kit.LegalHolds.Set(a.ctx(c), a.who(c).Institution, c.Param("primary_id"), in.Reason, tag)
	if err != nil {
		fail(c, err)
		return
	}
	c.Header("ETag", strconv.Quote(h.Tag()))
	c.JSON(http.StatusOK, h)
}

func (a *api) clearLegalHold(c *gin.Context) {
	if err := a.kit.LegalHolds.Clear(a.ctx(c), a.who(c).Institution, c.Param("primary_id")); err != nil {
		fail(c, err)
		return
	}
	c.Status(http.StatusNoContent)
}
