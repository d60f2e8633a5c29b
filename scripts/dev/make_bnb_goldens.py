#!/usr/bin/env python3
"""Golden fixtures for quantlab's bitsandbytes NF4/FP4 implementation (crate/src/formats/bnb/).

Everything here is produced by the REAL bitsandbytes running on the CPU (not a re-implementation):
`bitsandbytes.functional.quantize_4bit` / `dequantize_4bit`, and (if it installs) a tiny
LlamaForCausalLM quantized by Hugging Face transformers with BitsAndBytesConfig(load_in_4bit=True)
on the CPU and written with save_pretrained.

Setup (a throw-away venv; torch comes from PyPI and pulls its nvidia-* wheels, ~4 GB, a few
minutes; the CPU path never touches them):

    python3 -m venv /tmp/bnb-venv
    /tmp/bnb-venv/bin/pip install bitsandbytes==0.50.2 torch==2.15.0 transformers==5.23.0 \
        safetensors numpy
    /tmp/bnb-venv/bin/python scripts/dev/make_bnb_goldens.py

Versions the committed fixtures were made with: bitsandbytes 0.50.2, torch 2.15.0 (CPU
capability AVX512; torch's float sum kernel is dispatched to its AVX2 variant either way),
transformers 5.23.0, safetensors 0.8.0, numpy 2.4.6, Python 3.11.

Outputs (tests/fixtures/bnb/, < 300 KB in all):

  <qt>-b<block>[-dq].safetensors   one case each, tensors:
      input     F32 [n]        the values quantized (fixed seed; special blocks, see make_input)
      packed    U8  [ceil(n/2), 1]  bnb's packed codes (first element in the high nibble)
      absmax    F32 [blocks]   (no dq) bnb's per-block absmax
                U8  [blocks]   (dq)    the 8-bit codes of absmax - offset
      nested_absmax F32 [ceil(blocks/256)]  (dq)
      offset    F32 [1]        (dq) mean of the absmax values
      nested_code F32 [256]    (dq) create_dynamic_map(signed=True), bnb's 8-bit code table
      quant_map F32 [16]       get_4bit_type(qt)
      dequant   F32 [n]        bnb's dequantize_4bit output
    metadata: quant_type, blocksize, n, bitsandbytes/torch versions
  transformers_llama_nf4_dq/   (if transformers works) model.safetensors as save_pretrained
      wrote it, plus q_proj_input.safetensors: the float32 weight of
      model.layers.0.self_attn.q_proj before quantization
  transformers_layout.json     key -> [dtype, shape] of that export, and its quant_state JSON
"""

import json
import os
import sys
import tempfile

import numpy as np
import torch
import bitsandbytes
import bitsandbytes.functional as F
from safetensors.numpy import save_file

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "tests", "fixtures", "bnb")
OUT = os.path.normpath(OUT)


def bounds(qt):
    """The f32 midpoints bitsandbytes' CPU quantizer compares against (sorted code order)."""
    code = F.get_4bit_type(qt, device="cpu")
    s = torch.sort(code).values
    return ((s[:-1] + s[1:]) / 2).numpy()


