package registry

import (
	"context"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

func TestWritesFromLoopbackOnly(t *testing.T) {
	r := &Registry{}
	h, err := r.handler(context.Background(), t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		method, path, from string
		forbidden          bool
		to                 string // the address the client connected to; "" = 192.0.2.1:5000
	}{
		{http.MethodPut, "/v2/flight/manifests/v2", "192.0.2.7:4000", true, ""},
		{http.MethodPost, "/v2/flight/blobs/uploads/", "192.0.2.7:4000", true, ""},
		{http.MethodDelete, "/v2/flight/manifests/v1", "[2001:db8::1]:4000", true, ""},
		{http.MethodGet, "/v2/flight/manifests/v1", "192.0.2.7:4000", false, ""},
		{http.MethodHead, "/v2/", "192.0.2.7:4000", false, ""},
		{http.MethodPost, "/v2/flight/blobs/uploads/", "127.0.0.1:4000", false, ""},
		{http.MethodPost, "/v2/flight/blobs/uploads/", "[::1]:4000", false, ""},
		{http.MethodPost, "/v2/flight/blobs/uploads/", "192.0.2.7:4000", false, "192.0.2.7:5000"}, // this machine, by its LAN address
	} {
		req := httptest.NewRequest(tc.method, tc.path, strings.NewReader("{}"))
		req.RemoteAddr = tc.from
		to := tc.to
		if to == "" {
			to = "192.0.2.1:5000"
		}
		addr, _ := net.ResolveTCPAddr("tcp", to)
		req = req.WithContext(context.WithValue(req.Context(), http.LocalAddrContextKey, net.Addr(addr)))
		w := httptest.NewRecorder()
		h.ServeHTTP(w, req)
		if got := w.Code == http.StatusForbidden; got != tc.forbidden {
			t.Errorf("%s %s from %s: %d %s", tc.method, tc.path, tc.from, w.Code, w.Body)
		}
	}
}

func TestManifestPath(t *testing.T) {
	for _, tc := range []struct {
		path, repo, ref string
		ok              bool
	}{
		{"/v2/flight/manifests/v2", "flight", "v2", true},
		{"/v2/fleet/flight/manifests/sha256:ab", "fleet/flight", "sha256:ab", true},
		{"/v2/flight/blobs/sha256:ab", "", "", false},
		{"/v2/flight/manifests/", "", "", false},
		{"/v2//manifests/v1", "", "", false},
		{"/v3/flight/manifests/v1", "", "", false},
	} {
		repo, ref, ok := manifestPath(tc.path)
		if repo != tc.repo || ref != tc.ref || ok != tc.ok {
			t.Errorf("manifestPath(%q) = %q, %q, %v", tc.path, repo, ref, ok)
		}
	}
}
