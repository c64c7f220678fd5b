"""Mask correction operations (app.core.review.edit): brush, eraser, fill hole, remove object,
undo and redo. Masks are uint8 0/1; coordinates are (x, y)."""

from __future__ import annotations

import numpy as np
import pytest

from app.core.review.edit import EditHistory, fill_hole, paint_stroke, remove_object


def grid(text: str) -> np.ndarray:
    """A 0/1 mask from rows of '.' (0) and '#' (1)."""
    rows = [row.strip() for row in text.strip().splitlines()]
    return np.array([[1 if c == "#" else 0 for c in row] for row in rows], np.uint8)


# -- brush and eraser ------------------------------------------------------------------------

def test_radius_0_horizontal_stroke_paints_exactly_the_line():
    mask = np.zeros((5, 7), np.uint8)
    paint_stroke(mask, [(1, 1), (4, 1)], 0, 1)
    assert mask.tolist() == grid("""
        .......
        .####..
        .......
        .......
        .......""").tolist()


def test_radius_0_polyline_is_8_connected_and_one_pixel_wide():
    mask = np.zeros((6, 6), np.uint8)
    paint_stroke(mask, [(0, 0), (3, 3), (3, 5)], 0, 1)
    assert mask.tolist() == grid("""
        #.....
        .#....
        ..#...
        ...#..
        ...#..
        ...#..""").tolist()


def test_radius_0_single_click_paints_one_pixel_and_rounds_coordinates():
    mask = np.zeros((4, 4), np.uint8)
    paint_stroke(mask, [(2.4, 0.6)], 0, 1)
    assert np.argwhere(mask).tolist() == [[1, 2]]


def test_radius_1_click_paints_a_plus_shaped_disc():
    mask = np.zeros((5, 5), np.uint8)
    paint_stroke(mask, [(2, 2)], 1, 1)
    assert mask.tolist() == grid("""
        .....
        ..#..
        .###.
        ..#..
        .....""").tolist()


def test_radius_1_stroke_is_three_pixels_wide_with_round_ends():
    # every pixel whose centre is within 1 of the segment (2,3)-(6,3): rows 2-4 over x 2..6,
    # and the round ends (1,3) and (7,3); nothing a pixel further out
    mask = np.zeros((7, 9), np.uint8)
    paint_stroke(mask, [(2, 3), (6, 3)], 1, 1)
    assert mask.tolist() == grid("""
        .........
        .........
        ..#####..
        .#######.
        ..#####..
        .........
        .........""").tolist()


def test_radius_1_vertical_stroke():
    mask = np.zeros((7, 5), np.uint8)
    paint_stroke(mask, [(2, 1), (2, 4)], 1, 1)
    assert mask.tolist() == grid("""
        ..#..
        .###.
        .###.
        .###.
        .###.
        ..#..
        .....""").tolist()


@pytest.mark.parametrize("radius", [1, 2, 3])
def test_stroke_covers_the_brush_and_stays_within_a_pixel_of_it(radius):
    """Along any direction: every pixel within ``radius`` of the path is painted, and nothing a
    whole pixel beyond the brush (a stroke no wider than the brush outline)."""
    rng = np.random.default_rng(radius)
    yy, xx = np.mgrid[:40, :40].astype(float)
    for _ in range(20):
        p0, p1 = (tuple(int(v) for v in rng.integers(8, 32, 2)) for _ in range(2))
        mask = np.zeros((40, 40), np.uint8)
        paint_stroke(mask, [p0, p1], radius, 1)
        a, d = np.array(p0, float), np.subtract(p1, p0).astype(float)
        length = (d ** 2).sum()
        t = np.clip(((xx - a[0]) * d[0] + (yy - a[1]) * d[1]) / length, 0, 1) if length else 0 * xx
        dist = np.hypot(xx - a[0] - t * d[0], yy - a[1] - t * d[1])
        assert mask[dist <= radius].all(), (p0, p1)
        assert dist[mask == 1].max() < radius + 1, (p0, p1)


def test_eraser_clears_exactly_the_brush_and_leaves_the_rest():
    mask = np.ones((5, 7), np.uint8)
    paint_stroke(mask, [(1, 2), (5, 2)], 1, 0)
    assert mask.tolist() == grid("""
        #######
        #.....#
        .......
        #.....#
        #######""").tolist()


def test_paint_value_is_0_or_1_and_empty_stroke_changes_nothing():
    mask = np.zeros((3, 3), np.uint8)
    paint_stroke(mask, [], 2, 1)
    assert not mask.any()
    paint_stroke(mask, [(1, 1)], 0, 255)
    assert mask.tolist() == [[0, 0, 0], [0, 1, 0], [0, 0, 0]]


def test_stroke_partly_outside_the_mask_is_clipped():
    mask = np.zeros((3, 4), np.uint8)
    paint_stroke(mask, [(-3, 1), (1, 1)], 0, 1)
    assert mask.tolist() == [[0, 0, 0, 0], [1, 1, 0, 0], [0, 0, 0, 0]]


# -- fill hole ---------------------------------------------------------------------------------

RING = """
    .......
    .#####.
    .#...#.
    .#...#.
    .#...#.
    .#####.
    ......."""


def test_fill_hole_fills_an_enclosed_hole():
    mask = grid(RING)
    assert fill_hole(mask, 3, 3) is True
    expected = grid(RING)
    expected[2:5, 2:5] = 1
    assert mask.tolist() == expected.tolist()


