// Package web serves the ground station's page and its API: the fleet,
// each drone's attitude, plots, update timeline and camera, live over a
// WebSocket, and push and rollback. Every asset is embedded (static/, with
// uPlot pinned in static/uplot: see its VERSION); nothing is fetched from
// elsewhere.
//
// # Routes
//
//	GET  /                              the page (?token=T: log in, then redirect to /)
//	GET  /static/...                    its scripts and styles
//	GET  /ws                            the live feed: a snapshot, then the fleet's page messages (controller/ground/fleet)
//	GET  /api/images                    {"images":["flight:v1",...]}: what the registry holds
//	POST /api/drones/{id}/push          {"image":"flight:v2"} -> 202 {"command":"..."}
//	POST /api/drones/{id}/rollback      {} -> 202 {"command":"..."}
//	GET  /api/drones/{id}/camera.jpg    the drone's newest camera frame
//	GET  /api/stats                     counters: clients, dropped messages, and the ground's own
//	GET  /api/rollouts                  {"rollouts":[view,...]}: every rollout, newest first (controller/rollout.View, no drones)
//	POST /api/rollouts                  a rollout.Spec -> 201 the rollout.Record
//	GET  /api/rollouts/{id}             its rollout.Record
//	POST /api/rollouts/{id}/pause       {} -> 200 the rollout.Record; also resume and cancel
//	GET  /healthz                       "ok", without authentication
//
// # Who may
//
// With Config.Token set, everything but the page's static files and
// /healthz needs the token: "Authorization: Bearer T" (scripts), or the
// cookie that GET /?token=T sets (HttpOnly, SameSite=Strict) for a
// browser; without it a request is refused with 401. Without a token the
// ground serves loopback only (the caller's job: it refuses to listen
// elsewhere) and, with Config.LoopbackHosts, only requests whose Host
// names loopback, so that a web page cannot reach it by DNS rebinding.
//
// Pushes, rollbacks and rollouts' controls are POSTs with a JSON body, refused cross-origin
// (net/http.CrossOriginProtection: Sec-Fetch-Site and Origin); the
// WebSocket refuses other origins too. With the cookie's SameSite=Strict,
// another site cannot make a browser push.
//
// # Slow browsers
//
// Each WebSocket has its own bounded queue (controller/ground/fanout):
// when it is full the oldest message is dropped and counted, and the
// browser gets {"type":"lagged","dropped":N} and a fresh snapshot once it
// catches up. A write that takes longer than Config.WriteTimeout closes
// the connection; the page reconnects by itself.
package web

import (
	"context"
	"crypto/subtle"
	"embed"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"mime"
	"net"
	"net/http"
	"strings"
	"time"

	"github.com/skyswap/skyswap/controller/ground/fanout"
	"github.com/skyswap/skyswap/controller/push"
	"github.com/skyswap/skyswap/controller/rollout"
)

//go:embed static
var static embed.FS

// Defaults of Config's zero fields.
const (
	DefaultWriteTimeout = 10 * time.Second
	// CookieName is the cookie that carries the token in a browser.
	CookieName = "skyswap_ground"
	maxBody    = 64 << 10 // a push's or a rollout's JSON (a list of drones)
)

// Error classes an Operator returns, wrapped; each is an HTTP status.
var (
	ErrInvalid  = errors.New("web: invalid request")        // 400
	ErrNotFound = errors.New("web: not found")              // 404
	ErrBusy     = errors.New("web: a command is in flight") // 409
)

// Fleet is the picture the page shows (controller/ground/fleet).
type Fleet interface {
	// Snapshot is the whole picture as a page message.
	Snapshot(now time.Time) []byte
	// Frame is a drone's newest camera JPEG and its sequence number.
	Frame(drone string) (jpeg []byte, seq uint64, ok bool)
}

// Operator lists the registry's images and sends signed commands.
type Operator interface {
	// Images are the registry's images, NAME:TAG, for the push menu.
	Images(ctx context.Context) ([]string, error)
	// Push sends drone an update to image (NAME:TAG) and returns the
	// command's id once the broker has it; the drone's events follow on
	// the feed.
	Push(ctx context.Context, drone, image string) (string, error)
	// Rollback sends drone a rollback to its previous release.
	Rollback(ctx context.Context, drone string) (string, error)
}

// Rollouts runs the ground's rollouts (controller/rollout.Manager).
type Rollouts interface {
	// Start starts a rollout; a spec that cannot work is a
	// *rollout.SpecError.
	Start(ctx context.Context, spec rollout.Spec) (rollout.Record, error)
	// Get returns a rollout's record (rollout.ErrNotFound).
	Get(id string) (rollout.Record, error)
	// List returns every rollout's record, newest first.
	List() []rollout.Record
	// Pause, Resume and Cancel are the operator's controls
	// (rollout.ErrNotFound, rollout.ErrState).
	Pause(id string) (rollout.Record, error)
	Resume(id string) (rollout.Record, error)
	Cancel(id string) (rollout.Record, error)
}

