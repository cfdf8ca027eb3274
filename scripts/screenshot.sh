#!/usr/bin/env bash
# Takes the README's screenshot of the desktop app: starts it under Xvfb
# beside a headless `lanchat serve` node, both on 127.0.0.1 with their own
# ports and data folders and broadcast off (each knows the other through
# --broadcast 127.0.0.1:PORT), so nothing leaves loopback. The headless node
# sends a message and offers a file; a reply is typed into the window with
# xdotool and checked on the headless side; then the window is saved as a
# PNG. Everything started here is stopped by its PID on exit.
#
#   scripts/screenshot.sh [OUT.png]     default docs/screenshot.png
#
# Needs Xvfb, xdotool and imagemagick's import (scripts/debian-deps.sh).
set -euo pipefail
cd "$(dirname "$0")/.."
out=${1:-docs/screenshot.png}
# fyne warns about the C locale on every run of the binary; the window
# itself gets Chinese below.
export LANG=en_US.UTF-8 LC_ALL=
for c in Xvfb xdotool import go; do
	command -v "$c" >/dev/null || { echo "screenshot: $c is missing (scripts/debian-deps.sh installs it)" >&2; exit 1; }
done

tmp=$(mktemp -d)
pids=()
cleanup() {
	for ((i = ${#pids[@]} - 1; i >= 0; i--)); do
		kill "${pids[i]}" 2>/dev/null || true
		wait "${pids[i]}" 2>/dev/null || true
	done
	rm -rf "$tmp"
}
trap cleanup EXIT

echo "building the desktop app (cgo; a cold build of fyne takes minutes)" >&2
CGO_ENABLED=1 go build -o "$tmp/lanchat" ./cmd/lanchat
bin=$tmp/lanchat

# A display number and two ports nobody uses.
disp=90
while [ -e "/tmp/.X$disp-lock" ] || [ -e "/tmp/.X11-unix/X$disp" ]; do disp=$((disp + 1)); done
port_free() { ! (ss -Hlun; ss -Hltn) 2>/dev/null | awk '{print $4}' | grep -q ":$1\$"; }
gui_port=$((24000 + RANDOM % 2000))
until port_free "$gui_port"; do gui_port=$((gui_port + 1)); done
node_port=$((gui_port + 1))
until port_free "$node_port"; do node_port=$((node_port + 1)); done

Xvfb ":$disp" -screen 0 1024x700x24 -nolisten tcp >"$tmp/xvfb.log" 2>&1 &
pids+=($!)
for _ in $(seq 50); do [ -e "/tmp/.X11-unix/X$disp" ] && break; sleep 0.1; done
export DISPLAY=":$disp"

"$bin" serve --data "$tmp/node" --listen 127.0.0.1 --port "$node_port" --no-broadcast \
	--broadcast "127.0.0.1:$gui_port" --name 老王 --group 研发部 >"$tmp/node.log" 2>&1 &
pids+=($!)
LANG=zh_CN.UTF-8 LC_MESSAGES= "$bin" --data "$tmp/gui" --listen 127.0.0.1 --port "$gui_port" \
	--no-broadcast --broadcast "127.0.0.1:$node_port" --name 小李 --group 研发部 >"$tmp/gui.log" 2>&1 &
pids+=($!)

win=$(timeout 30 xdotool search --sync --onlyvisible --name lanchat | head -1) || {
	echo "screenshot: the window did not appear" >&2
	cat "$tmp/gui.log" >&2
	exit 1
}
xdotool windowmove "$win" 0 0

# Wait until each node lists the other.
for _ in $(seq 100); do
	"$bin" peers --data "$tmp/node" 2>/dev/null | grep -q 小李 && "$bin" peers --data "$tmp/gui" 2>/dev/null | grep -q 老王 && break
	sleep 0.1
done

printf '第一季度的数据都在表里，请看一下。\n' >"$tmp/季度报告.csv"
"$bin" send --data "$tmp/node" 小李 "你好！下午三点开会，别忘了带报告。"
"$bin" send --data "$tmp/node" --file "$tmp/季度报告.csv" 小李 "报告在这里"

# Open the conversation: click 老王, the second row under the 研发部 header.
sleep 0.5
xdotool mousemove --window "$win" 120 138 click 1
sleep 0.5
xdotool type --delay 20 "OK, see you at 3."
xdotool key Return
for _ in $(seq 50); do
	"$bin" history --data "$tmp/node" 小李 2>/dev/null | grep -q "see you at 3" && break
	sleep 0.1
done
"$bin" history --data "$tmp/node" 小李 | grep -q "see you at 3" || {
	echo "screenshot: the reply typed in the window did not arrive" >&2
	exit 1
}

sleep 1 # the delivery tick and the last frame
mkdir -p "$(dirname "$out")"
import -window "$win" "$out"
echo "saved $out" >&2
