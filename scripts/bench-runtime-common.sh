# Shared by the generation benchmarks (scripts/bench-runtime.sh, scripts/bench-decode.sh): the
# prompt they all use and the machine line they print. Source it; it defines functions only.

# bench_prompt FILE: writes the benchmark prompt, the first 300 characters of Moby-Dick
# chapter 1 (about 64 tokens with the default model's tokenizer), to FILE.
# (scripts/bench-browser.mjs uses the same text.)
bench_prompt() {
    local root
    root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
    node -e 'const t = JSON.parse(require("fs").readFileSync(process.argv[1], "utf8")).text;
      process.stdout.write(t.slice(0, 300))' "$root/data/moby-dick/chapter_1.json" > "$1"
}

# bench_machine: "2 cores (AMD EPYC …), load average 1.2 0.8 0.5"
bench_machine() {
    echo "$(nproc) cores ($(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //')), load average $(cut -d' ' -f1-3 /proc/loadavg)"
}
