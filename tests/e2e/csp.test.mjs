// The strict page (#17): every response carries the Content-Security-Policy and COOP/COEP of
// scripts/headers.mjs, the page is cross-origin isolated, loading the default model breaks no rule
// of the policy (online and from the service worker offline), and the policy is really enforced.
// And hostile text in a model file stays text: nothing of it runs or even becomes markup.
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { test } from 'node:test';
import { securityHeaders } from '../../scripts/headers.mjs';
import { artifacts, useLab } from './harness.mjs';
import { buildGguf } from './tiny-gguf.mjs';

const lab = useLab();

/**
 * A page in its own context that records every CSP violation the document reports (an init
 * script, which the policy does not govern, adds the listener before the lab's own scripts run)
 * and every console error and uncaught exception (a worker's violations show up as console errors).
 */
async function watchedPage() {
  const context = await lab.browser.newContext({ viewport: { width: 1280, height: 900 } });
  await context.addInitScript(() => {
    window.__violations = [];
    document.addEventListener('securitypolicyviolation', (e) => {
      window.__violations.push(`${e.effectiveDirective} blocked ${e.blockedURI || '(inline)'} at ${e.sourceFile}:${e.lineNumber}`);
    });
  });
  const page = await context.newPage();
  const problems = [];
  page.on('pageerror', (e) => problems.push(`pageerror: ${e.message}`));
  page.on('console', (m) => m.type() === 'error' && problems.push(`console: ${m.text()}`));
  const violations = () => page.evaluate(() => window.__violations);
  return { context, page, problems, violations };
}

/** Adds an inline <script> through the DOM: under the policy it must not run, and is reported. */
async function inlineScriptRuns(page) {
  return page.evaluate(async () => {
    const script = document.createElement('script');
    script.textContent = 'window.__inlineRan = true;';
    document.body.append(script);
    await new Promise((resolve) => setTimeout(resolve, 100));
    return window.__inlineRan === true;
  });
}

function assertHeaders(headers, what) {
  for (const [name, value] of Object.entries(securityHeaders)) {
    assert.equal(headers[name.toLowerCase()], value, `${what}: ${name}`);
  }
}

