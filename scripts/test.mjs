#!/usr/bin/env node
// `npm test`: transpiles src/ and test/ to JavaScript once (esbuild, about a second, no type-checking: `npm run
// typecheck` does that), then runs tap on the suites of test/suites/. Arguments go to tap; a test file may be named by
// its TypeScript path (`npm test -- test/users.test.ts`). Stack traces point at the TypeScript sources.
//
// Why: each tap test process costs about 5 s of CPU before its first test (tap, the app's modules, the JIT warming
// up), and loading TypeScript through a loader cost 2 s more. A suite imports several test files into one process;
// every test/*.test.ts must belong to exactly one suite, which this script checks. tap starts the suites in the order of
// their names: they are numbered longest first (CI's timings), so that the last ones to start are short.
import { spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { build } from 'esbuild';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const out = path.join(root, '.test-build');

function sources(dir) {
  return fs
    .readdirSync(path.join(root, dir), { withFileTypes: true, recursive: true })
    .filter((e) => e.isFile() && e.name.endsWith('.ts') && !e.name.endsWith('.d.ts'))
    .map((e) => path.join(e.parentPath ?? e.path, e.name));
}

const testFiles = fs.readdirSync(path.join(root, 'test')).filter((f) => f.endsWith('.test.ts'));
const suiteDir = path.join(root, 'test/suites');
const owners = new Map(testFiles.map((f) => [f, []]));
for (const suite of fs.readdirSync(suiteDir).filter((f) => f.endsWith('.test.ts'))) {
  for (const [, file] of fs.readFileSync(path.join(suiteDir, suite), 'utf8').matchAll(/^import '\.\.\/([^']+)\.js';$/gm)) {
    owners.get(`${file}.ts`)?.push(suite);
  }
}
const misplaced = [...owners].filter(([, suites]) => suites.length !== 1);
if (misplaced.length) {
  for (const [file, suites] of misplaced)
    console.error(
      `test/${file} is imported by ${suites.length ? suites.join(', ') : 'no suite'}: give it exactly one in test/suites/`,
    );
  process.exit(1);
}

fs.rmSync(out, { recursive: true, force: true });
await build({
  entryPoints: [...sources('src'), ...sources('test')],
  outdir: out,
  outbase: root,
  format: 'esm',
  platform: 'node',
  target: 'node20',
  sourcemap: 'inline',
  sourcesContent: false,
  logLevel: 'warning',
});
// Files the code finds next to itself (src/db/migrate.ts: ../../migrations; src/openapi-export.ts: ../openapi).
for (const dir of ['migrations', 'openapi']) fs.symlinkSync(path.join('..', dir), path.join(out, dir));

// tap rebuilds its test class when .taprc's plugins differ from the installed one (after `npm install`), but the run
// that rebuilds still starts its test processes with the old class's loaders: on a fresh clone, every suite of the
// first run ran under the TypeScript plugin's ESM loader that .taprc removes, and so did the servers they started (a CI
// run in which one suite stalled past Fastify's 10 s plugin timeout was such a first run). The class is rebuilt first when it holds a plugin .taprc removes.
const builtClass = path.join(root, 'node_modules/@tapjs/test/test-built/dist/esm/index.js');
const removed = [...fs.readFileSync(path.join(root, '.taprc'), 'utf8').matchAll(/^\s*-\s*'!(@[^']+)'/gm)].map((m) => m[1]);
const signature = /export const signature = `([^`]*)`/.exec(fs.readFileSync(builtClass, 'utf8'))?.[1].split('\n') ?? [];
if (removed.some((plugin) => signature.includes(plugin))) {
  const built = spawnSync(path.join(root, 'node_modules/.bin/tap'), ['build'], { cwd: root, stdio: 'inherit' });
  if (built.status !== 0) process.exit(built.status ?? 1);
}

// tap's default leaves one CPU free, which on two cores is one test process at a time.
const jobs = process.argv.some((a) => /^(-j|--jobs)/.test(a)) ? [] : [`--jobs=${os.availableParallelism()}`];
const args = [...jobs, ...process.argv.slice(2)].map((a) =>
  /^(\.\/)?test\/.*\.ts$/.test(a) ? path.join('.test-build', a.replace(/^\.\//, '').replace(/\.ts$/, '.js')) : a,
);
const child = spawn(path.join(root, 'node_modules/.bin/tap'), args, {
  cwd: root,
  stdio: 'inherit',
});
child.on('exit', (code, signal) => process.exit(signal ? 1 : (code ?? 1)));
