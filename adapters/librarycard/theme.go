package librarycard

import (
	"bytes"
	"embed"
	"encoding/json"
	"fmt"
	"io/fs"
	"maps"
	"regexp"
	"slices"
	"sort"
	"strings"

	"golang.org/x/text/language"
)

// The pages a Theme may show (Theme.Pages).
const (
	PageOverview = "overview"
	PageLoans    = "loans"
	PageRequests = "requests"
	PageHistory  = "history"
	PageFees     = "fees"
	PageMessages = "messages"
	PageSettings = "settings"
	PageItems    = "items"
)

// Pages lists every page, in the order the menu shows them.
var Pages = []string{PageOverview, PageLoans, PageRequests, PageHistory, PageFees, PageMessages, PageSettings, PageItems}

// Link is a link of the footer.
type Link struct {
	// Label is the text of the link; a key of the messages (such as
	// "footer.privacy") is shown in the patron's language.
	Label string
	URL   string
}

// Theme is the look and the texts of the pages, for one library or one
// vendor's brand.
type Theme struct {
	// Name is the name shown in the header and in every page title: the
	// library's or the service's. Default: "My Library Card".
	Name string
	// LogoURL is the address of the logo shown beside the name (its text
	// alternative is Name); a data: URL embeds it. Default: none.
	LogoURL string
	// Colors set the CSS custom properties of the stylesheet, by name
	// without the "--pk-" prefix: primary, on-primary, background,
	// surface, text, muted, border, link, focus, danger, ok, warn.
	// A colour left out keeps the default one. Choose them with enough
	// contrast (4.5:1 for text): the browser tests check the shipped ones.
	Colors map[string]string
	// Font and HeadingFont are CSS font-family lists. Default: the
	// system's sans-serif fonts.
	Font        string
	HeadingFont string
	// FooterLinks are shown at the foot of every page.
	FooterLinks []Link
	// Messages change or add texts, per language (an IETF tag such as
	// "en" or "es") and key (see messages/en.json for the keys); a
	// language of its own adds it to the languages offered.
	Messages map[string]map[string]string
	// DefaultLanguage is the language shown when neither the patron's
	// record nor their browser asks for one the pages have. Default: "en".
	DefaultLanguage string
	// Pages are the pages shown (Page constants); the others answer 404
	// and leave the menu. Default: all of them.
	Pages []string
	// Templates override the embedded templates one by one: a file named
	// as one of them (layout.html, loans.html...; see the templates
	// folder of this package) is used in its place. Default: none.
	Templates fs.FS
}

// DefaultTheme answers the theme the pages have when the host gives
// none: "My Library Card", dark blue on white, English and Spanish.
func DefaultTheme() *Theme {
	return &Theme{Name: "My Library Card"}
}

//go:embed messages/*.json
var messageFiles embed.FS

//go:embed assets/card.css
var baseCSS []byte

// defaultColors are the colours of the default theme: each text colour
// stands at least 4.5:1 on the backgrounds it is used on.
var defaultColors = map[string]string{
	"primary":    "#1d3f72",
	"on-primary": "#ffffff",
	"background": "#f6f7f9",
	"surface":    "#ffffff",
	"text":       "#1b1f24",
	"muted":      "#4a5460",
	"border":     "#8a94a0",
	"link":       "#1d4fa0",
	"focus":      "#c2410c",
	"danger":     "#a4161a",
	"ok":         "#1e6b34",
	"warn":       "#7a4b00",
}

var (
	goodColorName = regexp.MustCompile(`^[a-z][a-z0-9-]{0,31}$`)
	goodColor     = regexp.MustCompile(`^[#a-zA-Z0-9(),.%/ -]{1,64}$`)
	goodFont      = regexp.MustCompile(`^[A-Za-z0-9 ,'"_-]{1,200}$`)
)

// theme is a Theme checked and filled in for serving.
type theme struct {
	*Theme
	colors   map[string]string
	messages map[string]map[string]string
	langs    []string
	tags     []language.Tag
	matcher  language.Matcher
	pages    map[string]bool
}

