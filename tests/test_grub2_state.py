"""The evaluator's copy-on-write state (boot/grub2/state.py): an Overlay reads through a
frozen base and keeps its own changes, so contexts made from one snapshot never see each
other's writes; its length is what max_variables counts."""

from __future__ import annotations

import random

import pytest

from guestboot.boot.grub2.interp import Context, Interp, Shared
from guestboot.boot.grub2.state import Overlay
from guestboot.devices import DeviceMap
from guestboot.errors import LimitExceeded
from guestboot.limits import LIMITS


def test_overlay_matches_a_dict_under_random_operations():
    rng = random.Random(5)
    base = {f"k{i}": str(i) for i in range(20)}
    overlay, model = Overlay(dict(base)), dict(base)
    for _ in range(2000):
        key = f"k{rng.randrange(30)}"
        op = rng.random()
        if op < 0.4:
            overlay[key] = model[key] = str(rng.random())
        elif op < 0.7:
            assert overlay.pop(key) == model.pop(key, None)
        elif op < 0.8:
            snapshot = overlay.frozen()
            assert dict(snapshot) == model
            overlay = Overlay(snapshot)
        assert len(overlay) == len(model)
        assert (key in overlay) == (key in model) and overlay.get(key) == model.get(key)
    assert dict(overlay.items()) == model and sorted(overlay) == sorted(model)


def test_contexts_from_one_snapshot_do_not_see_each_other():
    shared = Shared(DeviceMap(), [])
    top = Interp(shared, Context())
    top.run_text("a=1\nexport a\nb=2\n", config_file=True)
    variables, exported = top.ctx.snapshot(shared)
    one, two = Interp(shared, Context(variables, exported)), Interp(shared, Context(variables, exported))
    one.run_text("a=changed\nunset b\nc=new\n", config_file=True)
    assert (two.get("a"), two.get("b"), two.get("c")) == ("1", "2", None)
    assert (one.get("a"), one.get("b"), one.get("c")) == ("changed", None, "new")
    assert top.get("a") == "1" and "a" in two.ctx.exported


def test_variable_bound_counts_through_the_overlay():
    shared = Shared(DeviceMap(), [])
    base = {f"v{i}": "x" for i in range(LIMITS.max_variables - 1)}
    it = Interp(shared, Context(base))
    it.set("v0", "rewritten")  # not a new variable
    it.set("last", "y")
    with pytest.raises(LimitExceeded, match="GRUB variables"):
        it.set("one_more", "z")
