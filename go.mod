module github.com/skyswap/skyswap

go 1.26.8

require (
	golang.org/x/sys v0.49.0 // indirect
	periph.io/x/conn/v3 v3.7.2 // indirect
	periph.io/x/devices/v3 v3.7.4 // indirect
	periph.io/x/host/v3 v3.8.5 // indirect
)
