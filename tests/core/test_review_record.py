"""The review record as plain data (app.core.review.record) and a case's pixels
(app.core.review.case_data)."""

from __future__ import annotations

import json

import numpy as np
import pytest

from app.core.imageio import ImageReadError
from app.core.review import CASE_STATES, ReviewCase, ReviewError, ReviewRecord, state_label
from app.core.review.case_data import binary_mask, load_case, mask_stats
from app.core.review.record import DEFAULT_REASONS, FORMAT, VERSION, Decision

from .helpers import save


def sample_record() -> ReviewRecord:
    a = ReviewCase("a", "/data/images/a.png", "/data/masks/a.png", state="rejected", reason="Poor boundary",
                   comment="edge of the gland — «missed»", reviewer="Dr Ng", decided_at="2024-05-01T10:00:00+00:00",
                   area=12, objects=2,
                   history=[Decision("accepted", "Dr Ng", "2024-05-01T09:59:00+00:00"),
                            Decision("rejected", "Dr Ng", "2024-05-01T10:00:00+00:00", "Poor boundary", "edge")])
    b = ReviewCase("b", "/data/images/b.png", "predictions/b.png", probability="probabilities/b.png",
                   state="corrected", reviewer="Ann", variant="watershed", corrected="corrections/b.png",
                   state_before_correction="needs_edit", area=7, objects=1,
                   history=[Decision("corrected", "Ann", "2024-05-02T08:00:00+00:00")])
    c = ReviewCase("c", "/data/images/c.png", "/data/masks/c.png")
    return ReviewRecord([a, b, c], source={"kind": "folders", "images": "/data/images", "masks": "/data/masks",
                                           "model": "unet"},
                        watershed={"threshold": 0.4, "min_object_size": 3}, reasons=["Blurry", "Other"],
                        position="b", problems=[{"path": "/data/masks/x.png", "reason": "unreadable"}],
                        created="2024-05-01T09:00:00+00:00")


def test_record_round_trips_through_json_with_history():
    record = sample_record()
    text = record.to_json()
    data = json.loads(text)
    assert data["format"] == FORMAT and data["version"] == VERSION
    assert [c["name"] for c in data["cases"]] == ["a", "b", "c"]
    assert data["cases"][0]["history"][1] == {"state": "rejected", "reviewer": "Dr Ng",
                                              "time": "2024-05-01T10:00:00+00:00", "reason": "Poor boundary",
                                              "comment": "edge"}
    assert "«missed»" in text  # kept readable, not escaped
    back = ReviewRecord.from_json(text)
    assert back == record
    assert back.cases[0].history[0] == Decision("accepted", "Dr Ng", "2024-05-01T09:59:00+00:00")
    assert back.to_json() == text


def test_case_round_trip_and_defaults():
    case = sample_record().cases[1]
    assert ReviewCase.from_dict(case.to_dict()) == case
    fresh = ReviewCase.from_dict({"name": "z", "image": "/i/z.png", "mask": "/m/z.png"})
    assert (fresh.state, fresh.variant, fresh.history, fresh.corrected) == ("unreviewed", "prediction", [], "")


def test_unknown_keys_are_ignored_and_unknown_variant_falls_back():
    data = sample_record().cases[0].to_dict()
    data["from_the_future"] = 1
    data["variant"] = "hologram"
    data["history"][0]["mood"] = "tired"
    case = ReviewCase.from_dict(data)
    assert case.variant == "prediction" and case.history[0].state == "accepted"


def test_a_new_record_has_the_default_reasons_and_a_creation_time():
    record = ReviewRecord([ReviewCase("a", "i", "m")])
    assert record.reasons == list(DEFAULT_REASONS) and record.reasons[0] == "Poor boundary"
    assert record.created[:2] == "20" and record.created.endswith("+00:00")
    older = json.loads(record.to_json())
    del older["reasons"], older["position"], older["problems"]
    back = ReviewRecord.from_json(json.dumps(older))
    assert back.reasons == list(DEFAULT_REASONS) and back.position == "" and back.problems == []


