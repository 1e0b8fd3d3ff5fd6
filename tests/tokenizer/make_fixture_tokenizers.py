#!/usr/bin/env python3
"""Trains the small tokenizer.json fixtures in tests/fixtures/tokenizers/ with HF `tokenizers`.

Usage: python tests/tokenizer/make_fixture_tokenizers.py (needs tokenizers==0.23.2, see
tests/requirements.txt). Trained on the committed parity corpus, so the output only depends on
the corpus and the tokenizers version. Each fixture exercises a different tokenizer.json shape:
  llama3_style.json: Split(Llama-3 regex) + ByteLevel(use_regex=false), ignore_merges,
                     TemplateProcessing BOS, merges written as [a, b] pairs.
  glm4_style.json:   GLM-4-0414 style regex, merges written as "a b" strings, [gMASK]<sop>
                     prefix, an added token with lstrip/rstrip and a single_word one.
  gpt2_style.json:   NFC normalizer, ByteLevel(add_prefix_space, GPT-2 regex), a normalized
                     non-special added token, no post-processor.
"""
import json
import pathlib

from tokenizers import Regex, Tokenizer, decoders, models, normalizers, pre_tokenizers, processors, trainers
from tokenizers import AddedToken

ROOT = pathlib.Path(__file__).resolve().parents[2]
CORPUS = sorted((ROOT / "tests/tokenizer/corpus").glob("*.txt"))
OUT = ROOT / "tests/fixtures/tokenizers"
LLAMA3_REGEX = (r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}|"
                r" ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+")


def corpus_lines():
    for path in CORPUS:
        yield from path.read_bytes().decode("utf-8").split("\n")


def train(tok, vocab_size, specials):
    trainer = trainers.BpeTrainer(vocab_size=vocab_size, min_frequency=2, show_progress=False,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
                                  special_tokens=[])
    tok.train_from_iterator(corpus_lines(), trainer=trainer)
    tok.add_special_tokens(specials)
    return tok


def split_byte_level(regex):
    return pre_tokenizers.Sequence([
        pre_tokenizers.Split(Regex(regex), behavior="isolated", invert=False),
        pre_tokenizers.ByteLevel(add_prefix_space=False, trim_offsets=False, use_regex=False)])


def llama3():
    tok = Tokenizer(models.BPE(ignore_merges=True))
    tok.pre_tokenizer = split_byte_level(LLAMA3_REGEX)
    tok.decoder = decoders.ByteLevel()
    specials = ["<|begin_of_text|>", "<|end_of_text|>", "<|start_header_id|>", "<|end_header_id|>",
                "<|eot_id|>"] + [f"<|reserved_special_token_{i}|>" for i in range(8)]
    train(tok, 1500, [AddedToken(s, special=True, normalized=False) for s in specials])
    bos = tok.token_to_id("<|begin_of_text|>")
    tok.post_processor = processors.Sequence([
        processors.ByteLevel(trim_offsets=False),
        processors.TemplateProcessing(single="<|begin_of_text|> $A", pair="<|begin_of_text|> $A $B",
                                      special_tokens=[("<|begin_of_text|>", bos)])])
    return json.loads(tok.to_str())


def glm4():
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = split_byte_level(LLAMA3_REGEX)
    tok.decoder = decoders.ByteLevel()
    specials = ["<|endoftext|>", "[MASK]", "[gMASK]", "[sMASK]", "<sop>", "<eop>", "<|system|>",
                "<|user|>", "<|assistant|>", "<|observation|>"]
    train(tok, 1200, [AddedToken(s, special=True, normalized=False) for s in specials])
    tok.add_tokens([AddedToken("<|stripme|>", special=True, lstrip=True, rstrip=True, normalized=False),
                    AddedToken("tool", single_word=True, special=False, normalized=False),
                    AddedToken("<think>", special=False, normalized=False),
                    AddedToken("</think>", special=False, normalized=False)])
    ids = {s: tok.token_to_id(s) for s in ("[gMASK]", "<sop>")}
    tok.post_processor = processors.TemplateProcessing(
        single="[gMASK] <sop> $A", pair="[gMASK] <sop> $A $B", special_tokens=list(ids.items()))
    data = json.loads(tok.to_str())
    data["model"]["merges"] = [" ".join(m) for m in data["model"]["merges"]]
    return data


def gpt2():
    tok = Tokenizer(models.BPE())
    tok.normalizer = normalizers.NFC()
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=True, use_regex=True)
    tok.decoder = decoders.ByteLevel()
    train(tok, 800, [AddedToken("<|endoftext|>", special=True, normalized=False)])
    tok.add_tokens([AddedToken("Ångström", special=False, normalized=True),
                    AddedToken("<|im_start|>", special=True, normalized=True)])
    return json.loads(tok.to_str())


def main():
    OUT.mkdir(parents=True, exist_ok=True)
    for name, build in (("llama3_style", llama3), ("glm4_style", glm4), ("gpt2_style", gpt2)):
        data = build()
        text = json.dumps(data, ensure_ascii=False, indent=1, sort_keys=False) + "\n"
        (OUT / f"{name}.json").write_text(text, encoding="utf-8")
        Tokenizer.from_str(text)  # the fixture must load in HF


if __name__ == "__main__":
    main()
