#!/usr/bin/env bash
# Pack a built bundle with install.sh into dist/SegStudio-<version>-linux-<arch>.tar.gz.
#
#   packaging/linux/make_tarball.sh [BUNDLE_DIR] [OUT_DIR]     (defaults: dist/SegStudio, dist)
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
BUNDLE="${1:-$ROOT/dist/SegStudio}"
OUT="${2:-$ROOT/dist}"
[ -x "$BUNDLE/segstudio" ] || { echo "make_tarball.sh: no bundle at $BUNDLE (run packaging/build.sh)" >&2; exit 2; }
VERSION="$(sed -n 's/^__version__ = "\(.*\)"/\1/p' "$ROOT/app/__init__.py")"
NAME="SegStudio-$VERSION-linux-$(uname -m)"
mkdir -p "$OUT"
STAGE="$(mktemp -d "$OUT/.tarball.XXXXXX")"
trap 'rm -rf "$STAGE"' EXIT

mkdir -p "$STAGE/$NAME"
cp -al "$BUNDLE" "$STAGE/$NAME/SegStudio" 2>/dev/null || cp -R "$BUNDLE" "$STAGE/$NAME/SegStudio"  # hard links: no copy
cp "$ROOT/packaging/linux/install.sh" "$STAGE/$NAME/install.sh"
chmod +x "$STAGE/$NAME/install.sh"
cat > "$STAGE/$NAME/README.txt" <<TEXT
SegStudio $VERSION for Linux ($(uname -m))

Install for yourself (no root needed; adds SegStudio to the desktop menu):
    ./install.sh
Install for every user:
    sudo ./install.sh --system
Remove it again (your runs, reviews and settings are kept):
    ./install.sh --uninstall        (or: sudo ./install.sh --system --uninstall)
Or run it from here without installing:
    ./SegStudio/segstudio
TEXT
tar -C "$STAGE" -czf "$OUT/$NAME.tar.gz" "$NAME"
echo "tarball: $OUT/$NAME.tar.gz ($(du -h "$OUT/$NAME.tar.gz" | cut -f1))"
