#!/bin/sh
# Runs chatd's benchmarks against the Node peer: builds chatd and chatbench,
# installs the peer's packages, checks both servers with the same smoke test,
# then runs the scenarios and writes bench/results/latest.md, latest.json and
# the ramp charts (ramp-*.svg). The compared scenarios run three times,
# interleaved, and the tables give medians and ranges. The cluster scenario
# runs when CHATD_TEST_POSTGRES is set (with CHATD_TEST_REDIS and
# CHATD_TEST_NATS for its two-node variants); the webhooks scenario runs on
# SQLite, and on PostgreSQL too when CHATD_TEST_POSTGRES is set.
#
#   bench/run.sh            the short version (about ten minutes)
#   bench/run.sh -full      the full version (longer steps)
#   bench/run.sh -only p2p  extra flags go to chatbench
set -eu
cd "$(dirname "$0")/.."
GO=${GO:-go}
mode=-short
if [ "${1:-}" = "-full" ]; then
	mode=
	shift
fi
$GO build -o bin/chatd ./cmd/chatd
$GO build -o bin/chatbench ./cmd/chatbench
# npm ci compiles better-sqlite3 (minutes): only when the packages are missing.
[ -d bench/peer/node_modules/better-sqlite3/build ] || (cd bench/peer && npm ci --no-audit --no-fund --loglevel=error)
(cd bench/peer && CHATD_BIN="$PWD/../../bin/chatd" node --test smoke.test.mjs)
exec bin/chatbench $mode -chatd bin/chatd -peer bench/peer -out bench/results "$@"
