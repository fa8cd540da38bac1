import json
import sys
from pathlib import Path

import pytest
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from data.synthetic import ALPHABET  # noqa: E402
from model import Config, Model  # noqa: E402


def write_char_tokenizer(path):
    """The shipped base model's tokenizer: <eos> = 0, then one token per character of the synthetic task."""
    from tokenizers import Tokenizer
    from tokenizers.decoders import Fuse
    from tokenizers.models import WordLevel
    from tokenizers.pre_tokenizers import Split

    tok = Tokenizer(WordLevel({"<eos>": 0, **{c: i + 1 for i, c in enumerate(ALPHABET)}}, unk_token="<eos>"))
    tok.pre_tokenizer = Split("", "isolated")
    tok.decoder = Fuse()
    tok.add_special_tokens(["<eos>"])
    path.mkdir(parents=True, exist_ok=True)
    tok.save(str(path / "tokenizer.json"))
    (path / "tokenizer_config.json").write_text(json.dumps({"eos_token": "<eos>"}))


@pytest.fixture
def char_model_dir(tmp_path):
    """A tiny random llama with the synthetic task's character tokenizer, as a Hugging Face directory."""
    torch.manual_seed(0)
    config = Config(model_type="llama", vocab_size=32, hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                    num_attention_heads=4, num_key_value_heads=2, head_dim=8, max_position_embeddings=512, tie_word_embeddings=True)
    path = tmp_path / "base"
    Model(config).save_pretrained(path)
    write_char_tokenizer(path)
    return path
