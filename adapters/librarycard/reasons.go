package librarycard

import "github.com/patronkit/patronkit/fault"

// reasons says the reasons of a refusal (their English texts and their
// causes) in the page's language lang, through circulation's catalog of
// reason texts (English where it lacks the language, a reason's own text
// where it has no code).
func (c *card) reasons(lang string, texts []string, causes []fault.Reason) []string {
	return c.kit.Circulation.ReasonTexts(lang, fault.Explain(texts, causes))
}