// Config configures New. Every zero value means the default documented on
// the field.
type Config struct {
	// Token, when not "", is required of every API call and WebSocket.
	Token string
	// Secure marks the token cookie Secure: the page is served over
	// TLS.
	Secure bool
	// LoopbackHosts refuses requests whose Host is not a loopback name
	// (127.0.0.1, [::1], localhost): set it when serving loopback
	// without a token.
	LoopbackHosts bool
	// WriteTimeout bounds one WebSocket write; 0 means
	// DefaultWriteTimeout (10 s).
	WriteTimeout time.Duration
	// Queue is each WebSocket's queue of page messages; 0 means
	// fanout.DefaultQueue.
	Queue int
	// Stats adds the ground's counters to /api/stats; nil adds none.
	Stats func() map[string]any
	// Rollouts serves the rollouts' API and shows them on the page; nil
	// means no rollouts (their routes answer 404).
	Rollouts Rollouts
	// Log receives the server's warnings; nil discards them.
	Log *slog.Logger
	// Now is the clock; nil means time.Now.
	Now func() time.Time
}

type server struct {
	cfg   Config
	fleet Fleet
	hub   *fanout.Hub
	op    Operator
}

// New returns the page's handler. The page messages published on hub go
// to every WebSocket.
func New(cfg Config, fleet Fleet, hub *fanout.Hub, op Operator) http.Handler {
	if cfg.WriteTimeout <= 0 {
		cfg.WriteTimeout = DefaultWriteTimeout
	}
	if cfg.Log == nil {
		cfg.Log = slog.New(slog.DiscardHandler)
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	s := &server{cfg: cfg, fleet: fleet, hub: hub, op: op}
	assets, err := fs.Sub(static, "static")
	if err != nil {
		panic(err) // the embedded tree has it
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /{$}", s.index)
	mux.Handle("GET /static/", http.StripPrefix("/static/", http.FileServerFS(assets)))
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) { fmt.Fprintln(w, "ok") })
	mux.Handle("GET /ws", s.auth(http.HandlerFunc(s.ws)))
	mux.Handle("GET /api/images", s.auth(http.HandlerFunc(s.images)))
	mux.Handle("POST /api/drones/{id}/push", s.auth(http.HandlerFunc(s.push)))
	mux.Handle("POST /api/drones/{id}/rollback", s.auth(http.HandlerFunc(s.rollback)))
	mux.Handle("GET /api/drones/{id}/camera.jpg", s.auth(http.HandlerFunc(s.camera)))
	mux.Handle("GET /api/stats", s.auth(http.HandlerFunc(s.stats)))
	if cfg.Rollouts != nil {
		mux.Handle("GET /api/rollouts", s.auth(http.HandlerFunc(s.rollouts)))
		mux.Handle("POST /api/rollouts", s.auth(http.HandlerFunc(s.startRollout)))
		mux.Handle("GET /api/rollouts/{id}", s.auth(http.HandlerFunc(s.rollout)))
		mux.Handle("POST /api/rollouts/{id}/{control}", s.auth(http.HandlerFunc(s.controlRollout)))
	}
	return s.headers(http.NewCrossOriginProtection().Handler(mux))
}

// headers sets what every answer carries and refuses foreign Host names.
func (s *server) headers(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("Content-Security-Policy", "default-src 'self'; img-src 'self' blob: data:; style-src 'self' 'unsafe-inline'; frame-ancestors 'none'")
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("Referrer-Policy", "no-referrer")
		h.Set("X-Frame-Options", "DENY")
		if s.cfg.LoopbackHosts && !loopbackHost(r.Host) {
			writeError(w, http.StatusForbidden, fmt.Errorf("host %q: this ground station serves loopback only: open it as http://127.0.0.1:PORT, or start it with -token", r.Host))
			return
		}
		next.ServeHTTP(w, r)
	})
}

func loopbackHost(hostport string) bool {
	host := hostport
	if h, _, err := net.SplitHostPort(hostport); err == nil {
		host = h
	}
	host = strings.Trim(host, "[]")
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// auth refuses a request without the token (when there is one).
func (s *server) auth(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if s.cfg.Token != "" && !s.hasToken(r) {
			w.Header().Set("WWW-Authenticate", `Bearer realm="skyswap ground"`)
			writeError(w, http.StatusUnauthorized, errors.New("this ground station needs its token: open the page as /?token=TOKEN, or send Authorization: Bearer TOKEN"))
			return
		}
		next.ServeHTTP(w, r)
	})
}

