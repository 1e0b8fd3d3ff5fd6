"""Per-family data for scripts/make_reference.py: tokenizer structure, special tokens and
hub-style config.json / generation_config.json / tokenizer_config.json for each tiny model.

Single-threaded offline script helper (no threads). Everything here mirrors the STRUCTURE of the
real Hugging Face checkpoints (key names, token strings, which ids are EOS, which tokens are
special) with tiny sizes; values that only matter at full scale are kept as the real model has
them where they are harmless (rope_theta, eps, max_position_embeddings for Llama-3.1).
"""

from dataclasses import dataclass, field

# Pre-tokenizer Split regexes. GLM-4 (both checkpoints) and Llama-3 use the cl100k-style
# pattern with \p{N}{1,3}; Qwen2/Qwen3 split digits one by one (\p{N}).
CL100K_STYLE_REGEX = (
    r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}"
    r"| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"
)
QWEN_REGEX = (
    r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}"
    r"| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"
)

GLM_SPECIALS = [
    "<|endoftext|>", "[MASK]", "[gMASK]", "[sMASK]", "<sop>", "<eop>", "<|system|>",
    "<|user|>", "<|assistant|>", "<|observation|>", "<|begin_of_image|>", "<|end_of_image|>",
    "<|begin_of_video|>", "<|end_of_video|>",
]

QWEN_SPECIALS = [
    "<|endoftext|>", "<|im_start|>", "<|im_end|>", "<|object_ref_start|>",
    "<|object_ref_end|>", "<|box_start|>", "<|box_end|>", "<|quad_start|>", "<|quad_end|>",
    "<|vision_start|>", "<|vision_end|>", "<|vision_pad|>", "<|image_pad|>", "<|video_pad|>",
]
# Added tokens that the real Qwen tokenizers mark special=false (they stay in decoded text).
QWEN25_PLAIN_ADDED = [
    "<tool_call>", "</tool_call>", "<|fim_prefix|>", "<|fim_middle|>", "<|fim_suffix|>",
    "<|fim_pad|>", "<|repo_name|>", "<|file_sep|>",
]
QWEN3_PLAIN_ADDED = QWEN25_PLAIN_ADDED + ["<tool_response>", "</tool_response>", "<think>", "</think>"]


def llama3_specials():
    """The 256 Llama-3.1 special tokens in id order (128000..128255 in the real model)."""
    named = {
        0: "<|begin_of_text|>", 1: "<|end_of_text|>", 4: "<|finetune_right_pad_id|>",
        6: "<|start_header_id|>", 7: "<|end_header_id|>", 8: "<|eom_id|>", 9: "<|eot_id|>",
        10: "<|python_tag|>",
    }
    out, reserved = [], 0
    for i in range(256):
        if i in named:
            out.append(named[i])
        else:
            out.append(f"<|reserved_special_token_{reserved}|>")
            reserved += 1
    return out


@dataclass
class Family:
    name: str  # output directory name
    arch: str  # config.json architectures[0]
    model_type: str
    regex: str
    nfc: bool  # Qwen adds an NFC normalizer
    ignore_merges: bool  # Llama-3 sets it
    specials: list  # added tokens with special=true, in id order after the BPE vocab
    plain_added: list  # added tokens with special=false, after the specials
    prefix_tokens: list  # post-processor TemplateProcessing prefix ([] = ByteLevel only)
    template_file: str
    dtype: str  # torch dtype name stored in the checkpoint
    seed: int
    shards: int = 1
    vocab_multiple: int = 64  # config vocab_size is padded like the real model (1 = no padding)
    head_dim: int = 16
    legacy_merges: bool = False  # tokenizer.json merges as "a b" strings instead of pairs
    extra: dict = field(default_factory=dict)


FAMILIES = [
    Family("glm4-tiny", "Glm4ForCausalLM", "glm4", CL100K_STYLE_REGEX, False, False, GLM_SPECIALS,
           [], ["[gMASK]", "<sop>"], "glm4-0414.jinja", "bfloat16", 1401),
    Family("glm-tiny", "GlmForCausalLM", "glm", CL100K_STYLE_REGEX, False, False, GLM_SPECIALS,
           [], ["[gMASK]", "<sop>"], "glm-4-9b-chat-hf.jinja", "float16", 1402),
    Family("llama-tiny", "LlamaForCausalLM", "llama", CL100K_STYLE_REGEX, False, True,
           llama3_specials(), [], ["<|begin_of_text|>"], "llama3.jinja", "float32", 1403,
           shards=2, vocab_multiple=1, legacy_merges=True),
    Family("qwen2-tiny", "Qwen2ForCausalLM", "qwen2", QWEN_REGEX, True, False, QWEN_SPECIALS,
           QWEN25_PLAIN_ADDED, [], "qwen2.5.jinja", "bfloat16", 1404),
    Family("qwen3-tiny", "Qwen3ForCausalLM", "qwen3", QWEN_REGEX, True, False, QWEN_SPECIALS,
           QWEN3_PLAIN_ADDED, [], "qwen3.jinja", "bfloat16", 1405, head_dim=32),
]

# The bundled default model (models/autoglm-tiny): the GLM-4-0414 structure with its own seed.
# Random weights: it exercises the real loading, tokenizer, template and forward code; its
# text is meaningless.
BUNDLED = Family("autoglm-tiny", "Glm4ForCausalLM", "glm4", CL100K_STYLE_REGEX, False, False,
                 GLM_SPECIALS, [], ["[gMASK]", "<sop>"], "glm4-0414.jinja", "bfloat16", 1400)

