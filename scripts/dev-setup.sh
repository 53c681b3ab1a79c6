#!/usr/bin/env bash
# Installs or checks what `make demo` and `make test` need on Debian/Ubuntu.
# Usage: scripts/dev-setup.sh [go] [qemu] [containerd] [mosquitto] [chromium]
#   go          a Go toolchain new enough for go.mod (Go >= 1.21 fetches the
#               exact toolchain through the module proxy by itself)
#   qemu        qemu-user-static + binfmt_misc, to run arm64 binaries (tests)
#   containerd  containerd + runc installed and a daemon answering on
#               /run/containerd/containerd.sock (started if none answers)
#   mosquitto   the mosquitto broker and mosquitto_passwd (the agent/broker
#               tests start their own broker; none is left running)
#   chromium    Debian's chromium, which the ground station's browser tests
#               and make bench drive headless (and a person opens the demo in)
# As root it installs with apt-get; otherwise it says what is missing.
set -euo pipefail

export PATH="$PATH:/usr/local/go/bin"
missing=()

need_go() {
	if ! command -v go >/dev/null 2>&1; then
		missing+=("Go (>= 1.21): install it from the official tarball into /usr/local/go; Debian's golang package is too old")
		return
	fi
	local v
	v=$(go env GOVERSION 2>/dev/null | sed 's/^go//')
	case "$v" in
	1.1[0-9]* | 1.[0-9] | 1.[0-9].* | 1.20*) missing+=("Go >= 1.21 (found $v at $(command -v go))") ;;
	esac
}

apt_install() {
	if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null 2>&1; then
		missing+=("$* (as root: apt-get install -y $*)")
		return 1
	fi
	if [ -z "${SKYSWAP_APT_UPDATED:-}" ]; then
		echo "dev-setup: apt-get update" >&2
		apt-get update -qq
		export SKYSWAP_APT_UPDATED=1
	fi
	echo "dev-setup: apt-get install $*" >&2
	DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >/dev/null
}

need_qemu() {
	if ! command -v qemu-aarch64-static >/dev/null 2>&1; then
		apt_install qemu-user-static binfmt-support || return 0
	fi
	if [ ! -e /proc/sys/fs/binfmt_misc/register ]; then
		if [ "$(id -u)" = 0 ]; then
			mount -t binfmt_misc binfmt_misc /proc/sys/fs/binfmt_misc || true
		fi
	fi
	if [ ! -e /proc/sys/fs/binfmt_misc/qemu-aarch64 ] && command -v update-binfmts >/dev/null 2>&1 && [ "$(id -u)" = 0 ]; then
		update-binfmts --enable qemu-aarch64 >/dev/null 2>&1 || true
	fi
	if [ ! -e /proc/sys/fs/binfmt_misc/qemu-aarch64 ]; then
		missing+=("binfmt_misc registration for qemu-aarch64 (as root: mount -t binfmt_misc binfmt_misc /proc/sys/fs/binfmt_misc && update-binfmts --enable qemu-aarch64); the arm64 test will skip without it")
	fi
}

# need_containerd: containerd + runc installed, and a daemon answering on
# /run/containerd/containerd.sock (started in the background if none does,
# logging to /var/log/containerd-skyswap.log). The agent/containers tests
# skip without it, unless CI is set: then they fail.
need_containerd() {
	local sock=/run/containerd/containerd.sock log=/var/log/containerd-skyswap.log i
	# ctr waits for an absent socket until its timeout: test the socket first.
	containerd_answers() { [ -S "$sock" ] && timeout 3 ctr --address "$sock" version >/dev/null 2>&1; }
	if ! command -v containerd >/dev/null 2>&1 || ! command -v runc >/dev/null 2>&1 || ! command -v ctr >/dev/null 2>&1; then
		apt_install containerd runc || return 0
	fi
	if containerd_answers; then
		return 0
	fi
	if [ "$(id -u)" != 0 ]; then
		if [ -S "$sock" ]; then
			missing+=("root to reach containerd on $sock (the agent/containers tests run as root only)")
		else
			missing+=("a containerd daemon on $sock (as root: scripts/dev-setup.sh containerd, or systemctl start containerd)")
		fi
		return 0
	fi
	if command -v systemctl >/dev/null 2>&1 && [ -d /run/systemd/system ]; then
		systemctl start containerd >/dev/null 2>&1 || true
	fi
	if ! containerd_answers; then
		echo "dev-setup: starting containerd (log: $log)" >&2
		# setsid: its own session, so that ending the caller's process
		# group (a make or CI job) does not end the daemon.
		setsid nohup containerd >>"$log" 2>&1 </dev/null &
	fi
	for i in $(seq 1 50); do
		if containerd_answers; then
			return 0
		fi
		sleep 0.2
	done
	echo "dev-setup: containerd did not answer on $sock within 10 s; the end of $log:" >&2
	tail -n 20 "$log" >&2 || true
	return 1
}

# need_mosquitto: the mosquitto broker and mosquitto_passwd (both in the
# mosquitto package), for the agent/broker tests. They start their own
# broker on a free loopback port, so an install must not leave a
# system-wide broker running: a policy-rc.d refuses the package's service
# start, and under systemd the unit is disabled and stopped. A mosquitto
# that was already installed is left as it is. The tests skip without
# mosquitto, unless CI is set: then they fail.
need_mosquitto() {
	local policy=/usr/sbin/policy-rc.d ours="" rc=0
	if { command -v mosquitto >/dev/null 2>&1 || [ -x /usr/sbin/mosquitto ]; } &&
		{ command -v mosquitto_passwd >/dev/null 2>&1 || [ -x /usr/bin/mosquitto_passwd ]; }; then
		return 0
	fi
	if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null 2>&1; then
		missing+=("mosquitto (as root: scripts/dev-setup.sh mosquitto, or apt-get install mosquitto); the agent/broker tests skip without it")
		return 0
	fi
	if [ ! -e "$policy" ]; then
		printf '#!/bin/sh\n# dev-setup: no service starts while it installs mosquitto\nexit 101\n' >"$policy"
		chmod 755 "$policy"
		ours=1
		trap 'rm -f /usr/sbin/policy-rc.d' EXIT
	fi
	apt_install mosquitto || rc=$?
	if [ -n "$ours" ]; then
		rm -f "$policy"
		trap - EXIT
	fi
	if command -v systemctl >/dev/null 2>&1 && [ -d /run/systemd/system ]; then
		systemctl disable --now mosquitto.service >/dev/null 2>&1 || true
	fi
	return "$rc"
}

# need_chromium: the ground station's page is tested in headless Chromium
# (controller/ground/groundtest). The tests skip without it, unless CI is
# set: then they fail.
need_chromium() {
	if command -v chromium >/dev/null 2>&1 || command -v chromium-browser >/dev/null 2>&1; then
		return 0
	fi
	apt_install chromium || true
}

for what in "${@:-go}"; do
	"need_$what"
done

if [ ${#missing[@]} -gt 0 ]; then
	printf 'dev-setup: missing:\n' >&2
	printf '  - %s\n' "${missing[@]}" >&2
	# Go is required; qemu only makes the arm64 test run instead of skip.
	for m in "${missing[@]}"; do
		case "$m" in Go*) exit 1 ;; esac
	done
fi
exit 0
