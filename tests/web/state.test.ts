// The URL state (web/src/state.ts) without a DOM: what the page writes into the query string is
// what a reloaded or shared link reads back, for the generate panel's KV cache select in particular.
import { describe, expect, test } from 'vitest';
import { ACTIVATION_PRECISIONS, KV_CACHE_FORMATS } from '../../web/src/messages';
import { UrlState } from '../../web/src/state';

/** A page's state over `search`, recording each query string it writes (what replaceState gets). */
function page(search: string) {
  const written: string[] = [];
  const state = new UrlState(search, (q) => written.push(q));
  return { state, written, url: () => written.at(-1) ?? search.replace(/^\?/, '') };
}

describe('KV cache in the URL', () => {
  test('each format round-trips through the query string, next to the other parameters', () => {
    for (const kv of KV_CACHE_FORMATS) {
      const a = page('?format=q4_k&prompt=The+sea');
      a.state.setKvCache(kv);
      const b = page(`?${a.url()}`);
      expect(b.state.getKvCache()).toBe(kv);
      expect(b.state.get('format')).toBe('q4_k');
      expect(b.state.get('prompt')).toBe('The sea');
    }
  });

  test('the default f32 is left out of the link, and choosing it removes an earlier kv', () => {
    const a = page('?kv=int8&panel=generate');
    expect(a.state.getKvCache()).toBe('int8');
    a.state.setKvCache('f32');
    expect(a.url()).toBe('panel=generate');
    expect(page(`?${a.url()}`).state.getKvCache()).toBe('f32');
    a.state.setKvCache('f16');
    expect(a.url()).toBe('panel=generate&kv=f16');
  });

  test('a missing or unknown value reads as f32 (a hand-edited or stale link)', () => {
    for (const search of ['', '?kv=', '?kv=q4', '?kv=F16', '?kv=int8%20']) expect(page(search).state.getKvCache()).toBe('f32');
  });
});

describe('activations in the URL', () => {
  test('each precision round-trips next to the KV cache; f32 is left out of the link; junk reads as f32', () => {
    for (const act of ACTIVATION_PRECISIONS) {
      const a = page('?kv=int8&panel=generate');
      a.state.setActivations(act);
      const b = page(`?${a.url()}`);
      expect(b.state.getActivations()).toBe(act);
      expect(b.state.getKvCache()).toBe('int8');
      expect(a.url()).toBe(act === 'f32' ? 'kv=int8&panel=generate' : `kv=int8&panel=generate&act=${act}`);
    }
    for (const search of ['', '?act=', '?act=bf16', '?act=F16']) expect(page(search).state.getActivations()).toBe('f32');
  });
});

describe('other URL state', () => {
  test('set/get/getInt round-trip and clearing', () => {
    const a = page('?group=64');
    expect(a.state.getInt('group', 0)).toBe(64);
    expect(a.state.getInt('block', 7)).toBe(7);
    a.state.set('tensor', 'blk.0.attn_q.weight');
    a.state.set('group', null);
    const b = page(`?${a.url()}`);
    expect(b.state.get('tensor')).toBe('blk.0.attn_q.weight');
    expect(b.state.getInt('group', 0)).toBe(0);
    expect(page('?group=-3').state.getInt('group', 5)).toBe(5);
  });
});
