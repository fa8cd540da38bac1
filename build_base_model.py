"""
Build the small full-attention base model that swarr ships in base_model/, so the whole recipe
runs offline on any machine. It stands in for a pretrained Hugging Face checkpoint: a character
tokenizer (tokenizer.json, built with the tokenizers package), a Llama-family decoder from
model.py, pretrained with full attention by sft.py (--all-tokens, run as its own process) on the
synthetic task's text in both solution styles (50/50, every difficulty 1..max k of the task), so
it masters look-back and carry-forward before any SWA conversion.

    python build_base_model.py --device cuda            # a few minutes on one H100; writes base_model/
    python build_base_model.py --layers 12 --out out/base12 --work out/base12_build   # another depth
    ... --resume                                        # continue a build cut off (from --work's pretrain.pt)

The shipped base_model/ came from these defaults (README: the shipped base model).

The result is an ordinary Hugging Face directory (config.json, model.safetensors, tokenizer.json):
transformers loads it too.
"""
import argparse
import shutil
import subprocess
import sys
from pathlib import Path

import torch

from checkpoint import export_hf
from data import write_jsonl
from data.synthetic import DEFAULT_TASK, in_memory_splits, write_char_tokenizer
from model import Config, Model

parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
parser.add_argument("--out", default="base_model")
parser.add_argument("--work", default="out/base_build", help="scratch directory: corpus, init, logs")
parser.add_argument("--steps", type=int, default=8000)
parser.add_argument("--batch-size", type=int, default=128)
parser.add_argument("--lr", type=float, default=1e-3)
parser.add_argument("--n-pretrain", type=int, default=100_000)
parser.add_argument("--hidden", type=int, default=192)
parser.add_argument("--layers", type=int, default=6)
parser.add_argument("--seed", type=int, default=1234)
parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
parser.add_argument("--resume", action="store_true", help="continue the pretraining cut off in --work (its pretrain.pt)")
args = parser.parse_args()
work = Path(args.work)
work.mkdir(parents=True, exist_ok=True)

# 1. a character tokenizer: one token per character of the task's alphabet, plus <eos>
init = work / "init"
write_char_tokenizer(init)

# 2. a randomly initialised decoder, GPT-2 style: N(0, 0.02), residual projections scaled by depth
config = Config(model_type="llama", vocab_size=32, hidden_size=args.hidden, intermediate_size=int(args.hidden * 8 / 3) // 32 * 32,
                num_hidden_layers=args.layers, num_attention_heads=args.hidden // 32, num_key_value_heads=2, head_dim=32,
                max_position_embeddings=1024, tie_word_embeddings=True, eos_token_id=0, bos_token_id=None)
torch.manual_seed(args.seed)
model = Model(config)
for name, p in model.named_parameters():
    if p.dim() == 2:
        std = 0.02 / (2 * args.layers) ** 0.5 if name.endswith(("o_proj.weight", "down_proj.weight")) else 0.02
        torch.nn.init.normal_(p, 0.0, std)
export_hf(model, init)
print(f"initialised {sum(p.numel() for p in model.parameters()) / 1e6:.2f}M parameters")

# 3. the corpus: both styles at every difficulty
# (difficulties 1..12, the largest of the SFT and RL ones: the held-out test difficulties 14 and 16 stay unseen)
splits = in_memory_splits(**{**DEFAULT_TASK["splits"], "pretrain": True, "n_pretrain": args.n_pretrain, "n_sft": 0, "n_rl": 0,
                             "test_steps": DEFAULT_TASK["splits"]["steps"], "pretrain_carry_share": 0.5})
write_jsonl(work / "corpus.jsonl", splits["pretrain"])
write_jsonl(work / "val.jsonl", in_memory_splits(**{**DEFAULT_TASK["splits"], "carry_share": 0.5})["val"])

# 4. pretrain with full attention, loss on every token, then export the Hugging Face directory
subprocess.run([
    sys.executable, str(Path(__file__).parent / "sft.py"),
    "--model", str(init), "--data", str(work / "corpus.jsonl"), "--eval-data", str(work / "val.jsonl"),
    "--window", "none", "--all-tokens", "--max-len", "1024", "--out", str(work / "pretrain.pt"),
    "--max-steps", str(args.steps), "--batch-size", str(args.batch_size), "--lr", str(args.lr), "--warmup", "200",
    "--weight-decay", "0.1", "--eval-every", "500", "--save-every", "1000", "--seed", str(args.seed), "--device", args.device,
    "--export-hf", str(work / "export"),
] + (["--resume"] if args.resume else []), check=True)
out = Path(args.out)
shutil.rmtree(out, ignore_errors=True)
shutil.copytree(work / "export", out)
print(f"wrote {out}/; its full-attention accuracy per style and difficulty:\n"
      f"  python evaluate.py --model {out} --window none --force-style lookback carry")
