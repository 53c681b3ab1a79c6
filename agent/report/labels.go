package report

import (
	"fmt"
	"maps"
	"slices"
	"strings"
)

// MaxLabelLen is the longest label key or value.
const MaxLabelLen = 63

// ParseLabels reads labels written as "key=value,key=value" (AGENT_LABELS,
// and dronectl rollout -select, which matches them): a key is 1 to 63
// characters from [A-Za-z0-9._/-] starting with a letter or digit, a value
// 0 to 63 from [A-Za-z0-9._-]; spaces around each pair are ignored. "" is
// no labels (nil). A key given twice is an error.
func ParseLabels(s string) (map[string]string, error) {
	var out map[string]string
	for _, pair := range strings.Split(s, ",") {
		pair = strings.TrimSpace(pair)
		if pair == "" {
			continue
		}
		k, v, ok := strings.Cut(pair, "=")
		if !ok {
			return nil, fmt.Errorf("labels: %q is not key=value", pair)
		}
		if err := CheckLabel(k, v); err != nil {
			return nil, err
		}
		if _, dup := out[k]; dup {
			return nil, fmt.Errorf("labels: key %q given twice", k)
		}
		if out == nil {
			out = map[string]string{}
		}
		out[k] = v
	}
	return out, nil
}

// CheckLabel returns nil if key=value is a valid label (see ParseLabels).
func CheckLabel(key, value string) error {
	if len(key) == 0 || len(key) > MaxLabelLen || !labelChars(key, "._/-") || !alnum(key[0]) {
		return fmt.Errorf("labels: key %.80q must be 1 to %d characters from [A-Za-z0-9._/-], starting with a letter or digit", key, MaxLabelLen)
	}
	if len(value) > MaxLabelLen || !labelChars(value, "._-") {
		return fmt.Errorf("labels: value %.80q of %s must be at most %d characters from [A-Za-z0-9._-]", value, key, MaxLabelLen)
	}
	return nil
}

// FormatLabels writes labels as ParseLabels reads them, keys sorted.
func FormatLabels(labels map[string]string) string {
	var b strings.Builder
	for i, k := range slices.Sorted(maps.Keys(labels)) {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString(k + "=" + labels[k])
	}
	return b.String()
}

func labelChars(s, extra string) bool {
	for i := 0; i < len(s); i++ {
		if !alnum(s[i]) && !strings.ContainsRune(extra, rune(s[i])) {
			return false
		}
	}
	return true
}

func alnum(c byte) bool { return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' }
