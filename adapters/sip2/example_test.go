package sip2_test

import (
	"log"

	"github.com/patronkit/patronkit"
	"github.com/patronkit/patronkit/adapters/sip2"
)

// A host serves its self-check kiosks beside the HTTP API: the kiosk
// "kiosk-main-1" speaks CP850 with checksums; the others UTF-8, as they
// send. Kit.Close shuts the server down.
func ExampleListen() {
	var kit *patronkit.Kit // patronkit.New(db, cfg), migrated
	if kit == nil {
		return
	}
	srv, err := sip2.Listen(kit, ":6001", &sip2.Options{
		Institution: "MYUNI",
		Accounts: map[string]sip2.Settings{
			"kiosk-main-1": {Charset: sip2.CP850, Checksums: sip2.ChecksumsOn},
		},
	})
	if err != nil {
		log.Fatal(err)
	}
	log.Printf("SIP2 on %s", srv.Addr())
}
