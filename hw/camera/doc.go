// Package camera reads a FLIR Lepton 2.5 thermal camera (80x60, 14-bit raw
// counts) through periph: the command interface (CCI) on an i2c.Bus at 0x2A
// with periph's lepton/cci, and the video (VoSPI) on an spi.Port with a
// reader of our own. The same code runs on a Pi (/dev/spidev0.0 and
// /dev/i2c-1) and against the virtual drone, whose ports are periph's
// interfaces too: the reader needs nothing of a port but Connect and
// fixed-size reads (Tx(nil, buf)), and honours conn.Limits if the
// connection reports one.
//
// # Init and Attach
//
// Like the other drivers in hw, the camera opens two ways. Init is the cold
// start: it waits for the camera to boot, then turns AGC off (raw 14-bit
// counts) and telemetry on as a 3-line header, which are the only CCI writes
// this package ever makes. Attach adopts a camera that another flight-app
// instance already configured and streams from: it reads the CCI status and
// checks AGC and telemetry with GET commands, and it sends no SET or RUN and
// no reset. Neither powers the camera down, ever; Close only lets go of the
// SPI connection.
//
// Attach does not read the video. A VoSPI stream is clocked out by its
// reader, so two readers on one camera steal each other's packets: call Next
// only once the camera is this instance's (after the hand-over's cut-over),
// and stop calling it before handing it over. The owner issues no CCI
// command after Init, so a candidate's GETs cannot interleave with its
// commands.
//
// # The stream and the resync rule
//
// A frame is 63 packets of 164 bytes, numbered 0..62: three telemetry lines
// (line A carries the uptime and a frame counter that runs at ~27 Hz) and
// 60 video lines. Discard packets (ID 0x?Fxx) fill the gaps between frames
// and are skipped wherever they appear. Every other packet must pass its
// CRC (CRC-16/CCITT over the packet with the ID's reserved top nibble and
// the CRC field zeroed, as the Lepton datasheet defines it) and carry the
// next expected number. A packet that fails either is dropped and counted,
// the partial frame is thrown away, and the reader resynchronises: it drops
// whatever it has buffered, keeps the chip select deasserted for
// Opts.ResyncPause (the datasheet asks for more than 185 ms, i.e. five frame
// periods, after which the camera restarts at a frame boundary), and then
// hunts for a packet 0, skipping (and counting as Skipped) the numbered
// packets before it. A reader that falls behind sees exactly such a jump,
// so the rule covers it. A stream that delivers no complete frame for
// Opts.SyncTimeout (a camera that lost sync and sends only discards) is
// resynchronised the same way.
//
// Hand-overs: the stream passes between readers (the flight app's owners).
// A new reader, a reader whose Next was cancelled (its owner handed over),
// and a reader whose buffered packets are older than a frame period (its
// owner stood by while another read on) start by hunting for a packet 0
// without the pause: nothing is known to be wrong with the stream, and the
// pause would cost the hand-over a quarter of a second of video. If the
// camera did lose sync (on hardware, a reader that stops mid-frame for
// more than a few line periods can cause that), the next bad packet
// triggers the full resync above, so the stream recovers either way.
//
// The Lepton 2.5 streams ~27 frames a second, of which every third is new
// (the export limit of 9 Hz); the other two repeat its pixels. Next returns
// only new frames: a complete frame whose pixels equal the last returned
// frame's, and whose counter is less than 3 ahead of it, is a duplicate,
// skipped and counted. The counter condition keeps a perfectly static scene
// (a simulator's) from stalling Next: it still yields a frame every third
// count.
//
// Frames must be read as they come: a caller that does not call Next again
// within about a frame period (~37 ms) makes the camera miss a frame and
// costs a resync. Next reads in transfers of Opts.PacketsPerTx packets and
// keeps the packets it has not used for the next call, so a caller at 9 Hz
// does not lose the start of the following frame.
//
// Package thermal turns a frame into a false-colour JPEG; package
// cameratest has a VoSPI encoder and fake ports for tests.
package camera