func (s *server) hasToken(r *http.Request) bool {
	given := ""
	if v, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer "); ok {
		given = v
	} else if c, err := r.Cookie(CookieName); err == nil {
		given = c.Value
	}
	return given != "" && subtle.ConstantTimeCompare([]byte(given), []byte(s.cfg.Token)) == 1
}

// index serves the page; ?token= logs a browser in.
func (s *server) index(w http.ResponseWriter, r *http.Request) {
	if t := r.URL.Query().Get("token"); t != "" {
		if subtle.ConstantTimeCompare([]byte(t), []byte(s.cfg.Token)) != 1 || s.cfg.Token == "" {
			writeError(w, http.StatusUnauthorized, errors.New("wrong token: open the page as /?token=TOKEN with the ground's -token"))
			return
		}
		http.SetCookie(w, &http.Cookie{Name: CookieName, Value: t, Path: "/", HttpOnly: true, Secure: s.cfg.Secure,
			SameSite: http.SameSiteStrictMode})
		http.Redirect(w, r, "/", http.StatusSeeOther) // the token leaves the address bar
		return
	}
	w.Header().Set("Cache-Control", "no-store")
	http.ServeFileFS(w, r, static, "static/index.html")
}

func (s *server) images(w http.ResponseWriter, r *http.Request) {
	imgs, err := s.op.Images(r.Context())
	if err != nil {
		writeError(w, status(err), err)
		return
	}
	if imgs == nil {
		imgs = []string{}
	}
	writeJSON(w, http.StatusOK, map[string]any{"images": imgs})
}

func (s *server) push(w http.ResponseWriter, r *http.Request) {
	var body struct {
		Image string `json:"image"`
	}
	if err := readJSON(w, r, &body); err != nil {
		writeError(w, http.StatusBadRequest, err)
		return
	}
	if body.Image == "" {
		writeError(w, http.StatusBadRequest, errors.New(`no image: send {"image":"flight:v2"}`))
		return
	}
	id, err := s.op.Push(r.Context(), r.PathValue("id"), body.Image)
	s.sent(w, r, "push", id, err)
}

func (s *server) rollback(w http.ResponseWriter, r *http.Request) {
	var body struct{}
	if err := readJSON(w, r, &body); err != nil {
		writeError(w, http.StatusBadRequest, err)
		return
	}
	id, err := s.op.Rollback(r.Context(), r.PathValue("id"))
	s.sent(w, r, "rollback", id, err)
}

func (s *server) sent(w http.ResponseWriter, r *http.Request, what, id string, err error) {
	if err != nil {
		s.cfg.Log.Warn(what+" from the page failed", "drone", r.PathValue("id"), "err", err)
		writeError(w, status(err), err)
		return
	}
	s.cfg.Log.Info(what+" from the page", "drone", r.PathValue("id"), "command", id)
	writeJSON(w, http.StatusAccepted, map[string]string{"command": id})
}

func (s *server) camera(w http.ResponseWriter, r *http.Request) {
	jpeg, seq, ok := s.fleet.Frame(r.PathValue("id"))
	if !ok {
		writeError(w, http.StatusNotFound, fmt.Errorf("drone %q has sent no camera frame", r.PathValue("id")))
		return
	}
	w.Header().Set("Content-Type", "image/jpeg")
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("X-Frame-Seq", fmt.Sprint(seq))
	w.Write(jpeg)
}

func (s *server) stats(w http.ResponseWriter, _ *http.Request) {
	st := map[string]any{}
	if s.cfg.Stats != nil {
		st = s.cfg.Stats()
	}
	st["clients"] = s.hub.Subscribers()
	st["dropped"] = s.hub.Dropped()
	writeJSON(w, http.StatusOK, st)
}

// readJSON decodes a small JSON body; the request must say it is JSON.
func readJSON(w http.ResponseWriter, r *http.Request, v any) error {
	if mt, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type")); mt != "application/json" {
		return errors.New("send the body as Content-Type: application/json")
	}
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, maxBody))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return fmt.Errorf("body: %w", err)
	}
	return nil
}

func status(err error) int {
	var se *rollout.SpecError
	switch {
	case errors.Is(err, ErrInvalid), errors.As(err, &se):
		return http.StatusBadRequest
	case errors.Is(err, ErrNotFound), errors.Is(err, rollout.ErrNotFound), errors.Is(err, push.ErrImageNotFound):
		return http.StatusNotFound
	case errors.Is(err, ErrBusy), errors.Is(err, rollout.ErrState):
		return http.StatusConflict
	case errors.Is(err, context.DeadlineExceeded):
		return http.StatusGatewayTimeout
	}
	return http.StatusBadGateway
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	json.NewEncoder(w).Encode(v)
}

func writeError(w http.ResponseWriter, code int, err error) {
	writeJSON(w, code, map[string]string{"error": err.Error()})
}
