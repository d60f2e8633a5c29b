// Shared pieces of the browser end-to-end tests: the lab server, headless Chromium with
// software WebGPU (SwiftShader), and a folder for screenshots.
import { spawn } from 'node:child_process';
import assert from 'node:assert/strict';
import { mkdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { after, before } from 'node:test';
import { chromium } from 'playwright-core';

export const repoRoot = fileURLToPath(new URL('../..', import.meta.url));
export const artifacts = join(repoRoot, 'test-artifacts');
mkdirSync(artifacts, { recursive: true });

/** Starts scripts/serve.mjs on a free port (serving `root`, by default the built lab); resolves with its base URL and a stop function. */
export function startServer(root) {
  const args = [join(repoRoot, 'scripts/serve.mjs'), '--port', '0', ...(root ? ['--root', root] : [])];
  const child = spawn(process.execPath, args, { stdio: ['ignore', 'pipe', 'pipe'] });
  return new Promise((resolve, reject) => {
    let output = '';
    const timer = setTimeout(() => reject(new Error(`server did not start: ${output}`)), 15_000);
    const onData = (chunk) => {
      output += chunk;
      const m = /http:\/\/127\.0\.0\.1:(\d+)\//.exec(output);
      if (m) {
        clearTimeout(timer);
        resolve({ url: m[0], stop: () => child.kill() });
      }
    };
    child.stdout.on('data', onData);
    child.stderr.on('data', (c) => (output += c));
    child.on('exit', (code) => reject(new Error(`server exited (${code}): ${output}`)));
  });
}

/** Headless Debian Chromium with WebGPU on SwiftShader (no GPU on this machine or in CI), plus `extraArgs`. */
/** The file a click makes the page download: its suggested name and bytes. */
export async function downloadOf(page, click) {
  const [download] = await Promise.all([page.waitForEvent('download', { timeout: 300_000 }), click()]);
  return { name: download.suggestedFilename(), bytes: readFileSync(await download.path()) };
}

export async function launchBrowser(extraArgs = []) {
  return chromium.launch({
    executablePath: process.env.CHROMIUM ?? '/usr/bin/chromium',
    headless: true,
    args: [
      '--no-sandbox',
      '--disable-quic',
      '--no-first-run',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
      '--enable-unsafe-webgpu',
      '--enable-features=Vulkan',
      '--use-vulkan=swiftshader',
      '--use-angle=swiftshader',
      ...extraArgs,
    ],
  });
}

/** A page that records console errors and uncaught exceptions, so tests can assert there are none. */
export async function openPage(browser, url) {
  const page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
  const problems = [];
  page.on('pageerror', (e) => problems.push(`pageerror: ${e.message}`));
  page.on('console', (m) => m.type() === 'error' && problems.push(`console: ${m.text()}`));
  await page.goto(url);
  return { page, problems };
}

/** One lab server and browser per test file: `const lab = useLab();` then `lab.server.url`, `lab.browser`. */
export function useLab() {
  const lab = { server: null, browser: null };
  before(async () => {
    lab.server = await startServer();
    lab.browser = await launchBrowser();
  });
  after(async () => {
    await lab.browser?.close();
    lab.server?.stop();
  });
  return lab;
}

/**
 * Runs the generation panel with `device` (auto | cpu | webgpu) and waits for it to finish; asserts
 * no panel error. Returns the token ids and text of both sides, the device note (which backend ran
 * and why), the WebGPU kernels of the quantized side (null when it ran on the CPU) and the KV
 * cache note (which format the run used).
 */
export async function generateOn(page, device) {
  await page.selectOption('#gen-device', device);
  await page.evaluate(() => delete document.querySelector('#generate-body').dataset.divergence);
  await page.click('#gen-run');
  await page.waitForFunction(
    () => document.querySelector('#generate-body')?.dataset.divergence || document.querySelector('#generate-panel > .error:not([hidden])'),
    null,
    { timeout: 1_200_000 },
  );
  const error = page.locator('#generate-panel > .error:not([hidden])');
  assert.equal(await error.count(), 0, (await error.count()) ? await error.innerText() : '');
  const ids = (sel) => page.locator(`${sel} span`).evaluateAll((spans) => spans.map((s) => Number(s.dataset.token)));
  const note = page.locator('#gen-device-note');
  return {
    base: await ids('#gen-base'),
    quantized: await ids('#gen-quantized'),
    text: await page.locator('#gen-base').innerText(),
    quantizedText: await page.locator('#gen-quantized').innerText(),
    note: await note.innerText(),
    used: await note.getAttribute('data-used'),
    adapter: await note.getAttribute('data-adapter'),
    kernels: await page.locator('#gen-quantized-stats').getAttribute('data-kernels'),
    kvNote: await page.locator('#gen-kv-note').innerText(),
    kvUsed: await page.locator('#gen-kv-note').getAttribute('data-kv-cache'),
    actNote: await page.locator('#gen-act-note').innerText(),
    actUsed: await page.locator('#gen-act-note').getAttribute('data-activations'),
  };
}
