"""Uploads at once per account (im_api.upload_slots), counted across processes by real
POSIX record locks: each test holds slots in a second process of its own."""

from __future__ import annotations

import multiprocessing
import os

from im_api.upload_slots import UploadSlots

ACCOUNT = 42


def _hold(path, ready, release, crash: bool) -> None:
    """In another process: take a slot of ACCOUNT, say so, keep it until told (or die)."""
    slot = UploadSlots(path, 1).take(ACCOUNT)
    assert slot is not None
    ready.set()
    release.wait(30)
    if crash:
        os._exit(1)  # no release: the kernel drops the process's locks
    slot.release()


def _other_process(path, crash: bool = False):
    context = multiprocessing.get_context("spawn")
    ready, release = context.Event(), context.Event()
    process = context.Process(target=_hold, args=(path, ready, release, crash))
    process.start()
    assert ready.wait(30), "the other process did not take its slot"
    return process, release


def test_a_slot_another_process_holds_is_not_free_here(tmp_path):
    path = tmp_path / "upload-slots"
    process, release = _other_process(path)
    try:
        assert UploadSlots(path, 1).take(ACCOUNT) is None
        assert UploadSlots(path, 1).take(ACCOUNT + 1) is not None  # another account
    finally:
        release.set()
        process.join(30)
    assert UploadSlots(path, 1).take(ACCOUNT) is not None  # released there, free here


def test_a_process_that_dies_frees_its_slots(tmp_path):
    path = tmp_path / "upload-slots"
    process, release = _other_process(path, crash=True)
    assert UploadSlots(path, 1).take(ACCOUNT) is None
    release.set()
    process.join(30)
    assert process.exitcode == 1
    assert UploadSlots(path, 1).take(ACCOUNT) is not None


def test_one_process_counts_its_own_slots(tmp_path):
    """POSIX locks do not conflict within a process: the process's own count does."""
    slots = UploadSlots(tmp_path / "upload-slots", 2)
    first, second = slots.take(ACCOUNT), slots.take(ACCOUNT)
    assert first is not None and second is not None
    assert slots.take(ACCOUNT) is None
    first.release()
    first.release()  # twice is once
    assert slots.take(ACCOUNT) is not None
    assert slots.take(ACCOUNT) is None
