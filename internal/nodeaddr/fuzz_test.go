package nodeaddr

import (
	"errors"
	"net/netip"
	"strconv"
	"strings"
	"testing"
)

// FuzzCheck compares Check with an independent reading of the same rule: an address is usable
// exactly when it is a global unicast address (net's meaning: not unspecified, loopback,
// multicast, link-local or the limited broadcast, private ranges included) without a zone.
func FuzzCheck(f *testing.F) {
	for _, s := range []string{
		"10.0.0.1", "203.0.113.7", "2001:db8::1", "fd00::5", "0.0.0.0", "::", "127.0.0.1", "::1",
		"224.0.0.1", "ff02::1", "169.254.1.1", "fe80::1", "fe80::1%eth0", "255.255.255.255",
		"::ffff:127.0.0.1", "::ffff:10.0.0.1", "::ffff:255.255.255.255", "2001:db8::1%1",
	} {
		f.Add([]byte(s))
	}
	f.Add([]byte{10, 0, 0, 1})
	f.Add([]byte{0xfe, 0x80, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1})
	f.Fuzz(func(t *testing.T, data []byte) {
		// Both the text a user writes and raw 4- or 16-byte addresses, so that every bit
		// pattern, mapped addresses included, is reachable.
		a, err := netip.ParseAddr(string(data))
		if err != nil {
			a, _ = netip.AddrFromSlice(data)
		}
		got := Check(a)
		want := a.IsValid() && a.Zone() == "" && a.Unmap().IsGlobalUnicast()
		if (got == nil) != want {
			t.Fatalf("Check(%q) = %v, want usable=%v", a, got, want)
		}
		if got == nil {
			return
		}
		if !errors.Is(got, ErrUnusable) {
			t.Fatalf("Check(%q) = %v, which does not wrap ErrUnusable", a, got)
		}
		if a.IsValid() && !strings.Contains(got.Error(), strconv.Quote(a.String())) {
			t.Fatalf("Check(%q) = %q, which does not name the address", a, got)
		}
		// An IPv4-mapped address is judged by its IPv4 address.
		if a.Is4In6() && a.Zone() == "" && (Check(a.Unmap()) == nil) != (got == nil) {
			t.Fatalf("Check(%q) and Check(%q) disagree", a, a.Unmap())
		}
	})
}
