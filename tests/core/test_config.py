import json
import shutil

import pytest

from app.core.config import SCHEMA_VERSION, ConfigError, ExperimentConfig


def test_defaults_validate_and_round_trip(tmp_path):
    config = ExperimentConfig()
    assert config.validate() is config
    again = ExperimentConfig.from_json(config.to_json())
    assert again == config
    path = config.save(tmp_path / "c.json")
    assert ExperimentConfig.load(path) == config
    assert json.loads(path.read_text())["schema_version"] == SCHEMA_VERSION


def test_relative_data_paths_are_taken_from_the_experiment_files_folder(tmp_path, monkeypatch):
    folder = tmp_path / "project"
    folder.mkdir()
    data = ExperimentConfig().to_dict()
    data["data"]["path"] = "stacks/volume.tif"
    data["data"]["label_stack"] = "stacks/labels.tif"
    (folder / "exp.json").write_text(json.dumps(data))
    monkeypatch.chdir(tmp_path)  # not the file's folder
    config = ExperimentConfig.load("project/exp.json")
    assert config.data.path == str(folder / "stacks" / "volume.tif")
    assert config.data.label_stack == str(folder / "stacks" / "labels.tif")
    data["data"].update(path=str(tmp_path / "elsewhere"), label_stack=None)
    (folder / "abs.json").write_text(json.dumps(data))
    absolute = ExperimentConfig.load(folder / "abs.json")
    assert absolute.data.path == str(tmp_path / "elsewhere") and absolute.data.label_stack is None


def test_changed_values_survive_the_round_trip():
    data = ExperimentConfig().to_dict()
    data["model"] = {"name": "unet_pp", "params": {"deep_supervision": True, "depth": 3}}
    data["loss"]["name"] = "tversky"
    data["loss"]["params"] = {"alpha": 0.3, "beta": 0.7}
    data["training"]["device"] = "cuda:1"
    data["data"]["splits"] = {"27": "val"}
    config = ExperimentConfig.from_dict(data)
    assert config.model.params["depth"] == 3 and config.training.device == "cuda:1"
    assert ExperimentConfig.from_json(config.to_json()) == config


@pytest.mark.parametrize("change, message", [
    ({"model": {"name": "resnet"}}, "model.name = 'resnet' is not registered; valid: unet"),
    ({"model": {"params": {"depth": 99}}}, "model.params: .*depth"),
    ({"loss": {"name": "l2"}}, "loss.name .*valid: ce"),
    ({"model": {"name": ["unet"]}}, r"model.name = \['unet'\] is not registered"),  # not a TypeError
    ({"loss": {"name": {"ce": 1}}}, "loss.name = .* is not registered"),
    ({"optimizer": {"schedule": ["cosine"]}}, "optimizer.schedule = .* is not registered"),
    ({"optimizer": {"schedule": "linear"}}, "optimizer.schedule .*valid: constant, poly, cosine, step"),
    ({"optimizer": {"lr": -1}}, "optimizer.lr must be a number"),
    ({"training": {"device": "gpu"}}, "training.device = 'gpu' .*auto, cpu, cuda, cuda:N or mps"),
    ({"training": {"mixed_precision": "maybe"}}, "training.mixed_precision .*auto, on, off"),
    ({"training": {"batch_size": 0}}, "training.batch_size must be a whole number"),
    ({"training": {"epochs": 2.5}}, "training.epochs"),
    ({"training": {"bogus": 1}}, "training.bogus: unknown key in training; valid: batch_size"),
    ({"data": {"normalisation": "zscore"}}, "data.normalisation .*dataset, range, none"),
    ({"data": {"splits": {"a": "holdout"}}}, "data.splits.a"),
    ({"augmentation": {"transforms": [{"name": "sparkle"}]}}, "augmentation: .*valid: flip"),
    ({"postprocess": {"foreground_fraction": 2}}, "postprocess: .*foreground_fraction"),
    ({"nonsense": True}, "nonsense: unknown key in the experiment"),
    ({"schema_version": 99}, "schema_version 99 is not supported"),
    ({"training": 5}, "training must be an object"),
])
def test_rejections_name_the_key(change, message):
    data = ExperimentConfig().to_dict()
    for key, value in change.items():
        if isinstance(value, dict) and isinstance(data.get(key), dict) and key != "postprocess":
            data[key] = {**data[key], **value}
        else:
            data[key] = value
    with pytest.raises(ConfigError, match=message):
        ExperimentConfig.from_dict(data)


def test_bad_json_and_file_name_in_message(tmp_path):
    with pytest.raises(ConfigError, match="not valid JSON"):
        ExperimentConfig.from_json("{")
    path = tmp_path / "bad.json"
    path.write_text('{"training": {"epochs": 0}}')
    with pytest.raises(ConfigError, match="bad.json: training.epochs"):
        ExperimentConfig.load(path)
    huge = tmp_path / "huge.json"  # Python refuses to read an integer of more than 4,300 digits
    huge.write_text('{"training": {"epochs": ' + "9" * 5000 + "}}")
    with pytest.raises(ConfigError, match=r"huge.json: not valid JSON: .*4300 digits"):
        ExperimentConfig.load(huge)


