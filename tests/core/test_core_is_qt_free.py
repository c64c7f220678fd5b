"""app/core is the engine: importing all of it must not load Qt or pyqtgraph."""

import subprocess
import sys

SCRIPT = """
import importlib, pkgutil, sys
import app.core
names = [m.name for m in pkgutil.walk_packages(app.core.__path__, 'app.core.')]
for name in names:
    importlib.import_module(name)
loaded = sorted(m for m in sys.modules if m.split('.')[0] in ('PySide6', 'pyqtgraph', 'PyQt5', 'PyQt6', 'shiboken6'))
print(len(names))
print(','.join(loaded))
"""


def test_core_imports_no_qt():
    result = subprocess.run([sys.executable, "-c", SCRIPT], capture_output=True, text=True, check=True)
    count, loaded = result.stdout.strip().split("\n") + [""] * (2 - len(result.stdout.strip().split("\n")))
    assert int(count) >= 10, "expected to import every app.core module"
    assert loaded == "", f"app.core loaded Qt modules: {loaded}"


def test_registries_and_experiment_validation_do_not_import_torch():
    """Listing models, losses and optimizers and checking an experiment stay light, so the
    window opens before torch is loaded; building a model does import it."""
    script = ("import sys\nfrom app.core.config import ExperimentConfig\nfrom app.core.models import MODELS\n"
              "from app.core.losses import LOSSES\nfrom app.core.optim import OPTIMIZERS\n"
              "ExperimentConfig().validate()\nassert MODELS.names() and LOSSES.names() and OPTIMIZERS.names()\n"
              "print('torch' in sys.modules)\nfrom app.core.models import build_model\n"
              "build_model('unet', 1, 2, depth=1, base_width=4)\nprint('torch' in sys.modules)\n")
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True)
    assert result.stdout.split() == ["False", "True"]
