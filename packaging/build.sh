#!/usr/bin/env bash
# Build the SegStudio desktop bundle (PyInstaller, one folder) from a clean virtual environment,
# run its self-test, and pack the Linux tarball (and an AppImage when appimagetool is on PATH).
#
#   packaging/build.sh                 # CPU build of torch (the default)
#   packaging/build.sh --cuda          # the CUDA build of torch from the package index
#   packaging/build.sh --cuda --torch-index https://download.pytorch.org/whl/cu126
#
# Output: dist/SegStudio/ (run dist/SegStudio/segstudio), dist/SegStudio-<version>-linux-<arch>.tar.gz.
# See packaging/README.md.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
PYTHON="${PYTHON:-python3}"
FLAVOUR=cpu
TORCH_VERSION="${TORCH_VERSION:-2.13.0}"
TORCH_INDEX="${TORCH_INDEX:-}"
VENV="$ROOT/build/bundle-venv"
DIST="$ROOT/dist"
WORK="$ROOT/build/pyinstaller"
REUSE_VENV=0
SMOKE=1
TARBALL=1

usage() {
    sed -n '2,10p' "$0" | sed 's/^# \{0,1\}//'
    cat <<'EOF'
Options:
  --cuda               bundle torch's CUDA build (larger; for NVIDIA GPUs)
  --torch-index URL    the package index to take torch from (default: PyTorch's CPU index for
                       the CPU build, the default index for --cuda)
  --python PY          the Python that creates the build environment (default: python3, >= 3.11)
  --venv DIR           where the build environment goes (default: build/bundle-venv)
  --dist DIR           where the bundle goes (default: dist)
  --reuse-venv         keep an existing build environment instead of recreating it
  --no-smoke-test      do not run the bundle's --self-test
  --no-tarball         do not pack the Linux tarball
EOF
}

while [ $# -gt 0 ]; do
    case "$1" in
        --cuda) FLAVOUR=cuda ;;
        --torch-index) TORCH_INDEX="$2"; shift ;;
        --python) PYTHON="$2"; shift ;;
        --venv) VENV="$2"; shift ;;
        --dist) DIST="$2"; shift ;;
        --reuse-venv) REUSE_VENV=1 ;;
        --no-smoke-test) SMOKE=0 ;;
        --no-tarball) TARBALL=0 ;;
        -h|--help) usage; exit 0 ;;
        *) echo "build.sh: unknown option $1 (see --help)" >&2; exit 2 ;;
    esac
    shift
done

started=$SECONDS
step() { printf '\n==> [%4ds] %s\n' "$((SECONDS - started))" "$*"; }
export PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_PROGRESS_BAR=off

if [ "$REUSE_VENV" = 1 ] && [ -x "$VENV/bin/python" ]; then
    step "reusing the build environment $VENV"
else
    step "creating a clean build environment in $VENV"
    rm -rf "$VENV"
    "$PYTHON" -m venv "$VENV"
fi
PY="$VENV/bin/python"
"$PY" -c 'import sys; assert sys.version_info >= (3, 11), "SegStudio needs Python 3.11 or newer"'

step "installing torch $TORCH_VERSION ($FLAVOUR build)"
torch_args=("torch==$TORCH_VERSION")
if [ "$FLAVOUR" = cpu ]; then
    # PyTorch's CPU index holds the +cpu wheels; on macOS the package index's wheel is CPU-only.
    if [ "$(uname -s)" != Darwin ]; then
        torch_args+=(--extra-index-url "${TORCH_INDEX:-https://download.pytorch.org/whl/cpu}")
    fi
elif [ -n "$TORCH_INDEX" ]; then
    torch_args+=(--index-url "$TORCH_INDEX")
fi
"$PY" -m pip install --upgrade pip >/dev/null
# torch alone from its index, then its dependencies from the default one (only torch is there).
"$PY" -m pip install --no-deps "${torch_args[@]}"
"$PY" -m pip install "torch==$TORCH_VERSION"
"$PY" - "$FLAVOUR" <<'EOF'
import sys, torch
flavour = sys.argv[1]
cuda = torch.version.cuda
print(f"torch {torch.__version__}, CUDA {cuda or 'none'}")
if flavour == "cpu" and cuda:
    sys.exit("build.sh: a CUDA build of torch was installed for a CPU bundle; pass --torch-index "
             "with PyTorch's CPU index, or --cuda")
if flavour == "cuda" and not cuda:
    sys.exit("build.sh: --cuda asked for, but the torch installed is a CPU build; pass --torch-index")
EOF

step "installing SegStudio (not editable) and the build tools"
rm -rf "$ROOT/build/lib" "$ROOT"/build/bdist.*  # setuptools' leftovers would bring back deleted modules
"$PY" -m pip install "$ROOT" -r "$ROOT/packaging/requirements-build.txt"

step "PyInstaller: one-folder bundle"
SEGSTUDIO_FLAVOUR="$FLAVOUR" "$PY" -m PyInstaller --noconfirm --clean --log-level WARN \
    --distpath "$DIST" --workpath "$WORK" "$ROOT/packaging/segstudio.spec"
BUNDLE="$DIST/SegStudio"
step "bundle: $BUNDLE ($(du -sh "$BUNDLE" | cut -f1))"

if [ "$SMOKE" = 1 ]; then
    step "smoke test: the bundle's --self-test, offscreen"
    "$ROOT/packaging/smoke_test.sh" "$BUNDLE"
fi

if [ "$TARBALL" = 1 ] && [ "$(uname -s)" = Linux ]; then
    step "Linux tarball"
    "$ROOT/packaging/linux/make_tarball.sh" "$BUNDLE" "$DIST"
    if command -v appimagetool >/dev/null 2>&1; then
        step "AppImage"
        "$ROOT/packaging/linux/make_appimage.sh" "$BUNDLE" "$DIST"
    else
        echo "(no appimagetool on PATH: AppImage skipped; see packaging/README.md)"
    fi
fi

step "done in $((SECONDS - started)) s: $BUNDLE ($(du -sh "$BUNDLE" | cut -f1))"
