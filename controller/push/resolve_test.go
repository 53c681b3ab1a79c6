package push

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/skyswap/skyswap/controller/push/pushtest"
)

func TestResolve(t *testing.T) {
	reg := pushtest.StartRegistry(t)
	v2 := reg.PushIndex(t, "flight:v2")
	v1 := reg.PushImage(t, "flight:v1")
	latest := reg.PushImage(t, "tools/probe:latest")
	h := reg.Host
	const other = "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"

	tests := []struct {
		name      string
		ref       string
		def       string // default registry
		plainHTTP bool
		want      string
		err       error  // errors.Is
		msg       string // in the error
	}{
		{name: "short tag", ref: "flight:v2", def: h, want: h + "/flight:v2@" + v2},
		{name: "short tag, trailing slash", ref: "flight:v2", def: h + "/", want: h + "/flight:v2@" + v2},
		{name: "full tag", ref: h + "/flight:v2", want: h + "/flight:v2@" + v2},
		{name: "full tag ignores the default", ref: h + "/flight:v1", def: "registry.invalid:5000", want: h + "/flight:v1@" + v1},
		{name: "forced plain HTTP", ref: "flight:v1", def: h, plainHTTP: true, want: h + "/flight:v1@" + v1},
		{name: "no tag is latest", ref: "tools/probe", def: h, want: h + "/tools/probe:latest@" + latest},
		{name: "pinned unchanged", ref: "registry.invalid:5000/flight:v2@" + other, want: "registry.invalid:5000/flight:v2@" + other},
		{name: "pinned short", ref: "flight@" + other, def: h, want: h + "/flight@" + other},
		{name: "missing tag", ref: "flight:v9", def: h, err: ErrImageNotFound, msg: "registry " + h + " has no flight:v9"},
		{name: "missing repository", ref: h + "/nope:v1", err: ErrImageNotFound, msg: `has no nope:v1 (from "` + h + `/nope:v1")`},
		{name: "short without a registry", ref: "flight:v2", msg: "names no registry"},
		{name: "default with a scheme", ref: "flight:v2", def: "http://" + h, msg: "without a scheme"},
		{name: "bad name", ref: "Flight:v2", def: h, msg: "is not a reference"},
		{name: "bad digest", ref: h + "/flight@sha256:abc", msg: "the digest must be sha256:<64"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := Resolve(context.Background(), tt.ref, tt.def, tt.plainHTTP)
			if tt.msg == "" {
				if err != nil || got != tt.want {
					t.Errorf("Resolve(%q, %q) = %q, %v; want %q", tt.ref, tt.def, got, err, tt.want)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.msg) || tt.err != nil && !errors.Is(err, tt.err) {
				t.Errorf("Resolve(%q, %q) = %q, %v; want an error saying %q", tt.ref, tt.def, got, err, tt.msg)
			}
		})
	}
}

func TestResolveUnreachable(t *testing.T) {
	// A port nothing listens on: a clear error that names the registry.
	_, err := Resolve(context.Background(), "flight:v2", "127.0.0.1:1", false)
	if err == nil || errors.Is(err, ErrImageNotFound) || !strings.Contains(err.Error(), "at registry 127.0.0.1:1") {
		t.Errorf("Resolve against nothing: %v", err)
	}
}
