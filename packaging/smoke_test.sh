#!/usr/bin/env bash
# Smoke test of a built bundle: its --self-test (open the window offscreen, train one tiny epoch on
# the demo data, predict, review, exit 0) in a throwaway HOME; fails when the self-test fails or
# when anything inside the bundle's folder was written.
#
#   packaging/smoke_test.sh [BUNDLE_DIR]        (default: dist/SegStudio)
set -euo pipefail

BUNDLE="${1:-$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)/dist/SegStudio}"
EXE=""
for candidate in "$BUNDLE/segstudio" "$BUNDLE/Contents/MacOS/SegStudio" "$BUNDLE/SegStudio"; do
    if [ -x "$candidate" ] && [ -f "$candidate" ]; then EXE="$candidate"; break; fi
done
[ -n "$EXE" ] || { echo "smoke_test.sh: no SegStudio executable in $BUNDLE (build it with packaging/build.sh)" >&2; exit 2; }

tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
if stat -c '%n' "$EXE" >/dev/null 2>&1; then STAT=(stat -c '%n %s %Y'); else STAT=(stat -f '%N %z %m'); fi  # GNU or BSD
listing() { (cd "$BUNDLE" && find . -type f -exec "${STAT[@]}" {} +) | sort; }
listing > "$tmp/before"

echo "smoke test: $EXE --version"
"$EXE" --version
echo "smoke test: $EXE --self-test (offscreen, HOME=$tmp/home)"
started=$SECONDS
set +e
env -u SEGSTUDIO_DATA_DIR HOME="$tmp/home" XDG_DATA_HOME="$tmp/home/.local/share" QT_QPA_PLATFORM=offscreen \
    "$EXE" --self-test --screenshot "$tmp/self-test.png" > "$tmp/self-test.log" 2>&1
status=$?
set -e
grep -v 'does not support propagateSizeHints' "$tmp/self-test.log" || true
[ "$status" = 0 ] || { echo "smoke test: FAILED, the self-test exited with $status" >&2; exit 1; }
[ -s "$tmp/self-test.png" ] || { echo "smoke test: FAILED, no screenshot was written" >&2; exit 1; }

listing > "$tmp/after"
if ! diff -q "$tmp/before" "$tmp/after" >/dev/null; then
    echo "smoke test: FAILED, files inside the bundle changed:" >&2
    diff "$tmp/before" "$tmp/after" | head -20 >&2
    exit 1
fi
echo "smoke test: passed in $((SECONDS - started)) s (nothing written inside $BUNDLE)"
