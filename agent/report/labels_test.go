package report

import (
	"maps"
	"testing"
)

func TestParseLabels(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want map[string]string
		bad  bool
	}{
		{in: "", want: nil},
		{in: " , ", want: nil},
		{in: "site=field-a", want: map[string]string{"site": "field-a"}},
		{in: "site=field-a, role=survey ,", want: map[string]string{"site": "field-a", "role": "survey"}},
		{in: "skyswap.io/tier=canary,empty=", want: map[string]string{"skyswap.io/tier": "canary", "empty": ""}},
		{in: "site", bad: true},
		{in: "=a", bad: true},
		{in: "-site=a", bad: true},
		{in: "site=a b", bad: true},
		{in: "site=a/b", bad: true},
		{in: "site=a,site=b", bad: true},
		{in: "k=" + string(make([]byte, 64)), bad: true},
	} {
		got, err := ParseLabels(tc.in)
		if (err != nil) != tc.bad {
			t.Errorf("ParseLabels(%q): err %v, want error %v", tc.in, err, tc.bad)
			continue
		}
		if !tc.bad && !maps.Equal(got, tc.want) {
			t.Errorf("ParseLabels(%q) = %v, want %v", tc.in, got, tc.want)
		}
		if !tc.bad {
			back, err := ParseLabels(FormatLabels(got))
			if err != nil || !maps.Equal(back, got) {
				t.Errorf("ParseLabels(FormatLabels(%v)) = %v, %v", got, back, err)
			}
		}
	}
}