def test_counts_reviewed_and_lookup():
    record = sample_record()
    assert record.counts() == {"unreviewed": 1, "accepted": 0, "rejected": 1, "needs_edit": 0, "corrected": 1}
    assert list(record.counts()) == list(CASE_STATES)
    assert record.reviewed_count == 2
    assert record.case("b").corrected == "corrections/b.png"
    assert record.index("c") == 2 and record.index("nope") == -1
    with pytest.raises(ReviewError, match="no case 'nope'"):
        record.case("nope")
    assert [c.reviewed for c in record.cases] == [True, True, False]
    assert [c.exported for c in record.cases] == [False, True, False]
    record.cases[2].state = "needs_edit"
    assert not record.cases[2].reviewed and not record.cases[2].exported


def test_lookup_follows_changes_to_the_case_list():
    record = sample_record()
    assert record.index("c") == 2
    record.cases.reverse()  # the remembered positions are now wrong and must not be trusted
    assert record.index("c") == 0 and record.case("a") is record.cases[2]
    record.cases.append(ReviewCase("d", "i", "m"))
    assert record.index("d") == 3 and record.case("d").name == "d"
    del record.cases[0]
    assert record.index("c") == -1 and record.index("d") == 2
    assert "_positions" not in record.to_json()


def test_state_labels():
    assert [state_label(s) for s in CASE_STATES] == ["Unreviewed", "Accepted", "Rejected", "Needs edit",
                                                    "Corrected"]
    assert state_label("odd") == "odd"


