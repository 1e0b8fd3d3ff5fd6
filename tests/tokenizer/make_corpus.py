#!/usr/bin/env python3
"""Generates the tokenizer parity corpus (tests/tokenizer/corpus/*.txt) deterministically.

Run from anywhere: python3 tests/tokenizer/make_corpus.py. Output is byte-identical on every
run (fixed seed, no dependence on the environment). Each file holds one sample per line
('\n'-separated; a line may contain '\r'). Only code points assigned in Unicode 14 or earlier
are used, since PCRE2 10.42 (Debian 12) has Unicode 14 tables.
"""
import pathlib
import random
import unicodedata

OUT = pathlib.Path(__file__).resolve().parent / "corpus"
RNG = random.Random(20240601)

WORDS = ("the of and to in is was he for it with as his on be at by I had not are but from or have "
         "an they which one you were her all she there would their we him been has when who will more "
         "no if out so said what up its about into than them can only other new some could time these "
         "two may then do first any my now such like our over man me even most made after also did many "
         "before must through back years where much your way well down should because each just those "
         "people Mr how too little state good very make world still own see men work long get here "
         "between both life being under never day same another know while last might us great old year "
         "off come since against go came right used take three tokenizer GPU inference OpenAI Zürich "
         "naïve café résumé coöperate façade São Paulo München Ελλάδα Москва").split()
CONTRACTIONS = ["'s", "'t", "'re", "'ve", "'m", "'ll", "'d", "'S", "'T", "'RE", "'Ve", "'M", "'LL",
                "'D", "’s", "n't", "'x"]
PUNCT = list(".,;:!?-—–…\"'()[]{}<>/\\|@#$%^&*_+=~`")
ZH = ("我们 今天 天气 很好 的 是 在 不 了 有 和 人 这 中 大 为 上 个 国 我 以 要 他 时 来 用 们 生 到 作 地 于 "
      "出 就 分 对 成 会 可 主 发 年 动 同 工 也 能 下 过 子 说 产 种 面 而 方 后 多 定 行 学 法 所 民 得 经 "
      "机器学习 人工智能 自然语言处理 深度神经网络 北京 上海 深圳 清华大学 智谱 模型 推理 服务器 令牌").split()
ZH_PUNCT = list("，。！？；：“”‘’（）《》【】、…—·")
EMOJI = ["😀", "😂", "🥲", "🤖", "👍", "👍🏻", "👍🏽", "👍🏿", "👩‍💻", "👨‍👩‍👧‍👦", "🧑🏾‍🚀", "🏳️‍🌈",
         "🏴‍☠️", "🇨🇳", "🇺🇸", "🇩🇪", "❤️", "❤️‍🔥", "1️⃣", "#️⃣", "🫠", "🫶🏼", "🤷🏽‍♀️", "🙅‍♂️", "✨",
         "🔥", "🚀", "🐉", "🍜", "⌛", "☕", "©️", "™️", "🧑‍🤝‍🧑", "👁️‍🗨️", "🐈‍⬛", "🐻‍❄️", "🧔‍♀️"]
SPECIALS = ["<|endoftext|>", "<|im_start|>", "<|im_end|>", "<|begin_of_text|>", "<|end_of_text|>",
            "<|eot_id|>", "<|start_header_id|>", "<|end_header_id|>", "[gMASK]", "<sop>", "<|user|>",
            "<|assistant|>", "<|system|>", "<|observation|>", "<|im_", "<|endoftext", "|>", "<|",
            "<tool_call>", "</tool_call>", "<think>", "</think>", "<|fim_prefix|>", "<|reserved_special_token_5|>"]
