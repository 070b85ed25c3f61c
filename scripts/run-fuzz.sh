#!/bin/sh
# run-fuzz.sh SECONDS TARGET... - run each libFuzzer target for SECONDS over
# its seed corpus (fuzz/corpus/<name>/), new inputs kept in build/fuzz/corpus.
# Fails when a target finds a crash (the input is left in build/fuzz/).
set -u
secs=$1; shift
rc=0
for t in "$@"; do
	name=$(basename "$t")
	seed=fuzz/corpus/${name%_fuzz}
	work=build/fuzz/corpus/${name%_fuzz}
	mkdir -p "$work"
	echo "fuzz: $name for ${secs}s"
	if ! "$t" -max_total_time="$secs" -timeout=10 -rss_limit_mb=2048 \
		-artifact_prefix=build/fuzz/ "$work" "$seed" > "build/fuzz/$name.log" 2>&1; then
		tail -n 40 "build/fuzz/$name.log"
		echo "fuzz: $name FAILED"
		rc=1
	else
		tail -n 1 "build/fuzz/$name.log"
	fi
done
exit $rc
