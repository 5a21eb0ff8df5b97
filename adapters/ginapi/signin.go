package ginapi

import (
	"fmt"
	"net/netip"

	"github.com/gin-gonic/gin"

	"github.com/patronkit/patronkit/fault"
	"github.com/patronkit/patronkit/patron"
)

// BasicPIN is a principal resolver for API clients that sign in with HTTP
// Basic: the user name is the primary_id, the password the PIN. Staff
// records (record_type STAFF) act as staff; everyone else as a patron on
// their own account.
//
// Sign-ins are guarded as patron.Service.SignIn describes, with the
// client's address as the source: wrong PINs lock the account for that
// address first, and for everyone only after many more; an address that
// fails too often waits; every refusal of these is 429 with Retry-After. A
// verified credential is remembered briefly, so that a client sending it
// on every call does not pay for the PIN hash each time.
//
// The address is gin's Context.ClientIP. Gin trusts the X-Forwarded-For
// and X-Real-IP headers from every peer unless told otherwise, which would
// let a client name any address it likes: call the engine's
// SetTrustedProxies with the addresses of your reverse proxies, or with nil
// when clients connect directly. An IPv6 client counts by its /64
// network, which one host or household usually holds whole.
//
// Real hosts usually bring their own login and write their own resolver;
// this one serves the demo portal and API clients of small deployments.
func BasicPIN(users *patron.Service, institution string) PrincipalFunc {
	return func(c *gin.Context) (Who, error) {
		id, pin, ok := c.Request.BasicAuth()
		if !ok {
			c.Header("WWW-Authenticate", `Basic realm="patronkit", charset="UTF-8"`)
			return Who{}, fmt.Errorf("%w: use HTTP Basic with your primary_id and PIN", ErrNotSignedIn)
		}
		u, err := users.SignIn(c.Request.Context(), institution, id, pin, clientSource(c))
		if err != nil {
			if e, ok := fault.As(err); ok && e.Kind == fault.Unauthenticated {
				c.Header("WWW-Authenticate", `Basic realm="patronkit", charset="UTF-8"`)
			}
			return Who{}, err
		}
		return Who{Institution: institution, ID: u.PrimaryID, Patron: u.RecordType != patron.RecordStaff}, nil
	}
}

// clientSource is the sign-in source of a request: the client's address,
// an IPv6 one cut to its /64 network.
func clientSource(c *gin.Context) string {
	ip := c.ClientIP()
	a, err := netip.ParseAddr(ip)
	if err != nil {
		return ip
	}
	a = a.Unmap()
	if a.Is4() {
		return a.String()
	}
	p, err := a.WithZone("").Prefix(64)
	if err != nil {
		return ip
	}
	return p.String()
}

// ClientSource is the sign-in source of a request as BasicPIN counts it
// (the client's address, an IPv6 one cut to its /64 network), for a host
// or an adapter that signs patrons in with patron.Service.SignIn through
// a form of its own (the library card pages do).
func ClientSource(c *gin.Context) string { return clientSource(c) }
