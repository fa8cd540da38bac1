"""tokenizer.py: EOS ids from both config files, plain and chat-template prompts, and a tokenizer that does not fit."""
import pytest

from test_generate import VOCAB, tiny_model, write_tokenizer
from tokenizer import Tokenizer, check_tokenizer


def test_tokenizer_eos_and_prompt_formats(tmp_path):
    write_tokenizer(tmp_path / "plain")
    tok = Tokenizer(tmp_path / "plain")
    assert tok.eos_ids == [3, VOCAB - 1]  # from generation_config.json and from tokenizer_config.json
    assert tok.decode(tok.encode("A+B")) == "A+B"
    assert tok.render_prompt("Q:1+2") == "Q:1+2\n"
    template = "{% for m in messages %}<{{ m['role'] }}>{{ m['content'] }}{% endfor %}{% if add_generation_prompt %}<assistant>{% endif %}"
    write_tokenizer(tmp_path / "chat", chat_template=template)
    assert Tokenizer(tmp_path / "chat").render_prompt("hi") == "<user>hi<assistant>"


def test_tokenizer_that_does_not_fit_the_model(tmp_path):
    write_tokenizer(tmp_path, vocab_size=VOCAB + 10)
    with pytest.raises(ValueError, match="the tokenizer has 71 tokens but the model's embedding only 61"):
        check_tokenizer(Tokenizer(tmp_path), tiny_model("full"))
