#!/usr/bin/env bash
# Refresh docs/vendor/katex/ from KaTeX's npm package: the docs' math renderer, bundled with the
# site so that formulas render without any network (no CDN). Needs npm; run from anywhere:
#   bash docs/scripts/vendor_katex.sh [version]
set -euo pipefail
VERSION="${1:-0.16.47}"
DEST="$(cd "$(dirname "$0")/.." && pwd)/vendor/katex"
WORK="$(mktemp -d)"
trap 'rm -rf "$WORK"' EXIT
(cd "$WORK" && npm pack --silent "katex@$VERSION" > /dev/null && tar xzf "katex-$VERSION.tgz")
rm -rf "$DEST"
mkdir -p "$DEST/fonts" "$DEST/contrib"
DIST="$WORK/package/dist"
cp "$DIST/katex.min.js" "$DIST/katex.min.css" "$DEST/"
cp "$DIST/contrib/auto-render.min.js" "$DEST/contrib/"
cp "$DIST"/fonts/*.woff2 "$DEST/fonts/"   # every browser that runs the site reads woff2
cp "$WORK/package/LICENSE" "$DEST/LICENSE"
echo "KaTeX $VERSION (npm package katex, MIT license), copied by docs/scripts/vendor_katex.sh" \
  > "$DEST/VERSION"
echo "vendored KaTeX $VERSION into $DEST"
