#!/bin/sh
# run-demo.sh - what `make run` starts: the demo backend on 127.0.0.1:8081
# and moat on the default config (moat.yaml: 127.0.0.1:8080 -> 8081), in
# the foreground. Ctrl-C stops both.
set -eu
cd "$(dirname "$0")/.."
mkdir -p build
cc -O2 -Wall -Wextra -Werror -o build/demo-backend tools/demo_backend.c
build/demo-backend 127.0.0.1:8081 &
backend=$!
trap 'kill $backend 2>/dev/null' EXIT INT TERM
echo "moat: proxying http://127.0.0.1:8080/ to the demo backend on 127.0.0.1:8081 (Ctrl-C stops)"
echo "try:  curl -i http://127.0.0.1:8080/   (dashboard: http://127.0.0.1:9901/)"
build/moat -c moat.yaml
