#!/usr/bin/env bash
# Make dist/SegStudio-<version>-macos-<arch>.dmg from dist/SegStudio.app (built on a Mac by
# packaging/build.sh, whose spec adds the .app BUNDLE step there). Uses create-dmg when installed
# (`brew install create-dmg`: a window with the app and an Applications link to drag it to),
# otherwise plain hdiutil. Signs the app when SEGSTUDIO_CODESIGN_IDENTITY names a Developer ID
# (ad hoc otherwise, which runs on the Mac that built it; others need the right-click > Open
# once, or notarisation, see packaging/README.md).
#
#   packaging/macos/make_dmg.sh [APP] [OUT_DIR]     (defaults: dist/SegStudio.app, dist)
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
APP="${1:-$ROOT/dist/SegStudio.app}"
OUT="${2:-$ROOT/dist}"
[ "$(uname -s)" = Darwin ] || { echo "make_dmg.sh: runs on macOS only (hdiutil, codesign)" >&2; exit 2; }
[ -x "$APP/Contents/MacOS/SegStudio" ] || { echo "make_dmg.sh: no app at $APP (run packaging/build.sh on a Mac)" >&2; exit 2; }
VERSION="$(sed -n 's/^__version__ = "\(.*\)"/\1/p' "$ROOT/app/__init__.py")"
DMG="$OUT/SegStudio-$VERSION-macos-$(uname -m).dmg"

IDENTITY="${SEGSTUDIO_CODESIGN_IDENTITY:--}"
timestamp=--timestamp
[ "$IDENTITY" = "-" ] && timestamp=--timestamp=none  # ad hoc: no timestamp server
codesign --force --deep --options runtime "$timestamp" \
    --entitlements "$ROOT/packaging/macos/entitlements.plist" --sign "$IDENTITY" "$APP"
codesign --verify --deep --strict "$APP"

rm -f "$DMG"
if command -v create-dmg >/dev/null 2>&1; then
    create-dmg --volname "SegStudio $VERSION" --volicon "$ROOT/resources/icons/segstudio.icns" \
        --window-size 560 340 --icon-size 96 --icon "SegStudio.app" 140 160 \
        --app-drop-link 420 160 --hide-extension "SegStudio.app" --no-internet-enable \
        "$DMG" "$APP"
else
    STAGE="$(mktemp -d)"
    trap 'rm -rf "$STAGE"' EXIT
    cp -R "$APP" "$STAGE/"
    ln -s /Applications "$STAGE/Applications"
    hdiutil create -volname "SegStudio $VERSION" -srcfolder "$STAGE" -ov -format UDZO "$DMG"
fi
if [ "$IDENTITY" != "-" ]; then
    codesign --sign "$IDENTITY" "$DMG"
fi
echo "dmg: $DMG ($(du -h "$DMG" | cut -f1))"