// compile checks the theme and fills in its defaults.
func (t *Theme) compile() (*theme, error) {
	th := &theme{Theme: new(Theme), colors: maps.Clone(defaultColors), messages: map[string]map[string]string{}, pages: map[string]bool{}}
	*th.Theme = *t
	if th.Name == "" {
		th.Name = "My Library Card"
	}
	for k, v := range t.Colors {
		if !goodColorName.MatchString(k) || !goodColor.MatchString(v) {
			return nil, fmt.Errorf("librarycard: theme colour %q: %q is not a CSS colour this theme takes", k, v)
		}
		th.colors[k] = v
	}
	if l := strings.ToLower(t.LogoURL); l != "" && !strings.HasPrefix(l, "https://") && !strings.HasPrefix(l, "http://") &&
		!strings.HasPrefix(l, "/") && !strings.HasPrefix(l, "data:image/") || strings.ContainsAny(l, "\"<>\n") {
		return nil, fmt.Errorf("librarycard: theme logo %q is not an http(s), /path or data:image/ address", t.LogoURL)
	}
	for _, f := range []string{t.Font, t.HeadingFont} {
		if f != "" && !goodFont.MatchString(f) {
			return nil, fmt.Errorf("librarycard: theme font %q is not a CSS font-family list this theme takes", f)
		}
	}
	files, _ := fs.Glob(messageFiles, "messages/*.json")
	for _, f := range files {
		b, _ := messageFiles.ReadFile(f)
		m := map[string]string{}
		if err := json.Unmarshal(b, &m); err != nil {
			return nil, fmt.Errorf("librarycard: %s: %w", f, err)
		}
		th.messages[strings.TrimSuffix(strings.TrimPrefix(f, "messages/"), ".json")] = m
	}
	for lang, m := range t.Messages {
		if _, err := language.Parse(lang); err != nil {
			return nil, fmt.Errorf("librarycard: theme messages: %q is not a language tag", lang)
		}
		if th.messages[lang] == nil {
			th.messages[lang] = map[string]string{}
		}
		maps.Copy(th.messages[lang], m)
	}
	if th.DefaultLanguage == "" {
		th.DefaultLanguage = "en"
	}
	if th.messages[th.DefaultLanguage] == nil {
		return nil, fmt.Errorf("librarycard: the theme has no messages in its default language %q", th.DefaultLanguage)
	}
	th.langs = []string{th.DefaultLanguage}
	for _, l := range slices.Sorted(maps.Keys(th.messages)) {
		if l != th.DefaultLanguage {
			th.langs = append(th.langs, l)
		}
	}
	for _, l := range th.langs {
		th.tags = append(th.tags, language.Make(l))
	}
	th.matcher = language.NewMatcher(th.tags)
	if len(th.Pages) == 0 {
		th.Pages = Pages
	}
	for _, p := range th.Pages {
		if !slices.Contains(Pages, p) {
			return nil, fmt.Errorf("librarycard: theme page %q is not one of %s", p, strings.Join(Pages, ", "))
		}
		th.pages[p] = true
	}
	th.pages[PageOverview] = true // where a sign-in lands
	return th, nil
}

// shows tells whether the theme shows page.
func (t *theme) shows(page string) bool { return t.pages[page] }

// match answers the language of the theme that best fits the tags
// (a preferred_language, an Accept-Language header), or "" when none
// fits.
func (t *theme) match(tags string) string {
	if strings.TrimSpace(tags) == "" {
		return ""
	}
	want, _, err := language.ParseAcceptLanguage(tags)
	if err != nil || len(want) == 0 {
		return ""
	}
	_, i, conf := t.matcher.Match(want...)
	if conf == language.No {
		return ""
	}
	return t.langs[i]
}

// text answers the text of key in lang, else in the default language,
// else the key itself.
func (t *theme) text(lang, key string) string {
	if s, ok := t.messages[lang][key]; ok {
		return s
	}
	if s, ok := t.messages[t.DefaultLanguage][key]; ok {
		return s
	}
	return key
}

// stylesheet is the pages' stylesheet: the theme's custom properties,
// then the embedded rules that use them.
func (t *theme) stylesheet() []byte {
	var b bytes.Buffer
	b.WriteString(":root{")
	names := make([]string, 0, len(t.colors))
	for k := range t.colors {
		names = append(names, k)
	}
	sort.Strings(names)
	for _, k := range names {
		fmt.Fprintf(&b, "--pk-%s:%s;", k, t.colors[k])
	}
	font := t.Font
	if font == "" {
		font = `system-ui, -apple-system, "Segoe UI", Roboto, "Noto Sans", "Liberation Sans", Arial, sans-serif`
	}
	heading := t.HeadingFont
	if heading == "" {
		heading = font
	}
	fmt.Fprintf(&b, "--pk-font:%s;--pk-heading-font:%s;}\n", font, heading)
	b.Write(baseCSS)
	return b.Bytes()
}
