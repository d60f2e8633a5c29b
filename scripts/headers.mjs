// The security headers every response of the lab carries, defined once: scripts/static.mjs
// (`npm start`'s server and the dev server's /models and /data) and web/vite.config.ts (the dev
// and preview servers) import them. The service worker's precache stores each response with
// its headers, so pages served offline keep this policy too.

/** The Content-Security-Policy, one directive per entry, each with the reason it is as wide as it is. */
const policy = [
  // Anything not named below: only this origin.
  "default-src 'self'",
  // Bundled modules only, no inline script, no eval; 'wasm-unsafe-eval' lets the page and the lab
  // worker compile the wasm core (WebAssembly.instantiate) without allowing JavaScript eval.
  "script-src 'self' 'wasm-unsafe-eval'",
  // The lab worker and the service worker are bundled files of this origin.
  "worker-src 'self'",
  // Observable Plot puts a <style> element inside every chart SVG (its class-scoped defaults), and
  // Vite's dev server injects the CSS as <style> elements, so style elements may be inline. Style
  // attributes may not: the app and Plot set styles through the CSSOM, which CSP does not govern.
  "style-src 'self'",
  "style-src-elem 'self' 'unsafe-inline'",
  "style-src-attr 'none'",
  // The "open a URL" box downloads whatever https:// model URL the user types (the host cannot be
  // known in advance); everything else the page fetches is this origin.
  "connect-src 'self' https:",
  // Icons are files of this origin; nothing draws from data: or blob: images.
  "img-src 'self'",
  "font-src 'self'",
  "manifest-src 'self'",
  "object-src 'none'",
  "base-uri 'none'",
  "form-action 'self'",
  // Only settable as a header (a <meta> policy ignores it): no site may frame the lab.
  "frame-ancestors 'none'",
].join('; ');

/**
 * Headers for every response. COOP/COEP make the page cross-origin isolated, so it may share
 * memory (SharedArrayBuffer) with its worker: the cancel flags today, wasm threads later.
 */
export const securityHeaders = Object.freeze({
  'Content-Security-Policy': policy,
  'Cross-Origin-Opener-Policy': 'same-origin',
  'Cross-Origin-Embedder-Policy': 'require-corp',
  'X-Content-Type-Options': 'nosniff',
  'Referrer-Policy': 'no-referrer',
});
