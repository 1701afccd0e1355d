#!/usr/bin/env bash
# Regenerates package-lock.json away from node_modules, so it keeps every platform's optional
# packages (npm drops other platforms' @swc/core-* etc. when it rewrites the lock from an
# installed tree: npm/cli#4828) and `npm ci` works on a fresh machine.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
cd "$root"
for f in package.json $(ls libs/*/package.json services/*/package.json tools/*/package.json 2>/dev/null); do
  mkdir -p "$tmp/$(dirname "$f")"
  cp "$f" "$tmp/$f"
done
cd "$tmp"
npm install --package-lock-only --no-audit --no-fund --ignore-scripts >/dev/null
cp package-lock.json "$root/package-lock.json"
echo "package-lock.json regenerated"
