package main

import (
	"fmt"
	"log/slog"

	"github.com/gin-gonic/gin"

	"github.com/patronkit/patronkit"
	"github.com/patronkit/patronkit/adapters/librarycard"
)

// Card themes the -card-theme flag names.
const (
	CardDefault = "default"
	CardVendor  = "vendor"
)

// vendorLogo is the vendor theme's logo: an open book, inline.
const vendorLogo = "data:image/svg+xml,%3Csvg xmlns='http://www.w3.org/2000/svg' viewBox='0 0 48 40' width='48' height='40'%3E" +
	"%3Cpath d='M4 6c8-3 14-2 20 3v27c-6-5-12-6-20-3z' fill='%23fde68a'/%3E%3Cpath d='M44 6c-8-3-14-2-20 3v27c6-5 12-6 20-3z' fill='%23fef3c7'/%3E%3C/svg%3E"

// cardTheme answers the theme of the patron's pages: the default one,
// or a second brand as a vendor would make it (its name, logo, colours,
// fonts, footer links and a few labels of its own).
func cardTheme(name string) (*librarycard.Theme, error) {
	switch name {
	case CardDefault, "":
		return librarycard.DefaultTheme(), nil
	case CardVendor:
		return &librarycard.Theme{
			Name:        "Northwind University Libraries",
			LogoURL:     vendorLogo,
			Colors:      map[string]string{"primary": "#14532d", "link": "#166534", "focus": "#b45309", "background": "#f7f5ef"},
			Font:        `"Source Sans 3", "Noto Sans", "Liberation Sans", Arial, sans-serif`,
			HeadingFont: `Georgia, "DejaVu Serif", serif`,
			FooterLinks: []librarycard.Link{{Label: "Opening hours", URL: "https://library.northwind.example/hours"},
				{Label: "Privacy notice", URL: "https://library.northwind.example/privacy"}},
			Messages: map[string]map[string]string{
				"en": {"overview.title": "My account", "signin.primary_id": "Northwind ID"},
				"es": {"overview.title": "Mi cuenta", "signin.primary_id": "Identificador Northwind"},
			},
		}, nil
	}
	return nil, fmt.Errorf("unknown card theme %q (%s or %s)", name, CardDefault, CardVendor)
}

// mountCard serves the patron's "My Library Card" pages at /card, with
// the PIN sign-in of the demo institution.
func mountCard(r *gin.Engine, kit *patronkit.Kit, log *slog.Logger, theme string) error {
	th, err := cardTheme(theme)
	if err != nil {
		return err
	}
	return librarycard.Mount(r.Group("/card"), kit, &librarycard.Options{Institution: Institution, Theme: th, Logger: log})
}
