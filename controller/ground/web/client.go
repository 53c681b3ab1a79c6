package web

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"time"

	"github.com/skyswap/skyswap/controller/rollout"
)

// Client calls the ground's API from elsewhere: dronectl rollout. URL is
// required; every other zero value means the default documented on the
// field.
type Client struct {
	// URL is the ground's page, http(s)://host:port/.
	URL string
	// Token is the ground's token (Config.Token); "" sends none.
	Token string
	// HTTP makes the requests; nil means a client with a 30 s timeout.
	HTTP *http.Client
}

// APIError is an answer of the ground that is not a success.
type APIError struct {
	Status int    // the HTTP status: 400 a bad request, 404 no such rollout or image, 409 not in this state
	Msg    string // the ground's message
}

func (e *APIError) Error() string { return e.Msg }

var defaultClient = &http.Client{Timeout: 30 * time.Second}

// do sends a request with body (nil: none) and decodes the answer into
// out.
func (c *Client) do(ctx context.Context, method, path string, body, out any) error {
	u, err := url.JoinPath(c.URL, path)
	if err != nil {
		return fmt.Errorf("ground %q: %w: give its page's URL, e.g. http://127.0.0.1:8080/", c.URL, err)
	}
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return err
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, u, rd)
	if err != nil {
		return err
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if c.Token != "" {
		req.Header.Set("Authorization", "Bearer "+c.Token)
	}
	hc := c.HTTP
	if hc == nil {
		hc = defaultClient
	}
	resp, err := hc.Do(req)
	if err != nil {
		return fmt.Errorf("ground %s: %w (is dronectl ground running there?)", c.URL, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode >= 300 {
		var e struct {
			Error string `json:"error"`
		}
		json.NewDecoder(io.LimitReader(resp.Body, 64<<10)).Decode(&e)
		if e.Error == "" {
			e.Error = resp.Status
		}
		return &APIError{Status: resp.StatusCode, Msg: e.Error}
	}
	if err := json.NewDecoder(resp.Body).Decode(out); err != nil {
		return fmt.Errorf("ground %s: %s %s: %w", c.URL, method, path, err)
	}
	return nil
}

// StartRollout starts a rollout of spec on the ground.
func (c *Client) StartRollout(ctx context.Context, spec rollout.Spec) (rollout.Record, error) {
	var rec rollout.Record
	err := c.do(ctx, http.MethodPost, "api/rollouts", spec, &rec)
	return rec, err
}

// Rollout returns rollout id's record.
func (c *Client) Rollout(ctx context.Context, id string) (rollout.Record, error) {
	var rec rollout.Record
	err := c.do(ctx, http.MethodGet, "api/rollouts/"+url.PathEscape(id), nil, &rec)
	return rec, err
}

// Rollouts returns every rollout's view (without drones), newest first.
func (c *Client) Rollouts(ctx context.Context) ([]rollout.View, error) {
	var out struct {
		Rollouts []rollout.View `json:"rollouts"`
	}
	err := c.do(ctx, http.MethodGet, "api/rollouts", nil, &out)
	return out.Rollouts, err
}

// ControlRollout pauses, resumes or cancels rollout id (control is
// "pause", "resume" or "cancel").
func (c *Client) ControlRollout(ctx context.Context, id, control string) (rollout.Record, error) {
	var rec rollout.Record
	err := c.do(ctx, http.MethodPost, "api/rollouts/"+url.PathEscape(id)+"/"+control, struct{}{}, &rec)
	return rec, err
}

// FollowRollout reads rollout id every interval and passes each record to
// fn until the rollout ends, and returns its last record. A ground that
// does not answer (restarting, say) is asked again until ctx ends; onDown
// (nil: none) hears of it once per outage.
func (c *Client) FollowRollout(ctx context.Context, id string, every time.Duration, fn func(rollout.Record), onDown func(error)) (rollout.Record, error) {
	var last rollout.Record
	stopped := func() error {
		return fmt.Errorf("stopped following rollout %s: %w; it goes on at the ground: dronectl rollout status %s", id, ctx.Err(), id)
	}
	down := false
	for {
		rec, err := c.Rollout(ctx, id)
		var ae *APIError
		switch {
		case errors.As(err, &ae):
			return last, err
		case err != nil && ctx.Err() != nil:
			return last, stopped()
		case err != nil:
			if !down && onDown != nil {
				onDown(err)
			}
			down = true
		default:
			down, last = false, rec
			fn(rec)
			if !rec.State.Live() {
				return rec, nil
			}
		}
		select {
		case <-time.After(every):
		case <-ctx.Done():
			return last, stopped()
		}
	}
}
