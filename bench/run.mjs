/* global AbortSignal */
/**
 * `npm run bench`: starts the built server (dist/server.js) on a free loopback port, on a temporary embedded database
 * (or on DATABASE_URL when set), loads it with autocannon and prints, for each read path, requests per second and p99
 * latency, each also as a ratio to the baseline GET /health/live measured in the same run: these machines are noisy,
 * compare ratios between runs, not absolute numbers. API calls carry an OAuth2 bearer token, as real clients do.
 * Bounded (well under a minute) and leaves nothing running.
 */
import { execFile, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import autocannon from 'autocannon';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
/** Load per path; less (down to MIN_SECONDS) when a slow start left too little of the time budget. */
const SECONDS = 5;
const MIN_SECONDS = 2;
const CONNECTIONS = 10;
const WARMUP_SECONDS = 2;
const ENTRIES = 10;
/** The whole run, startup and teardown included, stops here whatever happens. */
const WATCHDOG_MS = 58_000;

const databaseUrl = process.env.DATABASE_URL || undefined;
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'pcc-bench-'));
// A fresh service each run on a shared PostgreSQL; the embedded database is new anyway.
const service = databaseUrl ? `pcc-bench-${randomBytes(4).toString('hex')}` : 'pcc-bench';
const env = {
  ...process.env,
  DATA_DIR: path.join(tmp, 'data'),
  HOST: '127.0.0.1',
  // Measure the service, not the writing of one info line per request to a file.
  LOG_LEVEL: 'warn',
  // The rate limit (per client IP) would otherwise answer 429 to the load generator within a second.
  RATE_LIMIT_PER_MINUTE: '1000000',
};
let server;
let authorization = '';
const started = Date.now();

async function main() {
  if (!fs.existsSync(path.join(ROOT, 'dist/server.js'))) throw new Error('dist/server.js is missing: run `npm run build`');

  // PostgreSQL needs SECRET_KEYS and SMS_PROVIDER: when unset, a throwaway key and `log` (nothing is sent here) serve.
  if (databaseUrl && !env.SECRET_KEYS) env.SECRET_KEYS = (await cli('keys', 'new')).SECRET_KEYS;
  if (databaseUrl && !env.SMS_PROVIDER) env.SMS_PROVIDER = 'log';
  // The CLI first: the embedded database belongs to one process at a time.
  await cli('service', 'create', service, '--account', 'bench');
  const client = await cli('oauth-client', 'create', '--account', 'bench', '--name', 'bench');

  const port = await freePort();
  const base = `http://127.0.0.1:${port}`;
  const log = fs.openSync(path.join(tmp, 'server.log'), 'a');
  server = spawn(process.execPath, ['dist/server.js'], {
    cwd: ROOT,
    env: { ...env, PORT: String(port) },
    stdio: ['ignore', log, log],
  });
  fs.closeSync(log);
  await waitReady(base);
  const token = await call('POST', `${base}/1.0/auth/oauth2/token`, {
    grant_type: 'client_credentials',
    client_id: client.clientId,
    client_secret: client.clientSecret,
  });
  authorization = `Bearer ${token.access_token}`;

  // Something to read: a few whitelist entries, each enabled by its task.
  const whitelist = `${base}/1.0/dedicatedCloud/${service}/twoFAWhitelist`;
  let taskId;
  for (let i = 1; i <= ENTRIES; i++) {
    const task = await call('POST', whitelist, { ip: `198.51.100.${i}/32`, description: `bench entry ${i}` });
    taskId = task.taskId;
  }
  const taskUrl = `${base}/1.0/dedicatedCloud/${service}/task/${taskId}`;
  await waitTaskDone(taskUrl);
  const ids = await call('GET', whitelist);
  if (ids.length !== ENTRIES) throw new Error(`expected ${ENTRIES} whitelist entries, got ${JSON.stringify(ids)}`);

  const scenarios = [
    { name: 'GET /health/live (baseline)', url: `${base}/health/live` },
    { name: 'GET …/twoFAWhitelist', url: whitelist },
    { name: 'GET …/twoFAWhitelist/{id}', url: `${whitelist}/${ids[0]}` },
    { name: 'GET …/task/{id}', url: taskUrl },
  ];

  // Warm the JIT and the connection pool on every path before measuring anything.
  for (const s of scenarios) await load(s.url, WARMUP_SECONDS / scenarios.length);

  // Keep 8 s for the table and a graceful stop.
  const left = (WATCHDOG_MS - (Date.now() - started)) / 1000 - 8;
  const seconds = Math.max(MIN_SECONDS, Math.min(SECONDS, Math.floor(left / scenarios.length)));
  if (seconds < SECONDS)
    console.log(`(slow start: ${seconds} s per path instead of ${SECONDS} s to stay within the time budget)\n`);

  const results = [];
  for (const s of scenarios) {
    const r = await load(s.url, seconds);
    results.push({ ...s, rps: r.requests.average, p99: r.latency.p99, bad: r.non2xx + r.errors + r.timeouts });
  }
  printTable(results);
  console.log(
    `\n${seconds} s per path, ${CONNECTIONS} connections, ${databaseUrl ? `PostgreSQL (service ${service} left in DATABASE_URL)` : 'embedded database'}, ` +
      `node ${process.version}, ${os.cpus().length} CPUs; whole run ${((Date.now() - started) / 1000).toFixed(1)} s`,
  );
  if (results.some((r) => r.bad > 0)) throw new Error('some requests failed (see the "errors" column)');
}

