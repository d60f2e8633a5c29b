// Static file serving shared by `npm start` (scripts/serve.mjs) and Vite's dev server:
// /models/* and /data/* come from the repository's git-ignored download folders.
import { createReadStream, statSync } from 'node:fs';
import { extname, join, normalize, sep } from 'node:path';
import { fileURLToPath } from 'node:url';
import { securityHeaders } from './headers.mjs';

export const repoRoot = fileURLToPath(new URL('..', import.meta.url));

const types = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.mjs': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.json': 'application/json',
  '.webmanifest': 'application/manifest+json',
  '.wasm': 'application/wasm',
  '.svg': 'image/svg+xml',
  '.png': 'image/png',
  '.ico': 'image/x-icon',
  '.txt': 'text/plain; charset=utf-8',
  '.gguf': 'application/octet-stream',
};

/** Resolves `urlPath` inside `root`, refusing anything that escapes it. */
export function resolveInside(root, urlPath) {
  let decoded;
  try {
    decoded = decodeURIComponent(urlPath.split('?')[0]);
  } catch {
    return null;
  }
  const path = normalize(join(root, decoded));
  return path === normalize(root) || path.startsWith(normalize(root + sep)) ? path : null;
}

/** Sends the file at `path` (with Content-Length, so the page can show progress). */
export function sendFile(res, path) {
  let stat;
  try {
    stat = statSync(path);
  } catch {
    return false;
  }
  if (!stat.isFile()) return false;
  res.writeHead(200, {
    'Content-Type': types[extname(path)] ?? 'application/octet-stream',
    'Content-Length': stat.size,
    'Cache-Control': 'no-cache',
    ...securityHeaders,
  });
  createReadStream(path).pipe(res);
  return true;
}

/** Serves /models/* and /data/* from the repository; returns false if the URL is not one of them. */
export function serveRepoFile(req, res) {
  const url = req.url ?? '/';
  const match = /^\/(models|data)\//.exec(url);
  if (!match) return false;
  const path = resolveInside(join(repoRoot, match[1]), url.slice(match[0].length - 1));
  if (path && sendFile(res, path)) return true;
  res.writeHead(404, { 'Content-Type': 'text/plain' });
  res.end(`not found: ${url} (run npm start once to download the default model)\n`);
  return true;
}
