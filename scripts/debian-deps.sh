#!/usr/bin/env bash
# Installs the Debian packages lanchat's tests use: iproute2 (network
# namespaces), iptables and nftables (packet loss, NAT), and iptux with xvfb
# and xdotool (interop: the real iptux, headless, typing into its window),
# the C headers fyne's desktop driver builds against (GL, X11, via
# pkg-config) for the cgo desktop app (gcc is assumed present), mingw-w64
# for `make windows` (the desktop app for Windows needs a Windows C
# compiler), and imagemagick, whose `import` takes scripts/screenshot.sh's
# picture of the Xvfb screen.
# Only as root; as another user the multi-host tests skip and this prints
# how to enable them.
#
#   scripts/debian-deps.sh [PKG...]   with packages: install just those, and
#                                     fail when they are missing and not root
set -euo pipefail
required=0
pkgs=(iproute2 iptables nftables iptux xvfb xdotool imagemagick
	pkg-config libgl1-mesa-dev libx11-dev libxcursor-dev libxrandr-dev libxinerama-dev libxi-dev libxxf86vm-dev
	gcc-mingw-w64-x86-64)
if [ $# -gt 0 ]; then
	required=1
	pkgs=("$@")
fi
missing=()
for p in "${pkgs[@]}"; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0
if [ "$(id -u)" -ne 0 ]; then
	if [ "$required" -eq 1 ]; then
		echo "needs ${missing[*]} (sudo apt-get install ${missing[*]})" >&2
		exit 1
	fi
	echo "note: multi-host tests need root and: ${missing[*]} (sudo apt-get install ${missing[*]})" >&2
	exit 0
fi
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${missing[@]}"