test('every response carries the policy and the isolation headers', { timeout: 30_000 }, async () => {
  const index = await fetch(lab.server.url);
  const html = await index.text();
  const paths = ['', 'sw.js', 'manifest.webmanifest', 'icon.svg', 'models/SmolLM2-135M-Instruct.Q4_1.gguf'];
  // The entry script and whatever the build named the wasm core and the worker.
  paths.push(...[...html.matchAll(/src="\.\/(assets\/[^"]+\.js)"/g)].map((m) => m[1]));
  assert.ok(paths.length > 5, 'index.html names its entry script');
  for (const path of paths) {
    const response = await fetch(`${lab.server.url}${path}`, { method: 'HEAD' });
    assert.equal(response.status, 200, path);
    assertHeaders(Object.fromEntries(response.headers), path || 'index.html');
  }
  // No inline script or style attribute in the page itself (the policy would refuse them).
  assert.doesNotMatch(html, /<script(?![^>]*\bsrc=)[^>]*>/);
  assert.doesNotMatch(html, /\sstyle=|\son[a-z]+=/i);
  const policy = securityHeaders['Content-Security-Policy'];
  assert.match(policy, /(^|; )default-src 'self'(;|$)/);
  assert.match(policy, /(^|; )script-src 'self' 'wasm-unsafe-eval'(;|$)/);
  assert.match(policy, /(^|; )frame-ancestors 'none'(;|$)/);
});

test('the lab loads the default model under the policy, online and offline, cross-origin isolated', { timeout: 300_000 }, async () => {
  const { context, page, problems, violations } = await watchedPage();
  const response = await page.goto(lab.server.url);
  assertHeaders(await response.allHeaders(), 'the page');
  await page.waitForSelector('#tensor-table tbody tr, #error:not([hidden])', { timeout: 120_000 });
  assert.equal(await page.locator('#error').isHidden(), true, await page.locator('#error').innerText());
  assert.equal(await page.evaluate(() => crossOriginIsolated), true);
  // A chart (Plot's <style> element) and the service worker's install run under the policy too.
  await page.locator('tr[data-tensor="blk.0.attn_q.weight"]').click();
  await page.waitForSelector('#histogram svg', { timeout: 60_000 });
  await page.waitForFunction(() => document.querySelector('#offline-status')?.dataset.state === 'ready', null, { timeout: 120_000 });
  await page.waitForFunction(() => navigator.serviceWorker.controller !== null, null, { timeout: 30_000 });
  assert.deepEqual(await violations(), []);
  assert.deepEqual(problems, []);

  // The policy is enforced, not just sent: an inline script is refused and reported.
  assert.equal(await inlineScriptRuns(page), false);
  assert.match((await violations()).join('\n'), /script-src-elem blocked inline/);

  // Offline, the service worker answers the navigation from its cache, headers included.
  await context.setOffline(true);
  const offline = await page.goto(`${lab.server.url}?tensor=blk.0.attn_k.weight`);
  assert.equal(offline.fromServiceWorker(), true);
  assertHeaders(await offline.allHeaders(), 'the page served offline');
  await page.waitForSelector('#histogram svg', { timeout: 120_000 });
  assert.equal(await page.evaluate(() => crossOriginIsolated), true);
  assert.deepEqual(await violations(), []);
  assert.equal(await inlineScriptRuns(page), false);
  assert.deepEqual(problems.filter((p) => !/Content Security Policy/.test(p)), []);
  await context.close();
});

test('HTML and script in metadata keys, values and tensor names show as text and never run', { timeout: 120_000 }, async () => {
  const payloads = {
    img: `<img src=x onerror="window.__xss='img'">`,
    script: `<script>window.__xss='script'</script>`,
    svg: `<svg onload="window.__xss='svg'"></svg>`,
    iframe: `"><iframe srcdoc="<script>parent.__xss='iframe'</script>"></iframe>`,
    link: `<a href="javascript:window.__xss='link'">click</a>`,
  };
  const values = Array.from({ length: 64 }, (_, i) => Math.sin(i));
  const bytes = buildGguf({
    metadata: {
      'general.name': payloads.img,
      'general.description': payloads.script,
      'general.license': payloads.iframe,
      [`general.${payloads.svg}`]: payloads.link,
    },
    tensors: [
      { name: `${payloads.img}.weight`, dims: [64], values },
      { name: payloads.script, dims: [64], values },
    ],
  });
  const { context, page, problems, violations } = await watchedPage();
  await page.goto(`${lab.server.url}?model=none`);
  await page.waitForFunction(() => document.querySelector('#core-status')?.textContent?.includes('core'));
  await page.setInputFiles('#file-input', { name: `${payloads.svg}.gguf`, mimeType: 'application/octet-stream', buffer: bytes });
  await page.waitForSelector('#model-name');
  assert.equal(await page.locator('#error').isHidden(), true, await page.locator('#error').innerText());

  assert.equal(await page.locator('#model-name').textContent(), payloads.img);
  const metadata = await page.locator('#metadata').textContent();
  for (const text of [payloads.script, payloads.iframe, payloads.link, `general.${payloads.svg}`]) assert.ok(metadata.includes(text), text);
  const names = await page.locator('#tensor-table tbody tr td:first-child').allTextContents();
  assert.deepEqual(names.sort(), [`${payloads.img}.weight`, payloads.script].sort());
  await page.locator('#tensor-table tbody tr').first().click();
  await page.waitForSelector('#histogram svg');
  assert.match(await page.locator('#histogram-title').textContent(), /— (<img|<script)/);

  // None of it became markup: no element the payloads describe exists, so nothing could run, and
  // the policy never had to refuse anything.
  const planted = await page.evaluate(() => ({
    img: document.querySelectorAll('img[src="x"], img[onerror]').length,
    script: [...document.scripts].filter((s) => s.textContent.includes('__xss')).length,
    handlers: document.querySelectorAll('[onload], [onerror], iframe, a[href^="javascript:"]').length,
    flag: window.__xss ?? null,
  }));
  assert.deepEqual(planted, { img: 0, script: 0, handlers: 0, flag: null });
  assert.deepEqual(await violations(), []);
  assert.deepEqual(problems, []);
  await page.screenshot({ path: join(artifacts, 'csp-xss-as-text.png'), fullPage: false });
  await context.close();
});
