// Shared by the browser benchmarks (scripts/bench-browser.mjs, scripts/bench-gpu-browser.mjs):
// a local static server for a bench page and the wasm core, and one headless Chromium (the flags
// of tests/e2e/harness.mjs: SwiftShader WebGPU) on it, with every request outside the server
// aborted and recorded (nothing is downloaded).
import { createServer } from 'node:http';
import { repoRoot, resolveInside, sendFile, serveRepoFile } from '../static.mjs';
import { launchBrowser } from '../../tests/e2e/harness.mjs';

/**
 * Serves `roots` (URL prefix → folder; every response carries COOP/COEP via static.mjs, so the
 * page is cross-origin isolated), opens `pagePath` and waits for `window.benchReady`. Returns
 * the page, the origin, the aborted outside requests, the page errors and `close()`.
 */
export async function openBenchPage(roots, pagePath) {
  const server = createServer((req, res) => {
    if (serveRepoFile(req, res)) return;
    const url = (req.url ?? '/').split('?')[0];
    for (const [prefix, root] of Object.entries(roots)) {
      if (url.startsWith(prefix)) {
        const path = resolveInside(root, url.slice(prefix.length - 1));
        if (path && sendFile(res, path)) return;
      }
    }
    res.writeHead(404, { 'Content-Type': 'text/plain' }).end('not found\n');
  });
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
  const origin = `http://127.0.0.1:${server.address().port}`;
  const browser = await launchBrowser();
  const blocked = [];
  const pageErrors = [];
  const close = async () => {
    await browser.close();
    server.close();
  };
  try {
    const context = await browser.newContext();
    await context.route('**/*', (route) => {
      const url = route.request().url();
      if (url.startsWith(origin) || url.startsWith('blob:') || url.startsWith('data:')) return route.continue();
      blocked.push(url);
      return route.abort();
    });
    const page = await context.newPage();
    page.on('pageerror', (e) => pageErrors.push(e.message));
    await page.goto(`${origin}${pagePath}`);
    await page.waitForFunction(() => window.benchReady === true, null, { timeout: 60_000 });
    page.setDefaultTimeout(0);
    return { page, origin, blocked, pageErrors, close };
  } catch (error) {
    await close();
    throw error;
  }
}

export { repoRoot };
