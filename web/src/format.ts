// Number formatting shared by the panels. Pure functions (unit-tested in tests/web).

export function formatBytes(bytes: number): string {
  if (!Number.isFinite(bytes) || bytes < 0) return '—';
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let value = bytes;
  let unit = 0;
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit++;
  }
  return unit === 0 ? `${bytes} B` : `${value.toFixed(value >= 100 ? 0 : value >= 10 ? 1 : 2)} ${units[unit]}`;
}

export function formatCount(n: number): string {
  return Math.round(n).toLocaleString('en-US');
}

/** 134515008 → "134.5M" */
export function formatParams(n: number): string {
  if (n >= 1e9) return `${(n / 1e9).toFixed(2)}B`;
  if (n >= 1e6) return `${(n / 1e6).toFixed(1)}M`;
  if (n >= 1e3) return `${(n / 1e3).toFixed(1)}K`;
  return String(n);
}

/** ggml dims (row length first) as "576 × 576". */
export function formatShape(dims: number[]): string {
  return dims.join(' × ');
}

export function formatBpw(bpw: number): string {
  return Number.isInteger(bpw) ? String(bpw) : bpw.toFixed(bpw * 16 === Math.round(bpw * 16) ? 4 : 3).replace(/0+$/, '');
}
