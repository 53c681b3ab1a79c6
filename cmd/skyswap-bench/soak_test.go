package main

import (
	"slices"
	"strings"
	"testing"
)

func TestLoadSoakSettings(t *testing.T) {
	cases := []struct {
		name     string
		env      map[string]string
		updates  int
		rates    []int
		loads    []string
		ordinary bool
		err      string // in the error; "" = none
	}{
		{"defaults", nil, 4, []int{250, 400, 1000}, []string{"quiet", "hog"}, false, ""},
		{"set", map[string]string{"SOAK_UPDATES": "50", "SOAK_RATES": "1000, 2000", "SOAK_LOADS": "hog", "SOAK_RT": "0"}, 50, []int{1000, 2000}, []string{"hog"}, true, ""},
		{"zero updates", map[string]string{"SOAK_UPDATES": "0"}, 0, nil, nil, false, "SOAK_UPDATES"},
		{"rate out of range", map[string]string{"SOAK_RATES": "400,5000"}, 0, nil, nil, false, `"5000" is not a loop rate`},
		{"rate not a number", map[string]string{"SOAK_RATES": "fast"}, 0, nil, nil, false, "SOAK_RATES"},
		{"unknown load", map[string]string{"SOAK_LOADS": "quiet,busy"}, 0, nil, nil, false, `"busy" is not a load`},
		{"rt neither 0 nor 1", map[string]string{"SOAK_RT": "yes"}, 0, nil, nil, false, "SOAK_RT"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			s, err := loadSoakSettings(func(k string) string { return tc.env[k] })
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("err %v, want one mentioning %q", err, tc.err)
				}
				return
			}
			if err != nil || s.updates != tc.updates || !slices.Equal(s.rates, tc.rates) || !slices.Equal(s.loads, tc.loads) || s.ordinary != tc.ordinary {
				t.Fatalf("got %+v, %v", s, err)
			}
		})
	}
}
