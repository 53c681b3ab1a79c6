#!/usr/bin/env bash
# Installs or checks what `make demo` and `make test` need on Debian/Ubuntu.
# Usage: scripts/dev-setup.sh [go] [qemu]
#   go    a Go toolchain new enough for go.mod (Go >= 1.21 fetches the exact
#         toolchain through the module proxy by itself)
#   qemu  qemu-user-static + binfmt_misc, to run arm64 binaries (tests)
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
