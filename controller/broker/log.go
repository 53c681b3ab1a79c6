package broker

import (
	"fmt"
	"log/slog"
	"sync"
)

// logger passes the NATS server's log to slog and keeps the first fatal
// error, which Start returns.
type logger struct {
	log *slog.Logger

	mu  sync.Mutex
	err error
}

// Noticef logs at debug level: the server's notices are its start-up
// banner and each client's coming and going.
func (l *logger) Noticef(format string, v ...any) {
	l.log.Debug(fmt.Sprintf(format, v...), "part", "broker")
}
func (l *logger) Warnf(format string, v ...any) {
	l.log.Warn(fmt.Sprintf(format, v...), "part", "broker")
}
func (l *logger) Errorf(format string, v ...any) {
	l.log.Error(fmt.Sprintf(format, v...), "part", "broker")
}
func (l *logger) Debugf(format string, v ...any) {
	l.log.Debug(fmt.Sprintf(format, v...), "part", "broker")
}
func (l *logger) Tracef(format string, v ...any) {}

// Fatalf records the error: the server stops itself after it.
func (l *logger) Fatalf(format string, v ...any) {
	msg := fmt.Sprintf(format, v...)
	l.log.Error(msg, "part", "broker")
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.err == nil {
		l.err = fmt.Errorf("%w: %s", errFatal, msg)
	}
}

func (l *logger) fatal() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.err
}
