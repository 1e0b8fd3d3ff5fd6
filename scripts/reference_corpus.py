"""Deterministic built-in training text for the tiny BPE tokenizers of scripts/make_reference.py.

Single-threaded offline script helper (no threads). The text mixes English prose, Chinese,
source code, numbers and emoji so that the trained merges cover every pre-tokenizer branch
(letters, digit groups, punctuation runs, newlines, multi-byte UTF-8). It is fixed data: any
edit changes every fixture, so bump it only together with a regeneration.
"""

ENGLISH = """The quick brown fox jumps over the lazy dog. A tiny model is still a model.
It was a bright cold day in April, and the clocks were striking thirteen.
We hold these truths to be self-evident, that all tests should fail when the code is wrong.
I'm sure you'll see that they're right; we've done it, and it's done. Don't stop, we'd say.
Hello world! How are you today? The weather is nice, isn't it? Yes, it is.
The engine reads the weights, builds the cache, and answers each request in order.
Please answer the question: what is two plus two? The answer is four.
Once upon a time there was a small language model that wanted to speak clearly.
Numbers: 0 1 2 3 4 5 6 7 8 9 10 42 100 2024 12345 3.14159 -7 1e-5 65536 4096.
Email me at someone@example.com or visit https://example.org/path?query=1&x=2.
"""

CHINESE = """你好，世界！今天天气很好，我们一起去公园散步吧。
人工智能正在改变我们的生活，语言模型可以回答问题、写代码和翻译文章。
请回答：二加二等于几？答案是四。
春眠不觉晓，处处闻啼鸟。夜来风雨声，花落知多少。
这个小模型只有两层，但是它的结构和真正的模型完全一样。
中文、English 和数字 123 混合在一起的句子也要能正确地切分。
谢谢你的帮助！不客气。再见！
"""

CODE = '''def add(a, b):
    return a + b


print(add(2, 40))

for i in range(10):
    if i % 2 == 0:
        print("even", i)
    else:
        print("odd", i)

#include <vector>
int main(int argc, char** argv) {
    std::vector<int> values{1, 2, 3};
    for (const auto& v : values) { total += v * 2; }
    return 0;
}

{"name": "get_weather", "arguments": {"city": "Beijing", "unit": "celsius"}}
SELECT id, name FROM users WHERE age >= 18 ORDER BY name;
'''

EMOJI = """Emoji time 😀 😃 😄 🎉 🚀 ❤️ 👍 🙂 🤖 🌍 ✨ 🔥 ✅ ❌
I love it 😍! Great job 👏👏👏. Rocket 🚀 to the moon 🌕.
表情符号也很有趣 😂🤣，小猫 🐱 和小狗 🐶。
"""


def corpus_lines():
    """The training text as a list of lines, in a fixed order (repeats set merge counts)."""
    blocks = [ENGLISH] * 6 + [CHINESE] * 6 + [CODE] * 4 + [EMOJI] * 3
    # Extra deterministic numeric/word lines so that digit groups and common words merge.
    words = ["model", "token", "cache", "layer", "weight", "answer", "question", "engine"]
    generated = [f"{words[i % len(words)]} {i * 37 % 1000} item_{i} 第{i}个" for i in range(300)]
    lines = []
    for block in blocks:
        lines.extend(block.splitlines(keepends=True))
    lines.extend(line + "\n" for line in generated)
    return lines
