#!/usr/bin/env bash
# Make an AppImage of a built bundle: lays out the AppDir (AppRun, desktop entry, icon, the bundle
# in usr/lib/SegStudio) and runs appimagetool on it. appimagetool is not in PyPI, Debian or npm;
# get it from the AppImage project and put it on PATH. Without it, --appdir-only still lays out
# (and checks) the AppDir.
#
#   packaging/linux/make_appimage.sh [BUNDLE_DIR] [OUT_DIR] [--appdir-only]
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
APPDIR_ONLY=0
args=()
for arg in "$@"; do
    if [ "$arg" = --appdir-only ]; then APPDIR_ONLY=1; else args+=("$arg"); fi
done
BUNDLE="${args[0]:-$ROOT/dist/SegStudio}"
OUT="${args[1]:-$ROOT/dist}"
[ -x "$BUNDLE/segstudio" ] || { echo "make_appimage.sh: no bundle at $BUNDLE (run packaging/build.sh)" >&2; exit 2; }
VERSION="$(sed -n 's/^__version__ = "\(.*\)"/\1/p' "$ROOT/app/__init__.py")"
ARCH="$(uname -m)"
APPDIR="$OUT/SegStudio.AppDir"

rm -rf "$APPDIR"
mkdir -p "$APPDIR/usr/lib" "$APPDIR/usr/share/icons/hicolor/256x256/apps"
cp -al "$BUNDLE" "$APPDIR/usr/lib/SegStudio" 2>/dev/null || cp -R "$BUNDLE" "$APPDIR/usr/lib/SegStudio"
cat > "$APPDIR/AppRun" <<'RUN'
#!/bin/sh
HERE="$(dirname "$(readlink -f "$0")")"
exec "$HERE/usr/lib/SegStudio/segstudio" "$@"
RUN
chmod +x "$APPDIR/AppRun"
# The entry runs AppRun (appimagetool's rule: Exec names the AppImage's own command).
sed -e 's/^Exec=.*/Exec=segstudio %f/' -e 's/^TryExec=.*//' "$ROOT/resources/segstudio.desktop" | sed '/^$/d' \
    > "$APPDIR/segstudio.desktop"
echo "X-AppImage-Version=$VERSION" >> "$APPDIR/segstudio.desktop"
cp "$ROOT/resources/icons/segstudio-256.png" "$APPDIR/segstudio.png"
cp "$ROOT/resources/icons/segstudio-256.png" "$APPDIR/usr/share/icons/hicolor/256x256/apps/segstudio.png"
ln -sf segstudio.png "$APPDIR/.DirIcon"
if command -v desktop-file-validate >/dev/null 2>&1; then
    desktop-file-validate "$APPDIR/segstudio.desktop"
fi
"$APPDIR/AppRun" --version

if [ "$APPDIR_ONLY" = 1 ]; then
    echo "AppDir: $APPDIR"
    exit 0
fi
command -v appimagetool >/dev/null 2>&1 || { echo "make_appimage.sh: appimagetool is not on PATH (see packaging/README.md)" >&2; exit 2; }
export ARCH  # appimagetool reads the architecture from the environment
appimagetool --no-appstream "$APPDIR" "$OUT/SegStudio-$VERSION-$ARCH.AppImage"
rm -rf "$APPDIR"
echo "AppImage: $OUT/SegStudio-$VERSION-$ARCH.AppImage ($(du -h "$OUT/SegStudio-$VERSION-$ARCH.AppImage" | cut -f1))"