def make_input(qt, block, n_random_blocks, tail, seed, specials=True):
    """Special blocks first (each a whole block), then normal and heavy-tailed blocks, then a
    partial tail of `tail` values (0 = none). Without `specials` (block 4096, to keep the
    fixture small): one block of ties + normal + heavy-tailed values, then the tail."""
    rng = np.random.default_rng(seed)
    f = np.float32
    blocks = []
    if not specials:
        b = bounds(qt)
        head = np.concatenate([[1.0], b, -b, [0.0, -0.0]])
        body = np.concatenate([rng.standard_normal(block // 2) * 0.5, rng.standard_t(2, block) * 0.1])
        blocks.append(np.concatenate([head, body])[:block].astype(f))
        blocks.append((rng.standard_normal(tail) * 0.5).astype(f))
        return np.concatenate(blocks).astype(f)
    blocks.append(np.zeros(block, f))  # all-zero block (absmax 0)
    blocks.append(np.full(block, 0.37, f))  # constant block
    blocks.append((rng.standard_normal(block) * 1e-8).astype(f))  # tiny
    blocks.append((rng.standard_normal(block) * 1e4).astype(f))  # huge
    # exact ties: absmax 1 (scale exactly 1), the values are the midpoints between codes and
    # the codes themselves, both signs, plus +-0
    b = bounds(qt)
    code = F.get_4bit_type(qt, device="cpu").numpy()
    ties = np.concatenate([[1.0], b, -b, code, [0.0, -0.0], np.nextafter(b, f(2)), np.nextafter(b, f(-2))]).astype(f)
    blocks.append(np.resize(ties, block).astype(f))
    # the same with absmax 2 (power of two: scale exact) and mixed signs
    blocks.append((np.resize(ties[::-1], block) * 2).astype(f))
    # subnormal absmax (bnb clamps the divisor at 1e-38)
    blocks.append((rng.uniform(-1, 1, block) * 1e-40).astype(f))
    for i in range(n_random_blocks):
        if i % 2 == 0:
            blocks.append((rng.standard_normal(block) * 0.02).astype(f))
        else:
            blocks.append((rng.standard_t(2, block) * 0.05).astype(f))  # heavy tails
    if tail:
        blocks.append((rng.standard_normal(tail) * 0.5).astype(f))
    return np.concatenate(blocks).astype(f)


def case(qt, block, dq, n_random_blocks, tail, seed, specials=True):
    x = make_input(qt, block, n_random_blocks, tail, seed, specials)
    t = torch.from_numpy(x.copy())
    q, st = F.quantize_4bit(t, blocksize=block, quant_type=qt, compress_statistics=dq)
    d = F.dequantize_4bit(q, st)
    tensors = {
        "input": x,
        "packed": q.numpy().copy(),
        "quant_map": st.code.numpy().copy(),
        "dequant": d.reshape(-1).numpy().copy(),
    }
    if dq:
        tensors["absmax"] = st.absmax.numpy().copy()
        tensors["nested_absmax"] = st.state2.absmax.numpy().copy()
        tensors["offset"] = st.offset.reshape(1).numpy().copy()
        tensors["nested_code"] = st.state2.code.numpy().copy()
        assert st.state2.blocksize == 256
    else:
        tensors["absmax"] = st.absmax.numpy().copy()
    meta = {
        "quant_type": qt,
        "blocksize": str(block),
        "double_quant": str(dq),
        "n": str(len(x)),
        "bitsandbytes": bitsandbytes.__version__,
        "torch": torch.__version__,
    }
    name = f"{qt}-b{block}{'-dq' if dq else ''}.safetensors"
    save_file(tensors, os.path.join(OUT, name), metadata=meta)
    print(name, len(x), "values")


def transformers_export():
    """A tiny LLaMA, quantized NF4 + double quant by transformers on the CPU, saved as is."""
    try:
        import transformers
        from transformers import BitsAndBytesConfig, LlamaConfig, LlamaForCausalLM
    except ImportError as e:
        print("transformers not available:", e)
        return
    torch.manual_seed(0)
    cfg = LlamaConfig(
        vocab_size=32,
        hidden_size=64,
        intermediate_size=128,
        num_hidden_layers=1,
        num_attention_heads=2,
        num_key_value_heads=2,
        max_position_embeddings=64,
        tie_word_embeddings=True,
    )
    model = LlamaForCausalLM(cfg).to(torch.float32)
    out_dir = os.path.join(OUT, "transformers_llama_nf4_dq")
    os.makedirs(out_dir, exist_ok=True)
    q_name = "model.layers.0.self_attn.q_proj.weight"
    save_file(
        {"weight": model.state_dict()[q_name].numpy().copy()},
        os.path.join(out_dir, "q_proj_input.safetensors"),
        metadata={"name": q_name},
    )
    with tempfile.TemporaryDirectory() as tmp:
        model.save_pretrained(tmp)
        qcfg = BitsAndBytesConfig(
            load_in_4bit=True,
            bnb_4bit_quant_type="nf4",
            bnb_4bit_use_double_quant=True,
            bnb_4bit_compute_dtype=torch.float32,
        )
        qmodel = LlamaForCausalLM.from_pretrained(
            tmp, quantization_config=qcfg, device_map="cpu", dtype=torch.float32
        )
        qdir = os.path.join(tmp, "q")
        qmodel.save_pretrained(qdir)
        from safetensors import safe_open

        layout = {"transformers": transformers.__version__, "bitsandbytes": bitsandbytes.__version__, "keys": {}}
        with safe_open(os.path.join(qdir, "model.safetensors"), "pt") as fh:
            for k in fh.keys():
                v = fh.get_tensor(k)
                layout["keys"][k] = [str(v.dtype).replace("torch.", ""), list(v.shape)]
                if "quant_state" in k:
                    layout.setdefault("quant_state_json", {})[k] = bytes(v.numpy().tolist()).decode("utf-8")
        with open(os.path.join(qdir, "config.json")) as fh:
            layout["quantization_config"] = json.load(fh).get("quantization_config")
        os.replace(os.path.join(qdir, "model.safetensors"), os.path.join(out_dir, "model.safetensors"))
    with open(os.path.join(OUT, "transformers_layout.json"), "w") as fh:
        json.dump(layout, fh, indent=1, sort_keys=True)
    print("transformers export:", len(layout["keys"]), "tensors")


def main():
    os.makedirs(OUT, exist_ok=True)
    torch.set_num_threads(1)
    print("bitsandbytes", bitsandbytes.__version__, "torch", torch.__version__, torch.backends.cpu.get_cpu_capability())
    seed = 1234
    for qt in ("nf4", "fp4"):
        for dq in (False, True):
            case(qt, 64, dq, 3, 17, seed)  # 7 special + 3 random blocks + 17 tail: odd length
            case(qt, 128, dq, 3, 33, seed + 1)
            seed += 2
        # block 32: nf4-dq with > 256 blocks (two nested blocks, the second partial)
        case(qt, 32, False, 3, 5, seed)
        case(qt, 32, True, 300 if qt == "nf4" else 3, 6, seed + 1)
        seed += 2
    case("nf4", 4096, False, 0, 101, seed, specials=False)
    if "--no-transformers" not in sys.argv:
        transformers_export()


if __name__ == "__main__":
    main()