UNICODE_SAMPLES = [
    "e\u0301 é", "n\u0303 ñ", "A\u030a Å Å", "ệ ệ ệ", "Ω Ω", "ﬁ ﬀ ﬃ", "①②③ ⅷ Ⅻ", "x\u0336y\u0336",
    "한국어 텍스트입니다", "\u1112\u1161\u11ab\u1100\u1173\u11af", "안녕하세요 세계",
    "مرحبا بالعالم", "السلام عليكم ورحمة الله", "١٢٣٤٥ ٦٧٨٩٠", "עברית טקסט",
    "नमस्ते दुनिया", "हिन्दी में लिखा गया पाठ", "क्षत्रिय ज्ञान", "สวัสดีชาวโลก", "ภาษาไทยไม่มีช่องว่าง",
    "𠀀𠀁𠀂 𪚥 𫝀 𰀀", "𝐀𝐁𝐂 𝑥𝑦𝑧 𝔸𝔹ℂ", "∀x∈ℝ: x²≥0 ∑ᵢ∫∂∇ ≤≠≈∞", "α+β=γ; ΔΣΠ",
    "zero\u200bwidth\u200cjoin\u200dhere", "\ufeffBOM at start", "word\u2060joiner", "soft\u00adhyphen",
    "nbsp\u00a0here", "em\u2003space\u2009thin\u202fnarrow", "ideographic\u3000space", "ogham\u1680space",
    "mongolian\u180esep", "line\u2028sep\u2029para", "nel\u0085char", "tab\u000bvt\u000cff",
    "ſ 'ſ it'ſ K Kelvin", "ǅungla ǈ ǋ", "İstanbul ıi", "ß ẞ straße", "Ⅸ ⓐ 🄰",
    "ㄱㄴㄷ ᄀᄂᄃ", "日本語のテキスト、カタカナ。ﾊﾝｶｸ", "ᚠᚢᚦ ᚨᚱᚲ", "ꦗꦮ Ꭰ Ꭱ ᏣᎳᎩ", "Ⴀ ა ბ გ",
    "\u0000nul", "ctrl\u0001\u001f\u007f", "\u00a1\u00bf¿¡ «» ‹›", "₀₁₂ ⁰¹² ½ ¾", "©®™ § ¶ †‡",
]


def pick(seq, k):
    return [RNG.choice(seq) for _ in range(k)]


def prose():
    words = pick(WORDS, RNG.randint(3, 25))
    out = []
    for w in words:
        if RNG.random() < 0.1:
            w = w.upper()
        elif RNG.random() < 0.15:
            w = w.capitalize()
        if RNG.random() < 0.1:
            w += RNG.choice(CONTRACTIONS)
        out.append(w)
        if RNG.random() < 0.15:
            out[-1] += RNG.choice(PUNCT)
    sep = RNG.choice([" ", " ", " ", "  ", "\t"])
    return sep.join(out) + RNG.choice([".", "!", "?", "", " ", "...", ":"])


def chinese():
    parts = []
    for _ in range(RNG.randint(2, 12)):
        r = RNG.random()
        if r < 0.7:
            parts.append(RNG.choice(ZH))
        elif r < 0.85:
            parts.append(RNG.choice(ZH_PUNCT))
        elif r < 0.93:
            parts.append(" " + RNG.choice(WORDS) + " ")
        else:
            parts.append(str(RNG.randint(0, 10**RNG.randint(1, 8))))
    return "".join(parts)


CODE_LINES = [
    "def {f}(x, y=None):", "    return x ** 2 + y  # square", "\tif not {f}: raise ValueError('bad')",
    "for i in range(10):\tprint(f\"{{i:03d}}\")", "class {F}(object):  ", "    def __init__(self):",
    "        self.{f} = {{'a': 1, \"b\": [1, 2.5, None]}}", "import numpy as np; np.zeros((3, 4))",
    "#include <vector>", "int main(int argc, char** argv) {{", "  std::vector<int> v{{1, 2, 3}};",
    "  for (auto& x : v) x <<= 2;", "  return v.size() > 0 ? 0 : -1;", "}}", "template <typename T>",
    "auto {f} = [&](const T& t) -> bool {{ return t != nullptr; }};", "    /* comment */ // line",
    '{{"name": "{f}", "value": 3.14, "list": [1, 2, 3], "nested": {{"ok": true}}}}',
    '  "key_{f}": "value with \\"quotes\\" and \\\\ backslash",', "SELECT * FROM t WHERE id = 42;",
    "<div class=\"{f}\">Hello &amp; welcome</div>", "$ ls -la | grep '.cpp' && make -j8",
    "x = a&&b||!c; y = a!=b; z = a===b;", "https://example.com/path?q=1&r=two#frag",
    "    ", "\t\t", "if (a) {{\r", "	return;\r", "fn {f}(&mut self) -> Result<(), Box<dyn Error>> {{",
]


