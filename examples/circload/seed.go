package main

import (
	"context"
	"crypto/rand"
	"crypto/subtle"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/gin-gonic/gin"
	"golang.org/x/sync/errgroup"

	"github.com/patronkit/patronkit"
	"github.com/patronkit/patronkit/adapters/ginapi"
	"github.com/patronkit/patronkit/circulation"
	"github.com/patronkit/patronkit/patron"
)

// seeded is what seed made.
type seeded struct {
	staff    string
	patrons  []string
	barcodes []string
}

const (
	libraryCode = "LOAD-LIB"
	syncProfile = "CIRCLOAD"
	batchSize   = 500
)

var titles = []struct{ title, author string }{
	{"The Structure of Scientific Revolutions", "Thomas S. Kuhn"},
	{"Introduction to Algorithms", "Cormen, Leiserson, Rivest, Stein"},
	{"A Brief History of Time", "Stephen Hawking"},
	{"The Origin of Species", "Charles Darwin"},
	{"Middlemarch", "George Eliot"},
	{"The Selfish Gene", "Richard Dawkins"},
	{"Silent Spring", "Rachel Carson"},
}

// seed fills the institution: a library, its terms of use, the staff user
// and its role, the patrons (through the bulk path of integration
// profiles) and the items (LoadItems, a few loads at once).
func seed(ctx context.Context, kit *patronkit.Kit, inst string, nPatrons, nItems int) (*seeded, error) {
	ctx = patron.WithActor(ctx, patron.Actor{Institution: inst, ID: "system:circload"})
	c := kit.Circulation
	if _, err := c.CreateLibrary(ctx, inst, &circulation.Library{Code: libraryCode, Name: "Load Test Library", TimeZone: "UTC"}); err != nil {
		return nil, err
	}
	if _, err := c.ReplaceRules(ctx, inst, 0, []circulation.Rule{{Name: "Everyone: three weeks", Terms: circulation.Terms{
		LoanPeriod: 3, LoanPeriodUnit: circulation.Weeks, Renewals: 2,
		OverdueFine: 25, OverdueFineUnit: circulation.PerDay, MaxFine: 1000, Currency: "USD", MaxLoans: 500,
	}}}, nil); err != nil {
		return nil, err
	}
	out := &seeded{staff: "load-desk"}
	staff := &patron.User{PrimaryID: out.staff, FirstName: "Desk", LastName: "Operator", RecordType: patron.RecordStaff, UserGroup: "STAFF", Status: patron.StatusActive}
	if _, err := kit.Patrons.Create(ctx, inst, staff); err != nil {
		return nil, err
	}
	if err := kit.Access.AssignRole(ctx, inst, out.staff, "circulation-desk-operator", "*"); err != nil {
		return nil, err
	}

	for i := range nPatrons {
		out.patrons = append(out.patrons, fmt.Sprintf("load-p%06d", i+1))
	}
	for from := 0; from < nPatrons; from += batchSize {
		batch := make([]*patron.User, 0, batchSize)
		for i := from; i < min(from+batchSize, nPatrons); i++ {
			batch = append(batch, &patron.User{
				PrimaryID: out.patrons[i], FirstName: "Patron", LastName: fmt.Sprintf("Number %d", i+1),
				UserGroup: "UNDERGRAD", Status: patron.StatusActive, ExpiryDate: "2099-12-31",
				Identifiers: []patron.Identifier{{IDType: "BARCODE", Value: fmt.Sprintf("LP%07d", i+1)}},
				Emails:      []patron.Email{{EmailAddress: fmt.Sprintf("patron%d@load.example", i+1), Preferred: true, EmailTypes: patron.Codes{"school"}}},
			})
		}
		for _, r := range kit.Patrons.ApplyExternal(ctx, inst, batch, patron.ExternalApply{Owner: syncProfile, Match: patron.MatchOnPrimaryID(), AddUnmatched: true}) {
			if r.Effect != patron.EffectCreated {
				return nil, fmt.Errorf("patron %s: %s %s", r.PrimaryID, r.Effect, r.Reason)
			}
		}
	}

	items := make([]circulation.Item, nItems)
	for i := range items {
		w := titles[i%len(titles)]
		items[i] = circulation.Item{Barcode: fmt.Sprintf("LOAD-%07d", i+1), Title: w.title, Author: w.author,
			Library: libraryCode, Location: "STACKS", ItemPolicy: "REGULAR", MaterialType: "BOOK"}
		out.barcodes = append(out.barcodes, items[i].Barcode)
	}
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(4)
	for from := 0; from < nItems; from += batchSize {
		chunk := items[from:min(from+batchSize, nItems)]
		g.Go(func() error {
			rep, err := c.LoadItems(gctx, inst, chunk)
			if err != nil {
				return err
			}
			if len(rep.Rejected) > 0 {
				return fmt.Errorf("item %s rejected: %s", rep.Rejected[0].Barcode, rep.Rejected[0].Reason)
			}
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		return nil, err
	}
	return out, nil
}

// server is the HTTP server the clients call, the staff user's token and
// the tokens of the readers (patrons), in their order.
type server struct {
	server  *http.Server
	token   string
	readers []string
}

// serve mounts the API under /api on a Gin engine and serves it on a
// loopback port of the system's choosing. It returns the API's base URL.
func serve(kit *patronkit.Kit, inst, staff string, readers []string, verbose bool) (*server, string, error) {
	gin.SetMode(gin.ReleaseMode)
	token := randomHex(32)
	// The host's session lookup: a bearer token for the staff user, and
	// one for each reader, who signs in as a patron.
	sessions := map[string]string{}
	var tokens []string
	for _, r := range readers {
		t := randomHex(32)
		sessions[t] = r
		tokens = append(tokens, t)
	}
	principal := func(c *gin.Context) (ginapi.Who, error) {
		got, ok := strings.CutPrefix(c.GetHeader("Authorization"), "Bearer ")
		if !ok {
			return ginapi.Who{}, ginapi.ErrNotSignedIn
		}
		if subtle.ConstantTimeCompare([]byte(got), []byte(token)) == 1 {
			return ginapi.Who{Institution: inst, ID: staff}, nil
		}
		if p, ok := sessions[got]; ok {
			return ginapi.Who{Institution: inst, ID: p, Patron: true}, nil
		}
		return ginapi.Who{}, ginapi.ErrNotSignedIn
	}
	logger := slog.New(slog.DiscardHandler)
	if verbose {
		logger = slog.New(slog.NewTextHandler(os.Stderr, nil))
	}
	router := gin.New()
	if err := ginapi.Mount(router.Group("/api"), kit, &ginapi.Options{Principal: principal, Logger: logger}); err != nil {
		return nil, "", err
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, "", err
	}
	s := &http.Server{Handler: router, ReadHeaderTimeout: 10 * time.Second}
	go func() {
		if err := s.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			fmt.Fprintln(os.Stderr, "circload: server:", err)
		}
	}()
	return &server{server: s, token: token, readers: tokens}, "http://" + ln.Addr().String() + "/api", nil
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b) // never fails (crypto/rand)
	return hex.EncodeToString(b)
}

// not measured).
func lend(ctx context.Context, kit *patronkit.Kit, inst string, readers, barcodes []string, n int) error {
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(4)
	for i, r := range readers {
		mine := barcodes[i*n : (i+1)*n]
		g.Go(func() error {
			for _, b := range mine {
				if _, err := kit.Circulation.CheckOut(gctx, inst, r, b, circulation.CheckOutOptions{}); err != nil {
					return fmt.Errorf("%s to %s: %w", b, r, err)
				}
			}
			return nil
		})
	}
	return g.Wait()
}
