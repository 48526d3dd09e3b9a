#!/usr/bin/env bash
# Builds the audit console into dist/ (embedded by console.go), in a scratch
# directory so no node_modules ends up in the repository.
#
#   web/console/build.sh           build and replace dist/
#   web/console/build.sh --check   build and fail if dist/ differs (CI)
#
# Needs node (>= 20.19) and npm with registry access. Versions are pinned by
# package.json (exact) and package-lock.json (npm ci). Without a lock file
# (after an upgrade) it runs npm install and copies the new lock back.
set -euo pipefail
# Exit status 3: the build could not run here (no suitable node, or npm could
# not install); CI only warns then.
if ! node -e 'const [a,b]=process.versions.node.split(".").map(Number); process.exit(a>20||(a===20&&b>=19)?0:1)' 2>/dev/null; then
  echo "web/console/build.sh: needs node >= 20.19 (Vite 8)" >&2
  exit 3
fi
here="$(cd "$(dirname "$0")" && pwd)"
check=false
[ "${1:-}" = "--check" ] && check=true

work="${BUILD_DIR:-$(mktemp -d)}"
trap '[ -z "${BUILD_DIR:-}" ] && rm -rf "$work"' EXIT
mkdir -p "$work"
cp -r "$here/src" "$here/public" "$here/index.html" "$here/package.json" "$here/tsconfig.json" "$here/vite.config.ts" "$work/"
cd "$work"
if [ -f "$here/package-lock.json" ]; then
  cp "$here/package-lock.json" .
  npm ci --no-audit --no-fund --loglevel=error >/dev/null || { echo "web/console/build.sh: npm ci failed" >&2; exit 3; }
else
  npm install --no-audit --no-fund --loglevel=error >/dev/null || { echo "web/console/build.sh: npm install failed" >&2; exit 3; }
  cp package-lock.json "$here/"
fi
npm run --silent build >/dev/null

if $check; then
  if ! diff -r "$work/dist" "$here/dist"; then
    echo "web/console/dist is not the build of web/console/src: run web/console/build.sh and commit dist/" >&2
    exit 1
  fi
  echo "web/console/dist is current"
else
  rm -rf "$here/dist"
  cp -r "$work/dist" "$here/dist"
  ls -l "$here/dist" "$here/dist/assets"
fi
