from app.core.dataset import load_dataset
from app.core.paths import demo_dataset_dir, ensure_demo_dataset, user_data_dir


def test_demo_dataset_is_generated_once_in_the_user_folder(tmp_path, monkeypatch):
    monkeypatch.setenv("SEGSTUDIO_DATA_DIR", str(tmp_path / "user"))
    assert user_data_dir() == tmp_path / "user"
    folder = ensure_demo_dataset()
    assert folder == demo_dataset_dir() and folder.is_relative_to(tmp_path / "user")
    marker = next(folder.rglob("*.png"))
    stamp = marker.stat().st_mtime_ns
    assert ensure_demo_dataset() == folder
    assert marker.stat().st_mtime_ns == stamp  # not rewritten
    ds = load_dataset(folder)
    assert ds.problems == [] and len(ds.samples) >= 20
