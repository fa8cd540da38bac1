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


FILES = ("tokenizer.json", "tokenizer_config.json", "generation_config.json", "chat_template.jinja")


class Tokenizer:
    """
    tokenizer.json through the tokenizers package, with EOS ids and the chat template. Built from the
    files' texts (`files`), so that a swarr checkpoint can carry its tokenizer whole and load from
    any directory; Tokenizer(path) reads them from a Hugging Face directory.
    """

    def __init__(self, path=None, files=None, source=None):
        if files is None:
            path = Path(path)
            if not (path / "tokenizer.json").exists():
                raise FileNotFoundError(f"{path / 'tokenizer.json'} not found")
            files = {name: (path / name).read_text() for name in FILES if (path / name).exists()}
        self.files, source = files, source or str(path)
        config = parse_json(files.get("tokenizer_config.json", "{}"), f"{source}: tokenizer_config.json")
        generation = parse_json(files.get("generation_config.json", "{}"), f"{source}: generation_config.json")
        try:
            from tokenizers import Tokenizer as HFTokenizer

            self.tok = HFTokenizer.from_str(files["tokenizer.json"])
        except Exception as e:  # the tokenizers package raises its own exception types
            raise ValueError(f"{source}: tokenizer.json cannot be read ({first_line(e)})") from None
        self.chat_template = config.get("chat_template") or files.get("chat_template.jinja")
        self.bos_token = token_text(config.get("bos_token"))
        self.eos_token = token_text(config.get("eos_token"))
        listed = generation.get("eos_token_id", [])
        listed = listed if isinstance(listed, list) else [listed]
        own = self.tok.token_to_id(self.eos_token) if isinstance(self.eos_token, str) else None
        if own is None and not listed:
            raise ValueError(f"{source}: no EOS token in tokenizer_config.json or generation_config.json")
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


def parse_json(text, source):
    try:
        value = json.loads(text)
    except json.JSONDecodeError as e:
        raise ValueError(f"{source}: malformed JSON ({e.msg}, line {e.lineno} column {e.colno})") from None
    if not isinstance(value, dict):
        raise ValueError(f"{source}: expected a JSON object, got {type(value).__name__}")
    return value


def first_line(e):
    """An exception's first line, never empty: messages name the file and this."""
    return (str(e).strip().splitlines() or [type(e).__name__])[0][:300]


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