TINY = dict(hidden_size=64, num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2,
            intermediate_size=128)


def padded_vocab(n_tokens, multiple):
    return (n_tokens + multiple - 1) // multiple * multiple


def model_config(fam, tok_ids, vocab_size):
    """config.json in the real checkpoint's (pre-transformers-5) layout."""
    base = {"architectures": [fam.arch], "model_type": fam.model_type, **TINY,
            "vocab_size": vocab_size, "hidden_act": "silu", "initializer_range": 0.02,
            "attention_dropout": 0.0, "use_cache": True, "torch_dtype": fam.dtype,
            "transformers_version": "5.17.0"}
    if fam.model_type in ("glm4", "glm"):
        eos = [tok_ids["<|endoftext|>"], tok_ids["<|user|>"], tok_ids["<|observation|>"]]
        base.update(attention_bias=True, head_dim=fam.head_dim, partial_rotary_factor=0.5,
                    rope_theta=10000.0, eos_token_id=eos, pad_token_id=tok_ids["<|endoftext|>"],
                    max_position_embeddings=4096, tie_word_embeddings=False,
                    rms_norm_eps=1e-05 if fam.model_type == "glm4" else 1.5625e-07)
    elif fam.model_type == "llama":
        base.update(attention_bias=False, mlp_bias=False, head_dim=fam.head_dim,
                    bos_token_id=tok_ids["<|begin_of_text|>"],
                    eos_token_id=[tok_ids[t] for t in ("<|end_of_text|>", "<|eom_id|>", "<|eot_id|>")],
                    max_position_embeddings=131072, pretraining_tp=1, rms_norm_eps=1e-05,
                    rope_scaling={"factor": 8.0, "low_freq_factor": 1.0, "high_freq_factor": 4.0,
                                  "original_max_position_embeddings": 8192, "rope_type": "llama3"},
                    rope_theta=500000.0, tie_word_embeddings=False)
    else:  # qwen2 / qwen3
        base.update(bos_token_id=tok_ids["<|endoftext|>"], eos_token_id=tok_ids["<|im_end|>"],
                    max_position_embeddings=4096, max_window_layers=2, rms_norm_eps=1e-06,
                    rope_scaling=None, rope_theta=1000000.0, use_sliding_window=False)
        if fam.model_type == "qwen2":
            base.update(sliding_window=4096, tie_word_embeddings=True)
        else:
            base.update(attention_bias=False, head_dim=fam.head_dim, sliding_window=None,
                        tie_word_embeddings=False)
    return dict(sorted(base.items()))


def generation_config(fam, tok_ids):
    """generation_config.json with every EOS id the family stops on."""
    if fam.model_type in ("glm4", "glm"):
        eos = [tok_ids["<|endoftext|>"], tok_ids["<|user|>"], tok_ids["<|observation|>"]]
        cfg = {"eos_token_id": eos, "pad_token_id": tok_ids["<|endoftext|>"]}
        if fam.model_type == "glm":
            cfg.update(do_sample=True, temperature=0.8, top_p=0.8, max_length=128000)
    elif fam.model_type == "llama":
        cfg = {"bos_token_id": tok_ids["<|begin_of_text|>"],
               "eos_token_id": [tok_ids[t] for t in ("<|end_of_text|>", "<|eom_id|>", "<|eot_id|>")],
               "do_sample": True, "temperature": 0.6, "top_p": 0.9}
    else:
        cfg = {"bos_token_id": tok_ids["<|endoftext|>"],
               "eos_token_id": [tok_ids["<|im_end|>"], tok_ids["<|endoftext|>"]],
               "pad_token_id": tok_ids["<|endoftext|>"], "do_sample": True}
        if fam.model_type == "qwen2":
            cfg.update(repetition_penalty=1.05, temperature=0.7, top_p=0.8, top_k=20)
        else:
            cfg.update(temperature=0.6, top_p=0.95, top_k=20)
    cfg["transformers_version"] = "5.17.0"
    return cfg


def tokenizer_config(fam, added, chat_template):
    """tokenizer_config.json: added_tokens_decoder plus the family's bos/eos/pad settings.

    `added` is [(id, content, special)] in id order.
    """
    decoder = {str(i): {"content": c, "lstrip": False, "normalized": False, "rstrip": False,
                        "single_word": False, "special": s} for i, c, s in added}
    cfg = {"added_tokens_decoder": decoder}
    if fam.model_type in ("glm4", "glm"):
        cfg.update(additional_special_tokens=list(fam.specials), clean_up_tokenization_spaces=False,
                   do_lower_case=False, eos_token="<|endoftext|>", pad_token="<|endoftext|>",
                   model_input_names=["input_ids", "attention_mask"], model_max_length=128000,
                   padding_side="left", remove_space=False,
                   tokenizer_class="PreTrainedTokenizerFast")
    elif fam.model_type == "llama":
        cfg.update(bos_token="<|begin_of_text|>", clean_up_tokenization_spaces=True,
                   eos_token="<|eot_id|>", model_input_names=["input_ids", "attention_mask"],
                   model_max_length=131072, tokenizer_class="PreTrainedTokenizerFast")
    else:
        cfg.update(add_bos_token=False, add_prefix_space=False,
                   additional_special_tokens=list(fam.specials[1:]), bos_token=None,
                   clean_up_tokenization_spaces=False, eos_token="<|im_end|>", errors="replace",
                   model_max_length=131072, pad_token="<|endoftext|>", split_special_tokens=False,
                   tokenizer_class="Qwen2Tokenizer", unk_token=None)
    cfg["chat_template"] = chat_template
    return cfg
