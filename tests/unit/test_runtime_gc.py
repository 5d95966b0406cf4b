"""Worker children space out garbage collection (tasks.runtime.tune_gc, Settings.gc_threshold)."""

from __future__ import annotations

import gc
from collections.abc import Iterator

import pytest

from tasks.runtime import tune_gc
from tasks.settings import Settings


@pytest.fixture
def restore_gc() -> Iterator[None]:
    before = gc.get_threshold()
    yield
    gc.set_threshold(*before)
    gc.unfreeze()


def test_threshold_applied_and_startup_objects_frozen(restore_gc: None) -> None:
    gc.unfreeze()
    tune_gc(Settings(gc_threshold=12_345, _env_file=None))
    assert gc.get_threshold()[0] == 12_345
    assert gc.get_freeze_count() > 0


def test_zero_keeps_the_interpreter_default(restore_gc: None) -> None:
    gc.unfreeze()
    before = gc.get_threshold()
    tune_gc(Settings(gc_threshold=0, _env_file=None))
    assert gc.get_threshold() == before
    assert gc.get_freeze_count() == 0


def test_setting_read_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("IMN_GC_THRESHOLD", "777")
    assert Settings(_env_file=None).gc_threshold == 777