@pytest.mark.parametrize("text, message", [
    ('{"format": "something-else", "version": 1, "cases": []}', "is not a SegStudio review"),
    ('[1, 2, 3]', "is not a SegStudio review"),
    ('{"version": 1, "cases": []}', "is not a SegStudio review"),
    (json.dumps({"format": FORMAT, "version": VERSION + 1, "cases": []}), "newer SegStudio"),
    ('{"format": "segstudio-review", "version": 1, "cases": [{"name": "a"', "is not valid JSON"),
    ("", "is not valid JSON"),
    (json.dumps({"format": FORMAT, "version": 1, "cases": [{"name": "a", "image": "i", "mask": "m",
                                                            "state": "approved"}]}), "unknown state 'approved'"),
    (json.dumps({"format": FORMAT, "version": 1, "cases": ["a"]}), "is damaged"),
    (json.dumps({"format": FORMAT, "version": "one", "cases": []}), "is damaged"),
    (json.dumps({"format": FORMAT, "version": None, "cases": []}), "is damaged"),
    (json.dumps({"format": FORMAT, "version": 1, "cases": [{"name": "a", "image": "i", "mask": "m",
                                                            "history": [{"state": "accepted"}]}]}), "is damaged"),
    (json.dumps({"format": FORMAT, "version": 1, "cases": [{"image": "i", "mask": "m"}]}), "is damaged"),
    (json.dumps({"format": FORMAT, "version": 1, "cases": [], "reasons": "abc"}),
     r"is damaged \('reasons' must be a list of texts\)"),
    (json.dumps({"format": FORMAT, "version": 1, "cases": [], "reasons": ["Blurry", 3]}), "'reasons' must be a list"),
    (json.dumps({"format": FORMAT, "version": 1, "cases": {"a": {}}}), "'cases' must be a list of objects"),
    (json.dumps({"format": FORMAT, "version": 1, "cases": [], "problems": ["x"]}), "'problems' must be a list"),
    (json.dumps({"format": FORMAT, "version": 1, "cases": [], "watershed": "ab"}), "'watershed' must be an object"),
    (json.dumps({"format": FORMAT, "version": 1, "cases": [], "source": [["a", "b"]]}), "'source' must be an object"),
    # fields of a case, its history, the source and the clean-up settings, each checked when read
    (json.dumps({"format": FORMAT, "version": 1, "cases": [{"name": 5, "image": "i", "mask": "m"}]}),
     r"is damaged \(a case's 'name' must be a text, not 5\)"),
    (json.dumps({"format": FORMAT, "version": 1, "cases": [{"name": "a", "image": None, "mask": "m"}]}),
     "a case's 'image' must be a text"),
    (json.dumps({"format": FORMAT, "version": 1, "cases": [{"name": "a", "image": "i", "mask": "m",
                                                            "comment": 5}]}), "'comment' must be a text"),
    (json.dumps({"format": FORMAT, "version": 1, "cases": [{"name": "a", "image": "i", "mask": "m",
                                                            "corrected": 1}]}), "'corrected' must be a text"),
    (json.dumps({"format": FORMAT, "version": 1, "cases": [{"name": "a", "image": "i", "mask": "m",
                                                            "area": "12"}]}), "'area' must be a whole number"),
    (json.dumps({"format": FORMAT, "version": 1, "cases": [{"name": "a", "image": "i", "mask": "m", "history": [
        {"state": "accepted", "reviewer": "x", "time": "t", "reason": [1]}]}]}), "a decision's 'reason' must be a text"),
    (json.dumps({"format": FORMAT, "version": 1, "cases": [{"name": "a", "image": "i", "mask": "m",
                                                            "history": "x"}]}), "'history' must be a list"),
    (json.dumps({"format": FORMAT, "version": 1, "cases": [], "source": {"kind": 5, "images": 3}}),
     "'source': 'kind' must be a text"),
    (json.dumps({"format": FORMAT, "version": 1, "cases": [], "watershed": {"min_object_size": -5}}),
     "is damaged \\(clean-up settings: .*min_object_size = -5 is outside"),
    # a second case of one name could never be reached (decisions on it landed on the other)
    (json.dumps({"format": FORMAT, "version": 1, "cases": [{"name": "a", "image": "a.png", "mask": "a.png"},
                                                           {"name": "a", "image": "b.png", "mask": "b.png"}]}),
     r"is damaged \(two cases are named 'a'\)"),
    (json.dumps({"format": FORMAT, "version": 1, "cases": [], "problems": [{"file": "x.png"}]}),
     r"is damaged \(a left-out file needs a 'path' and a 'reason' text"),
    (json.dumps({"format": FORMAT, "version": 1, "cases": [], "problems": [{"path": "x.png", "reason": 3}]}),
     "a left-out file needs"),
])
def test_bad_records_raise_review_error_naming_the_file(text, message):
    where = "/reviews/ward 3/review.json"
    with pytest.raises(ReviewError, match=message) as info:
        ReviewRecord.from_json(text, where)
    assert where in str(info.value)


def test_bad_state_names_the_case_and_the_valid_states():
    text = json.dumps({"format": FORMAT, "version": 1,
                       "cases": [{"name": "slice7", "image": "i", "mask": "m", "state": "approved"}]})
    with pytest.raises(ReviewError) as info:
        ReviewRecord.from_json(text, "/r/review.json")
    assert str(info.value).startswith("/r/review.json: ")
    assert "slice7" in str(info.value) and "needs_edit" in str(info.value)


# -- case data --------------------------------------------------------------------------------

def test_binary_mask_of_0_1_and_0_255_masks():
    zero_one = np.array([[0, 1], [1, 0]], np.uint8)
    assert binary_mask(zero_one).tolist() == [[0, 1], [1, 0]]
    assert binary_mask(zero_one * 255).tolist() == [[0, 1], [1, 0]]
    assert binary_mask(zero_one.astype(bool)).tolist() == [[0, 1], [1, 0]]
    assert binary_mask(np.zeros((2, 2), np.uint8)).tolist() == [[0, 0], [0, 0]]
    out = binary_mask(zero_one * 255)
    assert out.dtype == np.uint8


