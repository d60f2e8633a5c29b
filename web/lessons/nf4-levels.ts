// Lesson 3 (where NF4's levels come from): NF4's 16 levels computed in the page from the normal
// inverse CDF as bitsandbytes' create_normal_map does, beside the table bitsandbytes publishes, then
// <ql-nf4-placement> on a real tensor. The tensor and block are kept in the URL (`?tensor=…&block=…`).
import { defineElements, type QlNf4Placement } from '../src/components/index';
import { MODEL, keepInUrl, pickOption } from './state';

// The repository's package.json marks only lib/components.js as having side effects (see number-line.ts).
defineElements();

/** bitsandbytes' NF4 table as published (functional.py / the CUDA kernel's dequantize table). */
const PUBLISHED = [
  -1.0, -0.6961928009986877, -0.5250730514526367, -0.39491748809814453, -0.28444138169288635, -0.18477343022823334,
  -0.09105003625154495, 0.0, 0.07958029955625534, 0.16093020141124725, 0.24611230194568634, 0.33791524171829224,
  0.44070982933044434, 0.5626170039176941, 0.7229568362236023, 1.0,
];

/** create_normal_map's default offset: the mean of 1 − ½·(1/32) and 1 − ½·(1/30). */
const OFFSET = 0.9677083;

/** Φ⁻¹(p) of the standard normal: Acklam's rational approximation, then one Halley step on erfc. */
function normalQuantile(p: number): number {
  const a = [-3.969683028665376e1, 2.209460984245205e2, -2.759285104469687e2, 1.38357751867269e2, -3.066479806614716e1, 2.506628277459239];
  const b = [-5.447609879822406e1, 1.615858368580409e2, -1.556989798598866e2, 6.680131188771972e1, -1.328068155288572e1];
  const c = [-7.784894002430293e-3, -3.223964580411365e-1, -2.400758277161838, -2.549732539343734, 4.374664141464968, 2.938163982698783];
  const d = [7.784695709041462e-3, 3.224671290700398e-1, 2.445134137142996, 3.754408661907416];
  const tail = (q: number) => (((((c[0] * q + c[1]) * q + c[2]) * q + c[3]) * q + c[4]) * q + c[5]) / ((((d[0] * q + d[1]) * q + d[2]) * q + d[3]) * q + 1);
  let x: number;
  if (p < 0.02425) x = tail(Math.sqrt(-2 * Math.log(p)));
  else if (p > 1 - 0.02425) x = -tail(Math.sqrt(-2 * Math.log(1 - p)));
  else {
    const q = p - 0.5;
    const r = q * q;
    x = ((((((a[0] * r + a[1]) * r + a[2]) * r + a[3]) * r + a[4]) * r + a[5]) * q) / (((((b[0] * r + b[1]) * r + b[2]) * r + b[3]) * r + b[4]) * r + 1);
  }
  // Acklam's relative error is ~1e-9; one Halley step on Φ(x) − p brings it to double precision.
  const e = 0.5 * erfc(-x / Math.SQRT2) - p;
  const u = e * Math.sqrt(2 * Math.PI) * Math.exp((x * x) / 2);
  return x - u / (1 + (x * u) / 2);
}

/** erfc(x), near double precision: the Chebyshev fit of Numerical Recipes (3rd ed., Erf::erfccheb). */
function erfc(x: number): number {
  const cof = [
    -1.3026537197817094, 6.4196979235649026e-1, 1.9476473204185836e-2, -9.561514786808631e-3, -9.46595344482036e-4, 3.66839497852761e-4,
    4.2523324806907e-5, -2.0278578112534e-5, -1.624290004647e-6, 1.30365583558e-6, 1.5626441722e-8, -8.5238095915e-8, 6.529054439e-9,
    5.059343495e-9, -9.91364156e-10, -2.27365122e-10, 9.6467911e-11, 2.394038e-12, -6.886027e-12, 8.94487e-13, 3.13092e-13,
    -1.12708e-13, 3.81e-16, 7.106e-15, -1.523e-15, -9.4e-17, 1.21e-16, -2.8e-17,
  ];
  const z = Math.abs(x);
  const t = 2 / (2 + z);
  const ty = 4 * t - 2;
  let d = 0;
  let dd = 0;
  for (let j = cof.length - 1; j > 0; j--) {
    const tmp = d;
    d = ty * d - dd + cof[j];
    dd = tmp;
  }
  const r = t * Math.exp(-z * z + 0.5 * (cof[0] + ty * d) - dd);
  return x >= 0 ? r : 2 - r;
}

/** `count` points evenly spaced from `from` to `to` inclusive (numpy's linspace). */
function linspace(from: number, to: number, count: number): number[] {
  return Array.from({ length: count }, (_, i) => from + ((to - from) * i) / (count - 1));
}

/** create_normal_map(offset, use_extra_value=True): each level with the probability it came from. */
function normalMap(offset: number): { p: number | null; z: number; level: number }[] {
  const pos = linspace(offset, 0.5, 9).slice(0, -1).map((p) => ({ p, z: normalQuantile(p) }));
  const neg = linspace(offset, 0.5, 8).slice(0, -1).map((p) => ({ p, z: -normalQuantile(p) }));
  const all = [...pos, { p: null, z: 0 }, ...neg].sort((x, y) => x.z - y.z);
  const top = Math.max(...all.map((l) => Math.abs(l.z)));
  return all.map((l) => ({ ...l, level: l.z / top }));
}

function fillTable(): void {
  const body = document.querySelector('#nf4-table tbody') as HTMLTableSectionElement;
  const levels = normalMap(OFFSET);
  let worst = 0;
  levels.forEach((l, code) => {
    const diff = l.level - PUBLISHED[code];
    worst = Math.max(worst, Math.abs(diff));
    const row = body.insertRow();
    Object.assign(row.dataset, { code: String(code), computed: String(l.level), published: String(PUBLISHED[code]) });
    const cells = [String(code), l.p === null ? '0 (added)' : `${l.z.toFixed(6)} (${l.z < 0 ? '−' : ''}Φ⁻¹(${l.p.toFixed(6)}))`, l.level.toFixed(7), PUBLISHED[code].toFixed(7), diff.toExponential(1)];
    for (const text of cells) row.insertCell().textContent = text;
  });
  const status = document.getElementById('nf4-status') as HTMLElement;
  status.dataset.worst = String(worst);
  status.textContent = `Largest difference from the published table: ${worst.toExponential(1)} (the published values are float32).`;
}

const params = new URLSearchParams(location.search);
const tensor = document.getElementById('tensor') as HTMLSelectElement;
const block = document.getElementById('block') as HTMLInputElement;
const placement = document.getElementById('placement') as QlNf4Placement;
pickOption(tensor, params.get('tensor'));
block.value = String(Math.max(0, Math.floor(Number(params.get('block'))) || 0));

function apply(): void {
  keepInUrl({ tensor: tensor.value, block: block.value });
  placement.src = MODEL;
  placement.tensor = tensor.value;
  placement.block = Math.max(0, Math.floor(Number(block.value)) || 0);
}

fillTable();
tensor.addEventListener('change', apply);
block.addEventListener('change', apply);
apply();
