#!/bin/sh
# Install SegStudio from this unpacked tarball: copy the program, put a `segstudio` command on the
# PATH, and add SegStudio to the desktop menu. No root needed; nothing outside these places is touched.
#
#   ./install.sh                  # for you: ~/.local/opt/SegStudio, ~/.local/bin/segstudio, menu entry
#   sudo ./install.sh --system    # for everyone: /opt/SegStudio, /usr/local/bin, /usr/local/share
#   ./install.sh --prefix DIR     # the program in DIR/SegStudio (the command and menu entry as above)
#   ./install.sh --uninstall      # remove what the same options installed (your data stays)
set -eu

HERE="$(cd "$(dirname "$0")" && pwd)"
SYSTEM=0
UNINSTALL=0
PREFIX=""
while [ $# -gt 0 ]; do
    case "$1" in
        --system) SYSTEM=1 ;;
        --prefix) PREFIX="$2"; shift ;;
        --uninstall) UNINSTALL=1 ;;
        -h|--help) sed -n '2,9p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
        *) echo "install.sh: unknown option $1 (see --help)" >&2; exit 2 ;;
    esac
    shift
done

if [ "$SYSTEM" = 1 ]; then
    PREFIX="${PREFIX:-/opt}"
    BIN_DIR=/usr/local/bin
    DATA_HOME=/usr/local/share
else
    PREFIX="${PREFIX:-$HOME/.local/opt}"
    BIN_DIR="$HOME/.local/bin"
    DATA_HOME="${XDG_DATA_HOME:-$HOME/.local/share}"
fi
TARGET="$PREFIX/SegStudio"
LINK="$BIN_DIR/segstudio"

if [ "$UNINSTALL" = 1 ]; then
    if [ -x "$TARGET/segstudio" ]; then
        "$TARGET/segstudio" install-desktop --uninstall --data-home "$DATA_HOME"
    fi
    if [ -L "$LINK" ] && [ "$(readlink "$LINK")" = "$TARGET/segstudio" ]; then
        rm -f "$LINK"
    fi
    rm -rf "$TARGET"
    echo "SegStudio removed from $TARGET (your runs, reviews and settings are kept in your user data folder)."
    exit 0
fi

[ -x "$HERE/SegStudio/segstudio" ] || { echo "install.sh: $HERE/SegStudio/segstudio is missing; unpack the whole tarball" >&2; exit 1; }
mkdir -p "$PREFIX" "$BIN_DIR"
# Copy beside the old version, then swap, so that a failed copy leaves the old one working.
rm -rf "$TARGET.new"
cp -R "$HERE/SegStudio" "$TARGET.new"
rm -rf "$TARGET"
mv "$TARGET.new" "$TARGET"
ln -sf "$TARGET/segstudio" "$LINK"
"$TARGET/segstudio" install-desktop --data-home "$DATA_HOME"
echo "SegStudio installed in $TARGET; start it from the desktop menu or with '$LINK'."
case ":$PATH:" in
    *":$BIN_DIR:"*) ;;
    *) echo "(add $BIN_DIR to your PATH to type 'segstudio' in a terminal)" ;;
esac