def test_binary_mask_of_probability_maps_thresholds_at_one_half():
    probs = np.array([[0.0, 0.3, 0.49], [0.51, 0.8, 1.0]], np.float32)
    assert binary_mask(probs).tolist() == [[0, 0, 0], [1, 1, 1]]
    gray8 = np.array([[0, 100, 127], [128, 200, 255]], np.uint8)
    assert binary_mask(gray8).tolist() == [[0, 0, 0], [1, 1, 1]]
    gray16 = np.array([[0, 20000, 32767], [32768, 50000, 65535]], np.uint16)
    assert binary_mask(gray16).tolist() == [[0, 0, 0], [1, 1, 1]]


def test_mask_stats_area_and_8_connected_object_count():
    mask = np.array([[1, 1, 0, 0, 0, 1],
                     [1, 0, 0, 0, 0, 0],
                     [0, 1, 0, 1, 1, 0],   # (1, 2) touches (0, 1) diagonally: same object
                     [0, 0, 0, 0, 0, 0],
                     [1, 0, 0, 0, 0, 1]], np.uint8)
    assert mask_stats(mask) == (9, 5)
    assert mask_stats(mask * 255) == (9, 5)
    assert mask_stats(mask.astype(bool)) == (9, 5)
    assert mask_stats(np.zeros((3, 3), np.uint8)) == (0, 0)
    assert mask_stats(np.ones((3, 3), np.uint8)) == (9, 1)


def test_load_case_reads_relative_and_absolute_paths(tmp_path):
    image = np.arange(12 * 16, dtype=np.uint8).reshape(12, 16)
    mask = np.zeros((12, 16), np.uint8)
    mask[2:5, 3:9] = 255
    prob = np.zeros((12, 16), np.uint8)
    prob[2:6, 3:10] = 200
    corrected = np.zeros((12, 16), np.uint8)
    corrected[0, 0] = 255
    save(tmp_path / "src" / "a.png", image)
    save(tmp_path / "review" / "predictions" / "a.png", mask)
    save(tmp_path / "review" / "probabilities" / "a.png", prob)
    save(tmp_path / "review" / "corrections" / "a.png", corrected)
    case = ReviewCase("a", str(tmp_path / "src" / "a.png"), "predictions/a.png", "probabilities/a.png",
                      corrected="corrections/a.png")
    data = load_case(tmp_path / "review", case)
    assert np.array_equal(data.image, image)
    assert data.prediction.tolist() == (mask > 0).astype(np.uint8).tolist()
    assert np.array_equal(data.source_gray, prob)  # the watershed cleans the probabilities
    assert data.corrected.tolist() == (corrected > 0).astype(np.uint8).tolist()
    # without a readable probability map, the clean-up starts from the mask itself
    case.probability = "probabilities/missing.png"
    assert np.array_equal(load_case(tmp_path / "review", case).source_gray, mask)


def test_load_case_refuses_a_mask_of_another_size_naming_it(tmp_path):
    save(tmp_path / "a.png", np.zeros((12, 16), np.uint8))
    save(tmp_path / "m.png", np.zeros((12, 15), np.uint8))
    with pytest.raises(ImageReadError) as info:
        load_case(tmp_path, ReviewCase("a", str(tmp_path / "a.png"), "m.png"))
    assert info.value.path == tmp_path / "m.png" and "15×12" in str(info.value) and "16×12" in str(info.value)


def test_a_source_with_the_settings_predict_recorded_is_read():
    """predict's settings ride along in the source (an object among the texts)."""
    text = json.dumps({"format": FORMAT, "version": 1, "cases": [], "source": {
        "kind": "folders", "images": "i", "masks": "m", "postprocess": {"threshold": 0.4}}})
    assert ReviewRecord.from_json(text, "r.json").source["postprocess"] == {"threshold": 0.4}
