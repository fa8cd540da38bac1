"""
The tokenizer and the prompt format every stage shares: a Hugging Face tokenizer.json through the
tokenizers package, the end-of-sequence ids, and the checkpoint's own chat template.

    tokenizer = Tokenizer("path/to/Qwen2.5-0.5B-Instruct")
    ids = tokenizer.encode(tokenizer.render_prompt("What is 2 + 3?"))

A prompt is rendered exactly as the model will see it at inference, in SFT, RL and evaluation
alike: through the chat template when the checkpoint ships one (tokenizer_config.json's
chat_template, or chat_template.jinja), else plain (the prompt, then the response on a new line).
"""
import json
from pathlib import Path


class Tokenizer:
    """tokenizer.json through the tokenizers package, with EOS ids and the chat template."""

    def __init__(self, path):
        from tokenizers import Tokenizer as HFTokenizer

        path = self.path = Path(path)
        if not (path / "tokenizer.json").exists():
            raise FileNotFoundError(f"{path / 'tokenizer.json'} not found")
        self.tok = HFTokenizer.from_file(str(path / "tokenizer.json"))
        config = read_optional_json(path / "tokenizer_config.json")
        generation = read_optional_json(path / "generation_config.json")
        self.chat_template = config.get("chat_template")
        if self.chat_template is None and (path / "chat_template.jinja").exists():
            self.chat_template = (path / "chat_template.jinja").read_text()
        self.bos_token = token_text(config.get("bos_token"))
        self.eos_token = token_text(config.get("eos_token"))
        listed = generation.get("eos_token_id", [])
        listed = listed if isinstance(listed, list) else [listed]
        own = self.tok.token_to_id(self.eos_token) if self.eos_token is not None else None
        if own is None and not listed:
            raise ValueError(f"{path}: no EOS token in tokenizer_config.json or generation_config.json")
        # the end-of-turn token SFT teaches (and pads with): the tokenizer's own eos_token, the one the
        # chat template closes a turn with (Qwen2.5-Instruct: <|im_end|>, not <|endoftext|>), else the
        # first id generation_config lists. Generation stops on any of eos_ids.
        self.eos_id = own if own is not None else listed[0]
        self.eos_ids = sorted({*listed, self.eos_id})
        self.vocab_size = self.tok.get_vocab_size(with_added_tokens=True)
        self.template = compile_chat_template(self.chat_template) if self.chat_template is not None else None

    def encode(self, text):
        return self.tok.encode(text, add_special_tokens=False).ids

    def decode(self, ids):
        return self.tok.decode(ids, skip_special_tokens=True)

    def render_prompt(self, prompt):
        """The text the model sees before its response: the chat template if it has one, else plain."""
        if self.template is None:  # plain: the prompt, then the response on a new line
            return prompt.rstrip("\n") + "\n"
        messages = [{"role": "user", "content": prompt}]
        return self.template.render(messages=messages, add_generation_prompt=True, bos_token=self.bos_token or "",
                                    eos_token=self.eos_token or "")


def read_optional_json(file):
    return json.loads(file.read_text()) if file.exists() else {}


def token_text(token):
    return token.get("content") if isinstance(token, dict) else token


def compile_chat_template(template):
    """The template compiled once per tokenizer: compiling costs ~40 ms, rendering ~0.3 ms."""
    # jinja2 in a sandbox, as transformers does: templates ship with checkpoints and are not ours
    from jinja2.sandbox import ImmutableSandboxedEnvironment

    def raise_exception(message):
        raise ValueError(f"chat template: {message}")

    env = ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True)
    env.globals["raise_exception"] = raise_exception
    return env.from_string(template)


def check_tokenizer(tokenizer, model):
    if tokenizer.vocab_size > model.config.vocab_size:
        raise ValueError(
            f"the tokenizer has {tokenizer.vocab_size} tokens but the model's embedding only {model.config.vocab_size}: "
            "they do not belong together"
        )
