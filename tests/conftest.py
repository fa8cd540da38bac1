import os
import sys
from pathlib import Path

import pytest
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
if not torch.cuda.is_available():  # before generate.py decorates its triton kernel: the CPU runs it in triton's interpreter
    os.environ.setdefault("TRITON_INTERPRET", "1")

from data.synthetic import write_char_tokenizer  # noqa: E402
from checkpoint import export_hf  # noqa: E402
from model import Config, Model  # noqa: E402


@pytest.fixture
def char_model_dir(tmp_path):
    """A tiny random llama with the synthetic task's character tokenizer, as a Hugging Face directory."""
    torch.manual_seed(0)
    config = Config(model_type="llama", vocab_size=32, hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                    num_attention_heads=4, num_key_value_heads=2, head_dim=8, max_position_embeddings=512, tie_word_embeddings=True)
    path = tmp_path / "base"
    export_hf(Model(config), path)
    write_char_tokenizer(path)
    return path