def code():
    f = RNG.choice(["foo", "bar_baz", "computeValue", "x1", "_private", "__dunder__", "ÜberFunc"])
    line = RNG.choice(CODE_LINES).format(f=f, F=f.capitalize())
    return RNG.choice(["", "", "    ", "\t", "        "]) + line


def emoji():
    parts = []
    for _ in range(RNG.randint(1, 8)):
        if RNG.random() < 0.6:
            parts.append(RNG.choice(EMOJI))
        else:
            parts.append(RNG.choice(WORDS + ZH))
        parts.append(RNG.choice(["", " ", "  ", "\t"]))
    return "".join(parts)


def whitespace():
    ws = [" ", "  ", "   ", "\t", "\t\t", " \t ", "\r", "\r\r", "\u00a0", "\u3000", "\u2003"]
    parts = []
    for _ in range(RNG.randint(1, 8)):
        parts.append(RNG.choice(ws) * RNG.randint(1, 4))
        if RNG.random() < 0.7:
            parts.append(RNG.choice(WORDS + ZH + PUNCT))
    return "".join(parts)


def numbers():
    r = RNG.random()
    if r < 0.3:
        return str(RNG.randint(0, 10**RNG.randint(1, 40)))
    if r < 0.5:
        return f"{RNG.uniform(-1e6, 1e6):.{RNG.randint(0, 12)}f}"
    if r < 0.6:
        return f"{RNG.uniform(-1, 1):e} {RNG.randint(0, 255)}.{RNG.randint(0, 255)}.0.1"
    if r < 0.7:
        return f"价格是{RNG.randint(1, 99999)}元，折扣{RNG.randint(1, 99)}%"
    if r < 0.8:
        return f"{RNG.randint(1, 12)}/{RNG.randint(1, 28)}/{RNG.randint(1900, 2100)} {RNG.randint(0, 23)}:{RNG.randint(0, 59):02d}"
    if r < 0.9:
        return "１２３４５ ٣٤٥ ४५६ ๑๒๓ " + str(RNG.randint(0, 999))
    return " ".join(str(RNG.randint(0, 10**6)) for _ in range(RNG.randint(2, 10)))


def unicode_line():
    parts = pick(UNICODE_SAMPLES, RNG.randint(1, 4))
    line = RNG.choice([" ", "", "  "]).join(parts)
    if RNG.random() < 0.3:
        line = unicodedata.normalize(RNG.choice(["NFC", "NFD", "NFKC", "NFKD"]), line)
    return line


def special():
    parts = []
    for _ in range(RNG.randint(1, 6)):
        r = RNG.random()
        if r < 0.45:
            parts.append(RNG.choice(SPECIALS))
        elif r < 0.75:
            parts.append(RNG.choice(WORDS))
        else:
            parts.append(RNG.choice(ZH + EMOJI + PUNCT))
        parts.append(RNG.choice(["", " ", "  ", "\t"]))
    return "".join(parts)


FILES = [("prose_en.txt", prose, 400), ("chinese.txt", chinese, 300), ("code.txt", code, 350),
         ("emoji.txt", emoji, 200), ("whitespace.txt", whitespace, 200), ("numbers.txt", numbers, 200),
         ("unicode.txt", unicode_line, 300), ("special_tokens.txt", special, 200)]


def main():
    OUT.mkdir(parents=True, exist_ok=True)
    for name, gen, count in FILES:
        lines = [gen() for _ in range(count)]
        if name == "unicode.txt":
            lines += UNICODE_SAMPLES  # every sample at least once on its own
        assert all("\n" not in line for line in lines)
        (OUT / name).write_bytes(("\n".join(lines) + "\n").encode("utf-8"))


if __name__ == "__main__":
    main()
