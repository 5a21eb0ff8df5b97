package sip2_test

import (
	"context"
	"strings"
	"testing"

	"golang.org/x/text/encoding/charmap"

	"github.com/patronkit/patronkit/adapters/sip2"
	"github.com/patronkit/patronkit/patron"
	"github.com/patronkit/patronkit/patronkittest"
)

// TestRefusalsAreOnTheScreenInThePatronsLanguage: a patron who reads
// Spanish is told why a check-out, a renewal and a renewal of everything
// are refused, and their blocks on a patron status, in Spanish, through a
// kiosk speaking CP850; a patron without a language, in English.
func TestRefusalsAreOnTheScreenInThePatronsLanguage(t *testing.T) {
	patronkittest.Each(t, func(t *testing.T, k *patronkittest.Kit) {
		patronkittest.User(t, k, inst, func(u *patron.User) {
			u.PrimaryID, u.RecordType, u.PINNumber = "kiosk-850", patron.RecordStaff, kioskPW
		})
		if err := k.Access.AssignRole(context.Background(), inst, "kiosk-850", "circulation-desk-operator", "MAIN"); err != nil {
			t.Fatal(err)
		}
		f := setup(t, k, func(o *sip2.Options) {
			o.Accounts = map[string]sip2.Settings{"kiosk-850": {Charset: sip2.CP850, Checksums: sip2.ChecksumsOn}}
		})
		ctx := context.Background()
		lent := f.item(t, "MAIN")
		patronkittest.Loan(t, k, inst, f.patron, lent) // alice, who reads Spanish
		bob := patronkittest.User(t, k, inst, func(u *patron.User) { u.PINNumber = "9999" })
		for _, who := range []string{"alice", bob.PrimaryID} {
			if _, err := k.Patrons.AddBlock(ctx, inst, who, patron.Block{BlockType: "GENERAL", BlockDescription: "Tarjeta robada"}); err != nil {
				t.Fatal(err)
			}
		}
		free := f.item(t, "MAIN")

		ks := dial(t, f.addr)
		if rp := ks.send(login("kiosk-850", kioskPW, "MAIN")); rp.fixed != "1" {
			t.Fatalf("login: %q", rp.raw)
		}
		ks.charset = charmap.CodePage850
		blocked := "alice está bloqueado: Tarjeta robada"
		for _, c := range []struct {
			name, msg, want string
		}{
			{"a check-out", checkout(inst, "alice", patronPW, free.Barcode), blocked},
			{"a renewal", renew(inst, "alice", patronPW, lent.Barcode), blocked},
			{"a renewal of everything", renewAll(inst, "alice", patronPW), lent.Barcode + ": " + blocked},
			{"a patron status", patronStatus(inst, "alice", patronPW), blocked},
			{"another's check-out", checkout(inst, bob.PrimaryID, "9999", free.Barcode), bob.PrimaryID + " is blocked: Tarjeta robada"},
		} {
			rp := ks.send(c.msg)
			if (rp.code == "12" || rp.code == "30") && rp.fixed[0] != '0' {
				t.Errorf("%s: not refused: %q", c.name, rp.raw)
			}
			if !strings.Contains(rp.f("AF"), c.want) {
				t.Errorf("%s: AF %q, want it to say %q", c.name, rp.f("AF"), c.want)
			}
		}
		// The accents went as CP850's bytes (á is 0xA0 there).
		ks.charset = nil
		if rp := ks.send(checkout(inst, "alice", patronPW, free.Barcode)); !strings.Contains(rp.raw, "est\xa0 bloqueado") {
			t.Errorf("the CP850 bytes of the check-out's refusal: %q", rp.raw)
		}
	})
}
