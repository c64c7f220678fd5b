"""``segstudio review-reasons`` and ``segstudio review-cleanup``: a review's rejection reasons and
its watershed clean-up settings, as the Review panel edits them."""

from __future__ import annotations

import json
from pathlib import Path


def register(subparsers) -> None:
    r = subparsers.add_parser("review-reasons", help="list a review's rejection reasons, or add and remove some")
    r.add_argument("review_dir", type=Path, metavar="REVIEW_DIR")
    r.add_argument("--add", action="append", default=[], metavar="REASON", help="add a reason (repeatable)")
    r.add_argument("--remove", action="append", default=[], metavar="REASON",
                   help="remove a reason (repeatable); cases rejected with it keep it")
    r.set_defaults(func=cmd_review_reasons)

    c = subparsers.add_parser("review-cleanup", help="show or change the watershed clean-up settings of a review")
    c.add_argument("review_dir", type=Path, metavar="REVIEW_DIR")
    c.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", dest="changes",
                   help="change one setting (repeatable), e.g. --set foreground_fraction=0.3")
    c.add_argument("--defaults", action="store_true", help="go back to the default settings (then apply any --set)")
    c.set_defaults(func=cmd_review_cleanup)


def cleanup_changes(changes: list[str]) -> dict:
    """``["KEY=VALUE", ...]`` as a dict of clean-up settings; values are read as JSON (numbers,
    true/false). Keys and values are checked where they are used (WatershedParams)."""
    from . import CommandError

    values = {}
    for change in changes:
        key, sep, text = change.partition("=")
        if not sep or not key.strip():
            raise CommandError(f"{change!r}: write a clean-up setting as KEY=VALUE, e.g. foreground_fraction=0.3")
        try:
            values[key.strip()] = json.loads(text)
        except json.JSONDecodeError:
            raise CommandError(f"{change!r}: {text!r} is not a number, true or false") from None
    return values


def describe(params) -> str:
    return "\n".join(f"{key} = {json.dumps(value)}" for key, value in params.to_dict().items())


def cmd_review_reasons(args) -> int:
    from app.core.review import ReviewStore

    from . import CommandError

    changing = bool(args.add or args.remove)
    store = ReviewStore.open(args.review_dir, read_only=not changing)
    try:
        reasons = list(store.record.reasons)
        args.remove = [reason.strip() for reason in args.remove]
        unknown = [reason for reason in args.remove if reason not in reasons]
        if unknown:
            raise CommandError(f"{', '.join(repr(r) for r in unknown)} is not among this review's reasons: "
                               f"{', '.join(reasons)}")
        if changing:
            kept = [reason for reason in reasons if reason not in args.remove]
            store.set_reasons(kept + [reason for reason in args.add if reason.strip() not in kept])
        used: dict[str, int] = {}
        for case in store.cases:
            if case.state == "rejected" and case.reason:
                used[case.reason] = used.get(case.reason, 0) + 1
        for number, reason in enumerate(store.record.reasons, start=1):
            cases = used.get(reason, 0)
            print(f"{number}. {reason}" + (f"  ({cases} case{'s' if cases != 1 else ''})" if cases else ""))
    finally:
        store.close()
    return 0


def cmd_review_cleanup(args) -> int:
    from app.core.postprocess import WatershedParams
    from app.core.review import ReviewStore

    changing = bool(args.changes or args.defaults)
    store = ReviewStore.open(args.review_dir, read_only=not changing)
    try:
        if changing:
            base = {} if args.defaults else store.watershed_params.to_dict()
            store.set_watershed(WatershedParams.from_dict({**base, **cleanup_changes(args.changes)}))
        print(describe(store.watershed_params))
    finally:
        store.close()
    return 0