function load(url, duration) {
  return autocannon({ url, connections: CONNECTIONS, duration, headers: { accept: 'application/json', authorization } });
}

/** Runs a CLI command of the built server and returns its JSON output. */
async function cli(...args) {
  const { stdout } = await promisify(execFile)(process.execPath, ['dist/cli.js', ...args], { cwd: ROOT, env, timeout: 30_000 });
  return JSON.parse(stdout);
}

function printTable(results) {
  const baseline = results[0];
  const rows = [
    ['path', 'req/s', 'p99 ms', 'req/s ÷ baseline', 'p99 ÷ baseline', 'errors'],
    ...results.map((r) => [
      r.name,
      r.rps.toFixed(0),
      r.p99.toFixed(2),
      (r.rps / baseline.rps).toFixed(2),
      baseline.p99 > 0 ? (r.p99 / baseline.p99).toFixed(2) : '-',
      String(r.bad),
    ]),
  ];
  const widths = rows[0].map((_, i) => Math.max(...rows.map((row) => row[i].length)));
  const line = (row) => row.map((cell, i) => (i === 0 ? cell.padEnd(widths[i]) : cell.padStart(widths[i]))).join('  ');
  console.log(line(rows[0]));
  console.log(widths.map((w) => '-'.repeat(w)).join('  '));
  for (const row of rows.slice(1)) console.log(line(row));
}

async function call(method, url, body) {
  const res = await fetch(url, {
    method,
    headers: { ...(authorization ? { authorization } : {}), ...(body ? { 'content-type': 'application/json' } : {}) },
    body: body ? JSON.stringify(body) : undefined,
    signal: AbortSignal.timeout(5000),
  });
  const text = await res.text();
  if (!res.ok) throw new Error(`${method} ${url} answered ${res.status}: ${text}`);
  return JSON.parse(text);
}

async function waitReady(base) {
  const deadline = Date.now() + 30_000;
  for (;;) {
    if (server.exitCode !== null) throw new Error(`the server exited with code ${server.exitCode}`);
    try {
      const res = await fetch(`${base}/health/ready`, { signal: AbortSignal.timeout(1000) });
      if (res.ok) return;
    } catch {
      // not listening yet
    }
    if (Date.now() > deadline) throw new Error('the server was not ready within 30 s');
    await sleep(100);
  }
}

async function waitTaskDone(url) {
  const deadline = Date.now() + 15_000;
  for (;;) {
    const task = await call('GET', url);
    if (task.state === 'done') return;
    if (task.state === 'error' || task.state === 'canceled') throw new Error(`task ${task.taskId} ended in ${task.state}`);
    if (Date.now() > deadline) throw new Error(`task ${task.taskId} not done within 15 s (state ${task.state})`);
    await sleep(100);
  }
}

function freePort() {
  return new Promise((resolve, reject) => {
    const probe = net.createServer();
    probe.once('error', reject);
    probe.listen(0, '127.0.0.1', () => {
      const { port } = probe.address();
      probe.close(() => resolve(port));
    });
  });
}

/** SIGTERM (the server's graceful stop), SIGKILL after 10 s; then the temporary folder goes. */
async function stop() {
  if (server && server.exitCode === null && server.signalCode === null) {
    const exited = new Promise((resolve) => server.once('exit', resolve));
    server.kill('SIGTERM');
    const timer = setTimeout(() => server.kill('SIGKILL'), 10_000);
    await exited;
    clearTimeout(timer);
  }
  fs.rmSync(tmp, { recursive: true, force: true });
}

function showServerLog() {
  try {
    const text = fs.readFileSync(path.join(tmp, 'server.log'), 'utf8').trim();
    if (text) console.error(`server log:\n${text.split('\n').slice(-20).join('\n')}`);
  } catch {
    // no log yet
  }
}

const watchdog = setTimeout(() => {
  console.error(`bench: still running after ${WATCHDOG_MS / 1000} s, giving up`);
  server?.kill('SIGKILL');
  fs.rmSync(tmp, { recursive: true, force: true });
  process.exit(1);
}, WATCHDOG_MS);
for (const signal of ['SIGINT', 'SIGTERM']) {
  process.once(signal, () => {
    server?.kill('SIGKILL');
    fs.rmSync(tmp, { recursive: true, force: true });
    process.exit(130);
  });
}

let code = 0;
try {
  await main();
} catch (err) {
  console.error(`bench failed: ${err instanceof Error ? err.message : String(err)}`);
  showServerLog();
  code = 1;
} finally {
  await stop();
  clearTimeout(watchdog);
}
process.exit(code);
