#!/usr/bin/env sh
# Rebuilds the embedded GraphiQL bundle in ../assets from package.json,
# package-lock.json, entry.jsx and page.css in this directory.
#
# The npm install and esbuild run in a scratch directory outside the
# repository so node_modules never lands in the tree. Requires node + npm.
#
#   ./build.sh                 # scratch dir is a fresh mktemp -d
#   BUILD_DIR=/tmp/gq ./build.sh
set -eu

SRC_DIR=$(cd "$(dirname "$0")" && pwd)
OUT_DIR=$(cd "$SRC_DIR/../assets" && pwd)
if [ -z "${BUILD_DIR:-}" ]; then
	BUILD_DIR=$(mktemp -d)
	trap 'rm -rf "$BUILD_DIR"' EXIT
fi

mkdir -p "$BUILD_DIR"
cp "$SRC_DIR/package.json" "$SRC_DIR/entry.jsx" "$SRC_DIR/page.css" "$BUILD_DIR/"
if [ -f "$SRC_DIR/package-lock.json" ]; then
	cp "$SRC_DIR/package-lock.json" "$BUILD_DIR/"
fi

cd "$BUILD_DIR"
if [ -f package-lock.json ]; then
	npm ci --no-audit --no-fund
else
	npm install --no-audit --no-fund
	cp package-lock.json "$SRC_DIR/package-lock.json"
fi

# One JS file and one CSS file (esbuild writes the imported CSS next to the
# JS with the same base name). Any fonts/images referenced from CSS are
# inlined as data: URLs so the output stays at exactly these two files.
npx --no-install esbuild entry.jsx \
	--bundle \
	--minify \
	--format=iife \
	--target=es2020 \
	--platform=browser \
	--define:process.env.NODE_ENV='"production"' \
	--loader:.woff=dataurl --loader:.woff2=dataurl --loader:.ttf=dataurl \
	--loader:.svg=dataurl --loader:.png=dataurl \
	--legal-comments=eof \
	--outfile="$BUILD_DIR/dist/graphiql.js"

cp "$BUILD_DIR/dist/graphiql.js" "$OUT_DIR/graphiql.js"
cp "$BUILD_DIR/dist/graphiql.css" "$OUT_DIR/graphiql.css"
ls -l "$OUT_DIR"
