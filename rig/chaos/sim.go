package chaos

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
)

// simClient asks the virtual drone for I2C error bursts (hw/sim's
// /faults/i2c).
type simClient struct {
	base string
	hc   *http.Client
}

// startI2C starts f's burst on the bus client named client.
func (s simClient) startI2C(ctx context.Context, client string, f Fault) error {
	q := url.Values{"for": {f.For.String()}, "client": {client}}
	if f.Rate > 0 {
		q.Set("rate", strconv.FormatFloat(f.Rate, 'g', -1, 64))
	}
	if f.Addr != 0 {
		q.Set("addr", "0x"+strconv.FormatUint(uint64(f.Addr), 16))
	}
	return s.do(ctx, http.MethodPost, q)
}

// endI2C ends the burst on client, if it is still on.
func (s simClient) endI2C(ctx context.Context, client string) error {
	return s.do(ctx, http.MethodDelete, url.Values{"client": {client}})
}

func (s simClient) do(ctx context.Context, method string, q url.Values) error {
	u := strings.TrimSuffix(s.base, "/") + "/faults/i2c?" + q.Encode()
	req, err := http.NewRequestWithContext(ctx, method, u, nil)
	if err != nil {
		return fmt.Errorf("drone-sim at %s: %w: give its HTTP address with -sim, such as -sim %s", s.base, err, DefaultSim)
	}
	resp, err := s.hc.Do(req)
	if err != nil {
		return fmt.Errorf("drone-sim at %s does not answer (%w): start it, or give its SIM_HTTP address with -sim", s.base, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<10))
		return fmt.Errorf("drone-sim at %s: %s %s: %s: %s", s.base, method, "/faults/i2c", resp.Status, strings.TrimSpace(string(b)))
	}
	return nil
}
