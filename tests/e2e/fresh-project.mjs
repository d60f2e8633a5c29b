// A fresh npm project outside the repository, installed offline: the package test's stand-in for
// a user's app. The npm cache holds the tarballs of the repository's locked dependencies but not
// every registry document npm would read to resolve a version range, so the project gets a
// lockfile cut from the repository's (the same versions and integrity hashes), and
// `npm ci --offline` takes the tarballs from the cache; then the packed quantlab tarball is
// installed as a user would, `npm install --offline <tgz>`.
import { execFileSync } from 'node:child_process';
import { mkdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { repoRoot } from './harness.mjs';

/**
 * Runs `npm args` in `cwd`; throws with npm's output when it fails. Without the `npm_*` variables
 * an enclosing `npm test` sets (its prefix and lifecycle would point the fresh project's npm at
 * the repository).
 */
export function npm(cwd, args) {
  const env = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.toLowerCase().startsWith('npm_')));
  try {
    return execFileSync('npm', args, { cwd, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'], env: { ...env, npm_config_update_notifier: 'false' } });
  } catch (error) {
    throw new Error(`npm ${args.join(' ')} failed in ${cwd}:\n${error.stdout}\n${error.stderr}`);
  }
}

/** Where `name`, required by the package at lock path `from`, is installed: node's lookup through the nested node_modules. */
function locate(packages, from, name) {
  for (let dir = from; ; ) {
    const path = `${dir ? `${dir}/` : ''}node_modules/${name}`;
    if (packages[path]) return path;
    if (!dir) return null;
    const cut = dir.lastIndexOf('/node_modules/');
    dir = cut < 0 ? '' : dir.slice(0, cut);
  }
}

/**
 * A lockfile for a project whose package.json has `devDependencies` (names pinned to the
 * repository's versions): the locked entries of those packages and everything they pull in.
 */
export function lockFor(name, devDependencies) {
  const { packages } = JSON.parse(readFileSync(join(repoRoot, 'package-lock.json'), 'utf8'));
  const picked = { '': { name, devDependencies } };
  const queue = Object.keys(devDependencies).map((dep) => locate(packages, '', dep));
  while (queue.length) {
    const path = queue.pop();
    if (!path || picked[path]) continue;
    const entry = packages[path];
    if (!entry) throw new Error(`${path} is not in the repository's package-lock.json`);
    picked[path] = entry;
    const optionalPeers = entry.peerDependenciesMeta ?? {};
    const peers = Object.keys(entry.peerDependencies ?? {}).filter((p) => !optionalPeers[p]?.optional);
    for (const dep of [...Object.keys(entry.dependencies ?? {}), ...Object.keys(entry.optionalDependencies ?? {}), ...peers]) {
      const found = locate(packages, path, dep);
      // Optional platform packages of other systems are locked without being needed here.
      if (found) queue.push(found);
      else if (!entry.optionalDependencies?.[dep]) throw new Error(`${path} needs ${dep}, which the repository's lockfile does not hold`);
    }
  }
  return { name, lockfileVersion: 3, requires: true, packages: picked };
}

/**
 * Builds the library and packs it into `dir` as a user's registry would hand it over; returns the
 * tarball's path. The build empties lib/, so test files that `node --test` runs side by side
 * (package.test.mjs, components.test.mjs) take turns: a lock directory, polled for up to 5 minutes.
 */
export function packLibrary(dir) {
  const lock = join(repoRoot, 'lib.pack-lock');
  const start = Date.now();
  for (;;) {
    try {
      mkdirSync(lock);
      break;
    } catch (error) {
      if (error.code !== 'EEXIST') throw error;
      // A lock left by a killed run is older than any build takes.
      if (Date.now() - statSync(lock).mtimeMs > 300_000) rmSync(lock, { recursive: true, force: true });
      else if (Date.now() - start > 300_000) throw new Error(`${lock} held for 5 minutes: is another test packing the library?`);
      Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 200);
    }
  }
  try {
    npm(repoRoot, ['run', 'build:lib']);
    const packed = JSON.parse(npm(repoRoot, ['pack', '--ignore-scripts', '--json', '--pack-destination', dir]))[0];
    return join(dir, packed.filename);
  } finally {
    rmSync(lock, { recursive: true, force: true });
  }
}

/** Writes package.json and its lockfile into `dir`, installs them offline, then the `tarball`. */
export function installFresh(dir, manifest, tarball) {
  const { dependencies: _omitted, ...rest } = manifest;
  writeFileSync(join(dir, 'package.json'), JSON.stringify(rest, null, 2));
  writeFileSync(join(dir, 'package-lock.json'), JSON.stringify(lockFor(rest.name, rest.devDependencies), null, 2));
  npm(dir, ['ci', '--offline', '--no-audit', '--no-fund']);
  npm(dir, ['install', '--offline', '--no-audit', '--no-fund', tarball]);
}
