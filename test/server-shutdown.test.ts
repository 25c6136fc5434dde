import { spawn } from 'node:child_process';
import fs from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import t from 'tap';
import { TEST_ENV } from './helpers/app.js';
import { seedPgliteDataDir, testDatabaseUrl } from './helpers/db.js';

/**
 * The real process (src/server.ts, under the test runner's TypeScript loader): on SIGTERM it stops taking requests,
 * finishes the one in flight, and exits 0.
 */
t.test('SIGTERM lets the request in flight finish, then the process exits 0', async (t) => {
  const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'pcc-2fa-shutdown-'));
  t.teardown(() => fs.rmSync(dataDir, { recursive: true, force: true }));
  // The suite's cheap argon2id, and no demo data: this test is about the stop, not the start.
  const env = {
    ...process.env,
    ...TEST_ENV,
    SEED_DEMO: 'false',
    PORT: '0',
    DATA_DIR: dataDir,
    LOG_LEVEL: 'info',
    SHUTDOWN_TIMEOUT_MS: '10000',
  };
  if (!testDatabaseUrl) await seedPgliteDataDir(dataDir);
  if (testDatabaseUrl)
    Object.assign(env, {
      DATABASE_URL: testDatabaseUrl,
      SECRET_KEYS: `t:${Buffer.alloc(32, 7).toString('base64')}`,
      SEED_DEMO: 'false',
      SMS_PROVIDER: 'log',
    });
  // src/server.ts as this file runs: transpiled beside it by `npm test`, or TypeScript under a loader.
  const self = fileURLToPath(import.meta.url);
  const server = path.resolve(path.dirname(self), '../src', `server${path.extname(self)}`);
  const child = spawn(process.execPath, [...process.execArgv, server], { env, stdio: ['ignore', 'pipe', 'pipe'] });
  t.teardown(() => {
    if (child.exitCode === null) child.kill('SIGKILL');
  });
  let output = '';
  child.stderr.on('data', (d: Buffer) => (output += d.toString()));
  const port = await new Promise<number>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`server did not start:\n${output}`)), 90_000);
    child.stdout.on('data', (d: Buffer) => {
      output += d.toString();
      const match = /Server listening at http:\/\/127\.0\.0\.1:(\d+)/.exec(output);
      if (match) {
        clearTimeout(timer);
        resolve(Number(match[1]));
      }
    });
    child.on('exit', (code) => reject(new Error(`server exited early (${code}):\n${output}`)));
  });

  // A request whose body is still arriving when SIGTERM comes.
  const body = JSON.stringify({ grant_type: 'client_credentials', client_id: 'nobody', client_secret: 'x' });
  const inFlight = new Promise<{ status: number; body: string; connection: string | undefined }>((resolve, reject) => {
    const req = http.request(
      {
        host: '127.0.0.1',
        port,
        method: 'POST',
        path: '/1.0/auth/oauth2/token',
        headers: { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) },
      },
      (res) => {
        let text = '';
        res.on('data', (c: Buffer) => (text += c.toString()));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body: text, connection: res.headers.connection }));
      },
    );
    req.on('error', reject);
    req.write(body.slice(0, 10));
    // SIGTERM once the server has the request (its log says so): on a loaded machine a fixed delay could let the stop
    // come first, and a request that arrives after the stop is refused (503), which is another test's matter.
    const received = () => /"msg":"incoming request"[^\n]*oauth2\/token|oauth2\/token[^\n]*"msg":"incoming request"/.test(output);
    const sigterm = setInterval(() => {
      if (!received()) return;
      clearInterval(sigterm);
      child.kill('SIGTERM');
      setTimeout(() => req.end(body.slice(10)), 500);
    }, 10);
  });
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));

  const response = await inFlight;
  t.equal(response.status, 401, 'the request in flight got its real answer');
  t.match(response.body, /invalid_client/);
  t.equal(response.connection, 'close', 'the answer closes its keep-alive connection: the stop need not wait for it');
  t.equal(await exited, 0, 'the process exited cleanly');
  t.match(output, /stopping/, 'it logged the stop');
  await t.rejects(
    new Promise((resolve, reject) => http.get({ host: '127.0.0.1', port, path: '/health/live' }, resolve).on('error', reject)),
    'no new connection is accepted after the stop',
  );
});

t.test('a malformed TRUSTED_PROXIES stops the start with exit 78 (EX_CONFIG), naming it', async (t) => {
  const self = fileURLToPath(import.meta.url);
  const server = path.resolve(path.dirname(self), '../src', `server${path.extname(self)}`);
  const child = spawn(process.execPath, [...process.execArgv, server], {
    env: { ...process.env, ...TEST_ENV, PORT: '0', TRUSTED_PROXIES: '192.0.2.1, not-a-network' },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  child.stdout.on('data', (d: Buffer) => (output += d.toString()));
  child.stderr.on('data', (d: Buffer) => (output += d.toString()));
  const code = await new Promise<number | null>((resolve) => child.on('exit', resolve));
  t.equal(code, 78);
  t.match(output, /TRUSTED_PROXIES: not-a-network/);
});