def test_fill_hole_leaves_background_open_to_the_border():
    mask = grid(RING)
    assert fill_hole(mask, 0, 0) is False
    assert mask.tolist() == grid(RING).tolist()
    open_c = grid("""
        .......
        .#####.
        .#.....
        .#...#.
        .#####.
        .......""")
    before = open_c.copy()
    assert fill_hole(open_c, 3, 2) is False  # the gap at (5, 2) lets it reach the border
    assert open_c.tolist() == before.tolist()


def test_hole_closed_only_diagonally_is_still_a_hole():
    # 8-connected objects enclose 4-connected background
    mask = grid("""
        .....
        ..#..
        .#.#.
        ..#..
        .....""")
    assert fill_hole(mask, 2, 2) is True
    assert mask[2, 2] == 1 and mask.sum() == 5


def test_clicking_an_object_fills_all_its_holes_and_no_other_objects():
    mask = grid("""
        ..........
        .#####....
        .#.#.#.###
        .#####.#.#
        .......###
        ..........""")
    before = mask.copy()
    assert fill_hole(mask, 1, 1) is True
    expected = before.copy()
    expected[2, 2] = expected[2, 4] = 1  # both holes of the clicked object
    assert mask.tolist() == expected.tolist()  # the other object's hole at (8, 3) stays
    assert fill_hole(mask, 1, 1) is False  # nothing left to fill
    assert mask.tolist() == expected.tolist()


def test_clicking_an_object_without_holes_changes_nothing():
    mask = grid("""
        .....
        .##..
        .##..
        .....""")
    assert fill_hole(mask, 1, 1) is False
    assert mask.sum() == 4


@pytest.mark.parametrize("x, y", [(-1, 0), (0, -1), (7, 0), (0, 7), (100, 100)])
def test_clicks_outside_the_mask_do_nothing(x, y):
    mask = grid(RING)
    assert fill_hole(mask, x, y) is False
    assert remove_object(mask, x, y) is False
    assert mask.tolist() == grid(RING).tolist()


# -- remove object ------------------------------------------------------------------------------

def test_remove_object_removes_only_the_8_connected_component_clicked():
    mask = grid("""
        ##....##
        ##....##
        ..#.....
        ...#..#.
        ......#.""")
    assert remove_object(mask, 0, 0) is True
    assert mask.tolist() == grid("""
        ......##
        ......##
        ........
        ......#.
        ......#.""").tolist()  # the diagonal tail went with it; the others stay
    assert remove_object(mask, 6, 4) is True
    assert mask.tolist() == grid("""
        ......##
        ......##
        ........
        ........
        ........""").tolist()


def test_remove_object_on_background_does_nothing():
    mask = grid(RING)
    assert remove_object(mask, 3, 3) is False
    assert mask.tolist() == grid(RING).tolist()


# -- undo and redo --------------------------------------------------------------------------------

def masks(n: int) -> list[np.ndarray]:
    return [np.full((2, 2), i, np.uint8) for i in range(n)]


def test_undo_and_redo_walk_the_snapshots_in_order():
    history = EditHistory()
    states = masks(4)
    assert not history.can_undo and not history.can_redo
    assert history.undo(states[0]) is None and history.redo(states[0]) is None
    for before in states[:3]:
        history.record(before)
    current = states[3]
    undone = []
    while history.can_undo:
        current = history.undo(current)
        undone.append(int(current[0, 0]))
    assert undone == [2, 1, 0]
    assert history.undo(current) is None
    redone = []
    while history.can_redo:
        current = history.redo(current)
        redone.append(int(current[0, 0]))
    assert redone == [1, 2, 3]
    assert history.can_undo and not history.can_redo


def test_record_keeps_a_copy():
    history = EditHistory()
    mask = np.zeros((2, 2), np.uint8)
    history.record(mask)
    mask[0, 0] = 1
    assert history.undo(mask).tolist() == [[0, 0], [0, 0]]


def test_a_new_edit_clears_redo():
    history = EditHistory()
    a, b, c = masks(3)
    history.record(a)
    assert int(history.undo(b)[0, 0]) == 0
    assert history.can_redo
    history.record(a)
    assert not history.can_redo and history.redo(c) is None
    assert int(history.undo(c)[0, 0]) == 0


def test_history_limit_keeps_only_the_latest_snapshots():
    history = EditHistory(limit=3)
    states = masks(6)
    for before in states[:5]:
        history.record(before)
    current, undone = states[5], []
    while history.can_undo:
        current = history.undo(current)
        undone.append(int(current[0, 0]))
    assert undone == [4, 3, 2]


def test_clear_forgets_everything():
    history = EditHistory()
    a, b = masks(2)
    history.record(a)
    history.record(b)
    history.undo(b)
    assert history.can_undo and history.can_redo  # both kinds of step are there to forget
    history.clear()
    assert not history.can_undo and not history.can_redo


def test_discard_last_forgets_the_latest_snapshot():
    history = EditHistory()
    a, b, c = masks(3)
    assert history.discard_last() is None
    history.record(a)
    history.record(b)  # an edit that turns out to change nothing
    assert int(history.discard_last()[0, 0]) == 1
    assert int(history.undo(c)[0, 0]) == 0 and not history.can_undo
    assert int(history.redo(a)[0, 0]) == 2
