package sip2

import (
	"context"
	"strings"

	"github.com/patronkit/patronkit/circulation"
	"github.com/patronkit/patronkit/fault"
	"github.com/patronkit/patronkit/patron"
)

// The screen messages (AF) of the circulation service's refusals say
// every reason in the patron's preferred language, through circulation's
// catalog of reason texts (Service.ReasonText: the host's templates, then
// the built-in English and Spanish ones); English where the catalog lacks
// the language, and a reason's own text where it has no code. The
// account's character set applies to them as to every field.

// refusedTo is refused for a refusal of patron u's action: its reasons in
// u's language.
func (c *conn) refusedTo(ctx context.Context, u *patron.User, err error) (string, bool) {
	e, ok := fault.As(err)
	if !ok || len(e.Reasons) == 0 {
		return refused(err)
	}
	return strings.Join(c.s.kit.Circulation.ReasonTexts(c.languageOf(ctx, u), e.Why()), "; "), true
}

// renewedNot is the reasons a loan of patron u was not renewed (r), in
// u's language.
func (c *conn) renewedNot(ctx context.Context, u *patron.User, r circulation.RenewResult) string {
	return strings.Join(c.s.kit.Circulation.ReasonTexts(c.languageOf(ctx, u), fault.Explain(r.Reasons, r.Causes)), ", ")
}

// statusMessage is the screen message of a patron status or patron
// information answer: why the patron is not let through, or, for a
// patron with the right PIN, the reasons of their blocks in their
// language.
func (c *conn) statusMessage(pi patronInfo) string {
	u := pi.check.user
	if pi.check.msg != "" || u == nil || !pi.check.pin || len(pi.blocks) == 0 {
		return pi.check.msg
	}
	why := make([]string, len(pi.blocks))
	for i, b := range pi.blocks {
		why[i] = b.Description
		if b.Cause.Code != "" {
			why[i] = c.s.kit.Circulation.ReasonText(u.PreferredLanguage, b.Cause)
		}
	}
	return strings.Join(why, "; ")
}

// languageOf is the preferred language of patron u. A u read without its
// record (its primary_id alone, see findPatron) has it read now, once.
func (c *conn) languageOf(ctx context.Context, u *patron.User) string {
	if u == nil {
		return ""
	}
	if u.ID != "" || u.PreferredLanguage != "" {
		return u.PreferredLanguage
	}
	full, err := c.s.kit.Patrons.GetSegments(ctx, c.s.opts.Institution, u.PrimaryID)
	if err != nil {
		// The screen message is said in English rather than not at all.
		return ""
	}
	u.ID, u.PreferredLanguage = full.ID, full.PreferredLanguage
	return u.PreferredLanguage
}
