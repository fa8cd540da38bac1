"""
The README's real-checkpoint path end to end, as a Qwen2.5-Instruct user runs it, on a tiny
Qwen2-architecture Hugging Face directory built here: a byte-level BPE tokenizer trained on
GSM8K-format text, Qwen's ChatML template with <|im_end|> as eos_token, and a generation_config
listing both <|im_end|> and <|endoftext|>. convert -> sft.py -> rl.py -> evaluate.py -> export.
"""
import json
import random

import pytest
import torch

import evaluate
import rl
import sft
from checkpoint import load_model
from data import convert, read_jsonl
from tokenizer import Tokenizer

transformers = pytest.importorskip("transformers")

CHATML = ("{%- if messages[0]['role'] != 'system' %}{{- '<|im_start|>system\\nYou are a helpful assistant.<|im_end|>\\n' }}"
          "{%- endif %}{%- for message in messages %}{{- '<|im_start|>' + message['role'] + '\\n' + message['content']"
          " + '<|im_end|>' + '\\n' }}{%- endfor %}{%- if add_generation_prompt %}{{- '<|im_start|>assistant\\n' }}{%- endif %}")


def gsm8k_rows(n, seed):
    rng, rows = random.Random(seed), []
    for _ in range(n):
        a, b = rng.randint(2, 99), rng.randint(2, 99)
        rows.append({"question": f"Tom has {a} apples and buys {b} more. How many apples does he have now?",
                     "answer": f"He has {a} + {b} = <<{a}+{b}={a + b}>>{a + b} apples.\n#### {a + b}"})
    return rows


@pytest.fixture
def qwen_dir(tmp_path):
    from tokenizers import Tokenizer as HFTokenizer, decoders, models, pre_tokenizers, trainers

    text = [r["question"] + "\n" + r["answer"] for r in gsm8k_rows(200, 1)]
    tok = HFTokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=400, special_tokens=["<|endoftext|>", "<|im_start|>", "<|im_end|>"],
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    tok.train_from_iterator(text, trainer)
    path = tmp_path / "qwen"
    torch.manual_seed(0)
    config = transformers.Qwen2Config(vocab_size=tok.get_vocab_size(), hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                                      num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=1024,
                                      tie_word_embeddings=True)
    transformers.Qwen2ForCausalLM(config).save_pretrained(path)  # first: it writes a generation_config.json of its own
    tok.save(str(path / "tokenizer.json"))
    (path / "tokenizer_config.json").write_text(json.dumps({"eos_token": "<|im_end|>", "pad_token": "<|endoftext|>",
                                                             "chat_template": CHATML}))
    # Qwen2.5-Instruct lists <|im_end|> (151645) first, then <|endoftext|> (151643): sorted, the smaller comes first
    (path / "generation_config.json").write_text(json.dumps({"eos_token_id": [2, 0]}))
    return path


def test_the_readme_path_on_a_qwen_style_checkpoint(qwen_dir, tmp_path):
    raw = tmp_path / "raw"
    raw.mkdir()
    for name, rows in (("train", gsm8k_rows(60, 2)), ("test", gsm8k_rows(6, 3))):
        (raw / f"{name}.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    splits = tmp_path / "gsm8k"

    # 1. the splits a run needs, from one command, disjoint by construction
    assert convert.main(["gsm8k", str(raw / "train.jsonl"), "--split-to", str(splits), "--test-file", str(raw / "test.jsonl"),
                         "--val", "4", "--rl", "8", "--seed", "0"]) == 0
    parts = {name: read_jsonl(splits / f"{name}.jsonl", need=("prompt", "answer")) for name in ("sft", "val", "rl", "test")}
    assert [len(parts[n]) for n in ("sft", "val", "rl", "test")] == [48, 4, 8, 6]
    prompts = [{r["prompt"] for r in parts[n]} for n in ("sft", "val", "rl")]
    assert all(not (a & b) for i, a in enumerate(prompts) for b in prompts[i + 1:])

    # 2. SFT: prompts in the chat template, every response closed by the template's own end of turn
    tokenizer = Tokenizer(qwen_dir)
    im_end, endoftext = tokenizer.encode("<|im_end|>"), tokenizer.encode("<|endoftext|>")
    assert tokenizer.eos_id == im_end[0] and tokenizer.eos_ids == sorted(im_end + endoftext)
    examples, _ = sft.tokenize(list(enumerate(parts["sft"])), tokenizer, 1024, False, "sft")
    for ids, mask in examples:
        assert ids[-1] == im_end[0] and mask[-1] and endoftext[0] not in ids
        text = tokenizer.tok.decode(ids, skip_special_tokens=False)
        assert "<|im_start|>user\n" in text and "<|im_end|>\n<|im_start|>assistant\n" in text
    sft.main(["--model", str(qwen_dir), "--data", str(splits / "sft.jsonl"), "--eval-data", str(splits / "val.jsonl"),
              "--window", "16", "--max-steps", "2", "--batch-size", "4", "--out", str(tmp_path / "sft.pt"), "--device", "cpu"])

    # 3. GRPO on the real reward, evaluated on the data given, then exported
    common = ["--data", str(splits / "rl.jsonl"), "--max-steps", "1", "--prompts-per-step", "2", "--group-size", "2",
              "--max-new-tokens", "8", "--eval-size", "2", "--eval-samples", "1", "--device", "cpu"]
    rl.main(["--model", str(tmp_path / "sft.pt"), "--eval-data", str(splits / "val.jsonl"), "--out", str(tmp_path / "rl.pt"),
             "--export-hf", str(tmp_path / "hf"), *common])
    log = [json.loads(line) for line in (tmp_path / "rl.jsonl").read_text().splitlines()]
    evals = {k for r in log for k in r if k.startswith("eval/")}
    assert evals and all(k.startswith("eval/val/") for k in evals)  # never the synthetic task
    # without --eval-data: a held-out slice of --data, named in the log
    rl.main(["--model", str(tmp_path / "sft.pt"), "--out", str(tmp_path / "rl2.pt"), *common])
    log = [json.loads(line) for line in (tmp_path / "rl2.jsonl").read_text().splitlines()]
    evals = {k for r in log for k in r if k.startswith("eval/")}
    assert evals and all(k.startswith("eval/rl_heldout/") for k in evals)

    # 4. evaluate.py on the test split
    assert evaluate.main(["--model", str(tmp_path / "rl.pt"), "--data", str(splits / "test.jsonl"), "--max-new-tokens", "8",
                          "--device", "cpu", "--out", str(tmp_path / "eval")]) == 0
    report = json.loads((tmp_path / "eval.json").read_text())
    assert list(report["benchmarks"]) == ["test"] and report["benchmarks"]["test"]["n"] == 6

    # 5. the export loads in transformers and computes the same logits past the window
    ours, _ = load_model(tmp_path / "rl.pt")
    theirs = transformers.AutoModelForCausalLM.from_pretrained(tmp_path / "hf").float().eval()
    ids = torch.tensor([tokenizer.encode(tokenizer.render_prompt(parts["test"][0]["prompt"]))])
    assert ids.shape[1] > 16  # past the window
    with torch.no_grad():
        torch.testing.assert_close(ours(ids), theirs(ids).logits, rtol=0, atol=1e-4)
    assert json.loads((tmp_path / "hf" / "tokenizer_config.json").read_text())["eos_token"] == "<|im_end|>"
