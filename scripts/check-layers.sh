#!/bin/sh
# check-layers.sh - fails when a file includes a header from a layer above
# its own. Layers (a layer may include only those listed for it):
#   core      core
#   tls       core tls (TLS transport, ClientHello; below http)
#   http      core http
#   conf      core conf
#   upstream  core http conf upstream
#   proxy     core http conf upstream proxy
#   mod       core http conf upstream proxy mod (policy modules hooked into
#             the proxy's phases; a module never includes another module)
# src/main.c may include anything.
set -u
cd "$(dirname "$0")/.."
bad=0
allowed() {
	case "$1" in
	core) echo "core" ;;
	tls) echo "core tls" ;;
	http) echo "core http" ;;
	conf) echo "core conf" ;;
	upstream) echo "core http conf upstream" ;;
	proxy) echo "core tls http conf upstream proxy" ;;
	mod) echo "core tls http conf upstream proxy mod" ;;
	*) echo "" ;;
	esac
}
for f in $(find src -mindepth 2 -name '*.[ch]'); do
	layer=$(echo "$f" | cut -d/ -f2)
	ok=$(allowed "$layer")
	if [ -z "$ok" ]; then
		echo "check-layers: $f: layer '$layer' is not in scripts/check-layers.sh"
		bad=1
		continue
	fi
	for inc in $(grep -E '^#include "' "$f" | sed -E 's/#include "([^/"]+)\/.*/\1/'); do
		case " $ok " in
		*" $inc "*) ;;
		*) echo "check-layers: $f includes from '$inc', above layer '$layer'"; bad=1 ;;
		esac
	done
done
# A module never includes another module: src/mod/X/ includes only mod/X/.
for f in $(find src/mod -mindepth 2 -name '*.[ch]' 2>/dev/null); do
	own=$(echo "$f" | cut -d/ -f3)
	for other in $(grep -E '^#include "mod/' "$f" | sed -E 's/#include "mod\/([^/"]+)\/.*/\1/'); do
		if [ "$other" != "$own" ]; then
			echo "check-layers: $f (module '$own') includes module '$other'"
			bad=1
		fi
	done
done
[ $bad -eq 0 ] && echo "check-layers: ok"
exit $bad
