// The wasm side of scripts/bench-runtime.sh: one format per process (so the peak RSS is that
// format's), greedy generation with the lab's LabModel in Node, exactly as the worker runs it.
//
//     node scripts/bench-runtime-wasm.mjs MODEL.gguf FORMAT PROMPT_FILE N_DECODE
//
// FORMAT "base" = the checkpoint as stored. Prints one TSV line:
// format, prefill tok/s, decode tok/s, peak RSS (MiB), prompt tokens, generated tokens, bits per
// weight of the whole model (every tensor, norms included).
import { readFileSync } from 'node:fs';
import init, { LabModel } from '../web/src/pkg/quantlab.js';

const [model, format, promptFile, nDecode] = process.argv.slice(2);
if (!model || !format || !promptFile || !nDecode) {
  console.error('usage: node scripts/bench-runtime-wasm.mjs MODEL.gguf FORMAT PROMPT_FILE N_DECODE');
  process.exit(2);
}
await init({ module_or_path: readFileSync(new URL('../web/src/pkg/quantlab_bg.wasm', import.meta.url)) });
let m = LabModel.fromGguf(new Uint8Array(readFileSync(model)));
if (format !== 'base') {
  const q = m.quantize(format);
  m.free();
  m = q;
}
const g = m.generate(readFileSync(promptFile, 'utf8'), { maxTokens: Number(nDecode) });
const rss = process.resourceUsage().maxRSS / 1024; // KiB → MiB
console.log([format, g.prefillTokensPerSec.toFixed(1), g.decodeTokensPerSec.toFixed(1), rss.toFixed(0),
  g.promptTokens, g.tokenIds.length, m.info().bitsPerWeight.toFixed(3)].join('\t'));