@pytest.mark.parametrize("change, message", [
    ({"name": 5}, "name must be a non-empty text"),
    ({"loss": {"weight_map": "false"}}, "loss.weight_map must be true or false"),
    ({"training": {"flip_tta": 1}}, "training.flip_tta must be true or false"),
])
def test_names_and_switches_are_checked(change, message):
    data = ExperimentConfig().to_dict()
    for key, value in change.items():
        data[key] = {**data[key], **value} if isinstance(value, dict) else value
    with pytest.raises(ConfigError, match=message):
        ExperimentConfig.from_dict(data)


@pytest.mark.parametrize("section, key", [("training", "seed"), ("data", "split_seed")])
def test_seeds_stop_where_the_window_can_show_them(section, key):
    """A seed of 2**31 passed the check, then the Model panel's refresh raised OverflowError and
    left the previous experiment's forms on screen."""
    data = ExperimentConfig().to_dict()
    data[section][key] = 2**31 - 1
    assert getattr(getattr(ExperimentConfig.from_dict(data), section), key) == 2**31 - 1
    data[section][key] = 2**31
    with pytest.raises(ConfigError, match=f"{section}.{key}"):
        ExperimentConfig.from_dict(data)


def test_a_file_that_is_not_utf8_is_a_config_error(tmp_path):
    path = tmp_path / "exp.json"
    path.write_text('{"name": "x"}', encoding="utf-16")
    with pytest.raises(ConfigError, match="not UTF-8"):
        ExperimentConfig.load(path)


def test_a_file_with_a_byte_order_mark_loads(tmp_path):
    """Windows editors may save UTF-8 with a byte-order mark; the file is still an experiment."""
    path = tmp_path / "exp.json"
    path.write_text('{"name": "bom", "training": {"epochs": 3}}', encoding="utf-8-sig")
    config = ExperimentConfig.load(path)
    assert (config.name, config.training.epochs) == ("bom", 3)


@pytest.mark.parametrize("section, key, value, message", [
    ("training", "epochs", 10**400, r"training.epochs must be a whole number, 1..1,000,000; got 100000"),
    ("training", "steps_per_epoch", 10**12, "training.steps_per_epoch must be a whole number, 0..1,000,000,000"),
    ("optimizer", "lr", 10**400, r"optimizer.lr must be a number in \[1e-09, 10.0\]; got 1000000"),
])
def test_numbers_too_large_to_be_meant_are_refused_shortly(section, key, value, message):
    """10**400 epochs trained on for ever; as a learning rate it raised OverflowError."""
    data = ExperimentConfig().to_dict()
    data[section][key] = value
    with pytest.raises(ConfigError, match=message) as info:
        ExperimentConfig.from_dict(data)
    assert len(str(info.value)) < 120


@pytest.mark.parametrize("loss, params, message", [
    ("tversky", {"alpha": 0.0, "beta": 0.0}, "alpha and beta cannot both be 0"),
    ("focal_tversky", {"alpha": 0.0, "beta": 0.0}, "alpha and beta cannot both be 0"),
    ("dice_ce", {"lambda_dice": 0.0, "lambda_ce": 0.0}, "lambda_dice and lambda_ce cannot both be 0"),
])
def test_loss_parameters_the_loss_refuses_are_refused_with_the_experiment(loss, params, message):
    """Each value was in range, so the experiment saved; the run failed after its folder was made."""
    data = ExperimentConfig().to_dict()
    data["loss"] = {"name": loss, "params": params}
    with pytest.raises(ConfigError, match=f"loss.params: loss '{loss}': {message}"):
        ExperimentConfig.from_dict(data)
    data["loss"]["params"] = {**params, next(iter(params)): 0.5}
    assert ExperimentConfig.from_dict(data).loss.name == loss


def test_a_data_folder_beside_the_experiment_is_saved_relative_to_it(tmp_path):
    """Opening a project's exp.json ("path": "data") and saving it wrote an absolute path."""
    project = tmp_path / "project"
    (project / "data").mkdir(parents=True)
    (project / "exp.json").write_text(json.dumps({"data": {"path": "data"}}))
    config = ExperimentConfig.load(project / "exp.json")
    assert config.data.path == str(project / "data")
    config.save(project / "exp.json")
    assert json.loads((project / "exp.json").read_text())["data"]["path"] == "data"
    config.save(tmp_path / "elsewhere.json")  # below that file's folder: relative too
    assert json.loads((tmp_path / "elsewhere.json").read_text())["data"]["path"] == "project/data"
    config.data.path = str(tmp_path.parent / "other")
    config.save(project / "exp.json")
    assert json.loads((project / "exp.json").read_text())["data"]["path"] == str(tmp_path.parent / "other")
    shutil.move(project, tmp_path / "moved")  # the project folder moves: its experiment still finds its data
    config.data.path = str(tmp_path / "moved" / "data")
    config.save(tmp_path / "moved" / "exp.json")
    shutil.move(tmp_path / "moved", tmp_path / "again")
    assert ExperimentConfig.load(tmp_path / "again" / "exp.json").data.path == str(tmp_path / "again" / "data")
