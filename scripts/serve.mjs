// Serves the built lab (web/dist) and the downloaded model/data on 127.0.0.1.
// Usage: node scripts/serve.mjs [--port N] [--root DIR]   (PORT env also works; 0 picks a free port;
// --root serves another built site, e.g. an example app in tests/e2e/package.test.mjs)
import { createServer } from 'node:http';
import { existsSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { repoRoot, resolveInside, sendFile, serveRepoFile } from './static.mjs';

const argRoot = process.argv.indexOf('--root');
const dist = argRoot > 0 ? resolve(process.argv[argRoot + 1]) : join(repoRoot, 'web', 'dist');
const argPort = process.argv.indexOf('--port');
const port = Number(argPort > 0 ? process.argv[argPort + 1] : process.env.PORT ?? 5173);

if (!existsSync(join(dist, 'index.html'))) {
  console.error(argRoot > 0 ? `quantlab: ${dist} has no index.html` : 'quantlab: web/dist is missing; run `npm start` (it builds the lab first).');
  process.exit(1);
}

const server = createServer((req, res) => {
  if (req.method !== 'GET' && req.method !== 'HEAD') {
    res.writeHead(405).end();
    return;
  }
  if (serveRepoFile(req, res)) return;
  const urlPath = (req.url ?? '/').split('?')[0];
  const path = resolveInside(dist, urlPath === '/' ? '/index.html' : urlPath);
  if (path && sendFile(res, path)) return;
  res.writeHead(404, { 'Content-Type': 'text/plain' }).end('not found\n');
});

server.on('error', (error) => {
  if (error.code === 'EADDRINUSE') {
    console.error(`quantlab: port ${port} is in use; try PORT=${port + 1} npm start`);
  } else {
    console.error(`quantlab: server failed: ${error.message}`);
  }
  process.exit(1);
});

server.listen(port, '127.0.0.1', () => {
  const { port: actual } = server.address();
  console.log(`quantlab lab: http://127.0.0.1:${actual}/`);
});
