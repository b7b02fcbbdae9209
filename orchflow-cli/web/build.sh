#!/bin/sh
# Builds the viewer into ../assets (index.html, app.js, app.css), or runs its unit tests.
#   ./build.sh          npm ci, then bundle with esbuild
#   ./build.sh test     npm ci, then node --test
# Needs node >= 18 and npm; nothing here runs during `cargo build`.
set -eu
cd "$(dirname "$0")"
npm ci --no-audit --no-fund --loglevel=error
case "${1:-build}" in
  build) node build.mjs ;;
  test) node --test test/*.test.mjs ;;
  *) echo "usage: $0 [build|test]" >&2; exit 2 ;;
esac
