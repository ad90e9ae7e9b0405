"""lockstep.hf.LockstepCallback is a transformers TrainerCallback where transformers is
installed (the project's .venv has it), and takes the dataset size from the dataloader."""
from __future__ import annotations

import pytest

transformers = pytest.importorskip("transformers")

from lockstep.hf import LockstepCallback  # noqa: E402


def test_it_is_a_trainer_callback() -> None:
    assert isinstance(LockstepCallback(), transformers.TrainerCallback)


def test_the_dataset_size_comes_from_the_dataloader() -> None:
    class Loader:
        dataset = list(range(48))
    assert LockstepCallback()._size_of(Loader()) == 48
    assert LockstepCallback(dataset_size=7)._size_of(Loader()) == 7
    assert LockstepCallback()._size_of(object()) is None
