#!/bin/sh
# deps.sh - install the Debian 12 packages moat needs, only those missing.
# Usage: sh scripts/deps.sh [build|test|bench]   (default: test, which includes build)
# Idempotent: with everything present it runs no apt command at all.
set -eu

profile=${1:-test}
build="gcc make pkg-config libyaml-dev libmodsecurity-dev modsecurity-crs zlib1g-dev libbrotli-dev libzstd-dev libssl-dev libnghttp2-dev"
test="$build libcmocka-dev clang libclang-rt-14-dev python3 python3-pytest python3-requests python3-brotli python3-zstandard python3-h2 nghttp2-client openssl curl chromium chromium-driver python3-selenium cppcheck slowhttptest"
bench="$build nginx-light haproxy varnish wrk valgrind strace nghttp2-client openssl"
case "$profile" in
	build) want=$build ;;
	test) want=$test ;;
	bench) want=$bench ;;
	*) echo "deps.sh: unknown profile '$profile' (build, test, bench)" >&2; exit 2 ;;
esac

missing=""
for p in $want; do
	if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
		missing="$missing $p"
	fi
done
[ -z "$missing" ] && exit 0

if [ "$(id -u)" != 0 ]; then
	echo "deps.sh: missing packages:$missing (run as root, or install them)" >&2
	exit 1
fi
echo "deps.sh: installing$missing"
# Packages such as nginx start a service on install; keep them from doing so.
policy=/usr/sbin/policy-rc.d
cleanup=0
if [ ! -e $policy ]; then
	printf '#!/bin/sh\nexit 101\n' > $policy && chmod 755 $policy && cleanup=1
fi
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
# shellcheck disable=SC2086
apt-get install -y -qq --no-install-recommends $missing
[ $cleanup = 1 ] && rm -f $policy
exit 0
