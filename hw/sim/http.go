package sim

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"time"

	"github.com/skyswap/skyswap/hw/mono"
	"github.com/skyswap/skyswap/hw/sim/chips"
)

// Handler serves the referee and the ground truth over HTTP (bind it to
// loopback):
//
//	GET  /report?from=NS&to=NS         referee report; or ?last=10s for the last 10 s
//	GET  /writes?from=NS&to=NS         the actuator write log (at most 100000 entries)
//	GET  /state                        ground truth and the fence's epoch
//	GET  /camera?from=NS&to=NS         the camera report (referee.CameraReport); or ?last=
//	GET  /camera/frames?from=NS&to=NS  frames delivered, with what each shows (at most 100000)
//	POST /camera/corrupt?kind=K&n=N    corrupt the next N video packets; K is crc or seq
//	GET  /healthz                      200 once the drone runs
//
// and the I2C error bursts of fault injection (skyswap-chaos), see I2CBurst:
//
//	POST   /faults/i2c?for=D&rate=R&addr=A&client=C  for D (200ms), fail the share R (0.2;
//	                                   default 1) of client C's transactions (default every
//	                                   client's) at address A (0x68; default every address)
//	DELETE /faults/i2c?client=C        end C's burst now; without client, end every burst
//	GET    /faults/i2c                 transactions failed so far, by client and address,
//	                                   and the bursts still on (I2CFaults)
//
// Times are CLOCK_MONOTONIC nanoseconds, the clock of every process on the
// machine. Without a camera, /camera reports nothing and /camera/corrupt
// is a 404.
func (d *Drone) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /report", func(w http.ResponseWriter, r *http.Request) {
		from, to, err := window(r)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		writeJSON(w, d.Report(from, to))
	})
	mux.HandleFunc("GET /writes", func(w http.ResponseWriter, r *http.Request) {
		from, to, err := window(r)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		ws := d.Writes(from, to)
		if len(ws) > 100000 {
			ws = ws[len(ws)-100000:]
		}
		writeJSON(w, ws)
	})
	mux.HandleFunc("GET /state", func(w http.ResponseWriter, r *http.Request) { writeJSON(w, d.Truth()) })
	mux.HandleFunc("GET /camera", func(w http.ResponseWriter, r *http.Request) {
		from, to, err := window(r)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		writeJSON(w, d.CameraReport(from, to))
	})
	mux.HandleFunc("GET /camera/frames", func(w http.ResponseWriter, r *http.Request) {
		from, to, err := window(r)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		fs := d.CameraFrames(from, to)
		if len(fs) > 100000 {
			fs = fs[len(fs)-100000:]
		}
		writeJSON(w, fs)
	})
	mux.HandleFunc("POST /camera/corrupt", func(w http.ResponseWriter, r *http.Request) {
		q := r.URL.Query()
		kind, err := chips.ParseLeptonFault(q.Get("kind"))
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		n, err := strconv.Atoi(q.Get("n"))
		if err != nil || n < 1 || n > 1000000 {
			http.Error(w, fmt.Sprintf("n=%q: want a packet count from 1 to 1000000", q.Get("n")), http.StatusBadRequest)
			return
		}
		if err := d.CorruptCamera(kind, n); err != nil {
			http.Error(w, err.Error(), http.StatusNotFound)
			return
		}
		writeJSON(w, struct {
			Kind string `json:"kind"`
			N    int    `json:"n"`
		}{kind.String(), n})
	})
	mux.HandleFunc("POST /faults/i2c", func(w http.ResponseWriter, r *http.Request) {
		f, err := parseI2CBurst(r.URL.Query())
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		a, err := d.StartI2CBurst(f)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		writeJSON(w, a)
	})
	mux.HandleFunc("DELETE /faults/i2c", func(w http.ResponseWriter, r *http.Request) {
		client, one := r.URL.Query()["client"]
		if one {
			d.EndI2CBurst(client[0], false)
		} else {
			d.EndI2CBurst("", true)
		}
		writeJSON(w, d.I2CFaults())
	})
	mux.HandleFunc("GET /faults/i2c", func(w http.ResponseWriter, r *http.Request) { writeJSON(w, d.I2CFaults()) })
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) { fmt.Fprintln(w, "ok") })
	return mux
}

func window(r *http.Request) (from, to int64, err error) {
	q := r.URL.Query()
	if last := q.Get("last"); last != "" {
		d, err := time.ParseDuration(last)
		if err != nil || d <= 0 {
			return 0, 0, fmt.Errorf("last=%q: want a positive duration such as 10s", last)
		}
		now := mono.Now()
		return now - int64(d), now, nil
	}
	parse := func(key string) (int64, error) {
		v := q.Get(key)
		if v == "" {
			return 0, nil
		}
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil || n < 0 {
			return 0, fmt.Errorf("%s=%q: want CLOCK_MONOTONIC nanoseconds", key, v)
		}
		return n, nil
	}
	if from, err = parse("from"); err != nil {
		return 0, 0, err
	}
	if to, err = parse("to"); err != nil {
		return 0, 0, err
	}
	return from, to, nil
}

func writeJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	enc := json.NewEncoder(w)
	if err := enc.Encode(v); err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
	}
}
