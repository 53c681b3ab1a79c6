package web

import (
	"errors"
	"net/http"

	"github.com/skyswap/skyswap/controller/rollout"
)

func (s *server) rollouts(w http.ResponseWriter, _ *http.Request) {
	recs := s.cfg.Rollouts.List()
	views := make([]rollout.View, len(recs))
	for i, rec := range recs {
		views[i] = rec.View(false)
	}
	writeJSON(w, http.StatusOK, map[string]any{"rollouts": views})
}

func (s *server) startRollout(w http.ResponseWriter, r *http.Request) {
	var spec rollout.Spec
	if err := readJSON(w, r, &spec); err != nil {
		writeError(w, http.StatusBadRequest, err)
		return
	}
	rec, err := s.cfg.Rollouts.Start(r.Context(), spec)
	if err != nil {
		s.cfg.Log.Warn("rollout refused", "image", spec.Image, "err", err)
		writeError(w, status(err), err)
		return
	}
	writeJSON(w, http.StatusCreated, rec)
}

func (s *server) rollout(w http.ResponseWriter, r *http.Request) {
	rec, err := s.cfg.Rollouts.Get(r.PathValue("id"))
	if err != nil {
		writeError(w, status(err), err)
		return
	}
	writeJSON(w, http.StatusOK, rec)
}

// controlRollout is POST /api/rollouts/{id}/pause, resume or cancel.
func (s *server) controlRollout(w http.ResponseWriter, r *http.Request) {
	controls := map[string]func(string) (rollout.Record, error){
		"pause": s.cfg.Rollouts.Pause, "resume": s.cfg.Rollouts.Resume, "cancel": s.cfg.Rollouts.Cancel}
	control, ok := controls[r.PathValue("control")]
	if !ok {
		writeError(w, http.StatusNotFound, errNoControl)
		return
	}
	var body struct{}
	if err := readJSON(w, r, &body); err != nil {
		writeError(w, http.StatusBadRequest, err)
		return
	}
	rec, err := control(r.PathValue("id"))
	if err != nil {
		writeError(w, status(err), err)
		return
	}
	s.cfg.Log.Info("rollout "+r.PathValue("control")+" from the API", "rollout", rec.ID, "state", rec.State)
	writeJSON(w, http.StatusOK, rec)
}

var errNoControl = errors.New("no such control: POST /api/rollouts/{id}/pause, resume or cancel")
