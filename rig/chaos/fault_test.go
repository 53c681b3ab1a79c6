package chaos

import (
	"strings"
	"testing"
	"time"
)

func TestParseFault(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want Fault
	}{
		{"kind=sigstop,for=300ms,every=10s", Fault{Kind: SigStop, For: 300 * time.Millisecond, Every: 10 * time.Second}},
		{"for=300ms,kind=sigstop", Fault{Kind: SigStop, For: 300 * time.Millisecond}},
		{"kind=sigkill,after=5s", Fault{Kind: SigKill, After: 5 * time.Second}},
		{"kind=hog,for=2s,cpus=2,every=10s,count=3", Fault{Kind: Hog, For: 2 * time.Second, CPUs: 2, Every: 10 * time.Second, Count: 3}},
		{"kind=latency,delay=600ms,for=2s,every=10s", Fault{Kind: Latency, Delay: 600 * time.Millisecond, For: 2 * time.Second, Every: 10 * time.Second}},
		{"kind=i2c,for=200ms,rate=0.2,addr=0x68", Fault{Kind: I2C, For: 200 * time.Millisecond, Rate: 0.2, Addr: 0x68}},
		{"kind=i2c,for=200ms,addr=104", Fault{Kind: I2C, For: 200 * time.Millisecond, Addr: 0x68}},
		{" kind=sigstop , for=1s ", Fault{Kind: SigStop, For: time.Second}},
	} {
		got, err := ParseFault(tc.in)
		if err != nil || got != tc.want {
			t.Errorf("ParseFault(%q) = %+v, %v; want %+v", tc.in, got, err, tc.want)
			continue
		}
		// String writes a value ParseFault reads back to the same fault.
		if again, err := ParseFault(got.String()); err != nil || again != got {
			t.Errorf("ParseFault(%q) = %+v, %v; want %+v back", got.String(), again, err, got)
		}
	}
}

// TestParseFaultErrors: each error says what to write instead.
func TestParseFaultErrors(t *testing.T) {
	for _, tc := range []struct{ in, hint string }{
		{"", "key=value"},
		{"kind=sigstop,for", "key=value"},
		{"kind=pause,for=1s", "kind=sigstop|sigkill|hog|latency|i2c"},
		{"for=1s", "kind=sigstop|"},
		{"kind=sigstop", "for=300ms"},
		{"kind=sigstop,for=300", "write for=300ms"},
		{"kind=sigstop,for=soon", "for=300ms"},
		{"kind=sigstop,for=-1s", "cannot be negative"},
		{"kind=sigstop,for=1s,for=2s", "given twice"},
		{"kind=sigstop,for=1s,delay=1s", "delay= does not apply to kind=sigstop: its keys are kind, after, every, count, for"},
		{"kind=sigkill,for=1s", "for= does not apply to kind=sigkill"},
		{"kind=latency,for=2s", "delay=600ms"},
		{"kind=sigstop,for=2s,every=1s", "write every=4s or more"},
		{"kind=sigstop,for=2s,count=3", "every=10s"},
		{"kind=sigstop,for=2s,every=5s,count=0", "count=3"},
		{"kind=hog,for=2s,cpus=0", "cpus=1"},
		{"kind=i2c,for=1s,rate=1.5", "rate=0.2"},
		{"kind=i2c,for=1s,addr=0x80", "addr=0x68"},
		{"kind=sigstop,for=1s,cpus=2", "cpus= does not apply"},
	} {
		_, err := ParseFault(tc.in)
		if err == nil || !strings.Contains(err.Error(), tc.hint) {
			t.Errorf("ParseFault(%q) = %v, want an error containing %q", tc.in, err, tc.hint)
		}
	}
}

func TestSelector(t *testing.T) {
	sel, err := ParseSelector("io.skyswap.app=flight, io.skyswap.version=v2")
	if err != nil {
		t.Fatal(err)
	}
	if got := sel.String(); got != "io.skyswap.app=flight,io.skyswap.version=v2" {
		t.Errorf("String = %q", got)
	}
	for _, tc := range []struct {
		labels map[string]string
		want   bool
	}{
		{map[string]string{"io.skyswap.app": "flight", "io.skyswap.version": "v2", "io.skyswap.instance": "x"}, true},
		{map[string]string{"io.skyswap.app": "flight", "io.skyswap.version": "v1"}, false},
		{map[string]string{"io.skyswap.version": "v2"}, false},
		{nil, false},
	} {
		if got := sel.Match(tc.labels); got != tc.want {
			t.Errorf("Match(%v) = %v, want %v", tc.labels, got, tc.want)
		}
	}
	for _, bad := range []struct{ in, hint string }{
		{"", "-select io.skyswap.app=flight"},
		{"io.skyswap.app", "label=value"},
		{"=v2", "label=value"},
		{"a=1,a=2", "given twice"},
	} {
		if _, err := ParseSelector(bad.in); err == nil || !strings.Contains(err.Error(), bad.hint) {
			t.Errorf("ParseSelector(%q) = %v, want an error containing %q", bad.in, err, bad.hint)
		}
	}
}
