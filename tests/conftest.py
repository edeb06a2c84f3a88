from pathlib import Path

import pytest
import torch

torch.set_num_threads(2)


@pytest.fixture
def repo_root() -> Path:
    return Path(__file__).resolve().parents[1]
