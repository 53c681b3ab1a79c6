package simbus

import (
	"golang.org/x/sys/unix"
)

// fdConn reads and writes a socket with plain blocking system calls. The
// bus is on the control loop's critical path: a goroutine locked to its
// thread that blocks in read(2) wakes the instant the reply lands, without a
// round through Go's network poller and scheduler.
type fdConn struct{ fd int }

func (c fdConn) Read(b []byte) (int, error) {
	for {
		n, err := unix.Read(c.fd, b)
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return 0, err
		}
		if n == 0 && len(b) > 0 {
			return 0, errEOF
		}
		return n, nil
	}
}

func (c fdConn) Write(b []byte) (int, error) {
	written := 0
	for written < len(b) {
		n, err := unix.Write(c.fd, b[written:])
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return written, err
		}
		written += n
	}
	return written, nil
}

// shutdown wakes any thread blocked on the socket; Close alone would not.
func (c fdConn) shutdown() { unix.Shutdown(c.fd, unix.SHUT_RDWR) }
