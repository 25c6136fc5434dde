import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Test } from 'tap';
import { systemClock } from '../../src/clock.js';
import { buildServices } from '../../src/composition.js';
import { loadConfig } from '../../src/config.js';
import { openDatabase, type DatabaseHandle } from '../../src/db/database.js';
import { SecretBox } from '../../src/security/secret-box.js';
import { TEST_ENV } from './app.js';
import { freshDatabase, seedPgliteDataDir, testDatabaseUrl } from './db.js';

/** src/server.ts as the test files run: transpiled beside them by `npm test`, or TypeScript under a loader. */
export function serverEntry(): string {
  const self = fileURLToPath(import.meta.url);
  return path.resolve(path.dirname(self), '../../src', `server${path.extname(self)}`);
}

export interface ServerProcess {
  child: ChildProcess;
  port: number;
  /** Everything it printed so far. */
  output(): string;
  /** Resolves with the exit code (or signal name) once the process has gone. */
  exited: Promise<number | string | null>;
}

/**
 * Starts the real server process (src/server.ts) with the suite's cheap argon2id, no demo data, a free port and
 * `env`; resolves once it listens. It is killed when the test ends, if still running.
 */
export async function startServer(t: Test, env: Record<string, string>): Promise<ServerProcess> {
  const child = spawn(process.execPath, [...process.execArgv, serverEntry()], {
    env: { ...process.env, ...TEST_ENV, SEED_DEMO: 'false', PORT: '0', HOST: '127.0.0.1', LOG_LEVEL: 'info', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  t.teardown(() => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  });
  let output = '';
  const exited = new Promise<number | string | null>((resolve) => child.on('exit', (code, signal) => resolve(signal ?? code)));
  const port = await new Promise<number>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`server did not start:\n${output.slice(-3000)}`)), 90_000);
    const onData = (d: Buffer) => {
      output += d.toString();
      const match = /Server listening at http:\/\/127\.0\.0\.1:(\d+)/.exec(output);
      if (match) {
        clearTimeout(timer);
        resolve(Number(match[1]));
      }
    };
    child.stdout.on('data', onData);
    child.stderr.on('data', onData);
    void exited.then((code) => {
      clearTimeout(timer);
      reject(new Error(`server exited early (${String(code)}):\n${output.slice(-3000)}`));
    });
  });
  return { child, port, output: () => output, exited };
}

export interface HttpAnswer {
  status: number;
  body: string;
  headers?: http.IncomingHttpHeaders;
  /** Milliseconds from the request to its answer. */
  ms: number;
}

/** One HTTP request to the server on 127.0.0.1, through `agent`; rejects on a network error or after `timeoutMs`. */
export function request(
  port: number,
  method: string,
  path: string,
  options: { headers?: Record<string, string>; body?: unknown; agent?: http.Agent; timeoutMs?: number } = {},
): Promise<HttpAnswer> {
  const started = Date.now();
  const body = options.body === undefined ? undefined : JSON.stringify(options.body);
  return new Promise((resolve, reject) => {
    const req = http.request(
      {
        host: '127.0.0.1',
        port,
        method,
        path,
        agent: options.agent ?? false,
        headers: { ...(body ? { 'content-type': 'application/json' } : {}), ...options.headers },
        timeout: options.timeoutMs ?? 30_000,
      },
      (res) => {
        let text = '';
        res.on('data', (c: Buffer) => (text += c.toString()));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body: text, headers: res.headers, ms: Date.now() - started }));
        res.on('error', reject);
      },
    );
    req.on('timeout', () => req.destroy(new Error(`${method} ${path}: no answer within ${options.timeoutMs ?? 30_000} ms`)));
    req.on('error', reject);
    req.end(body);
  });
}

/** A bearer token of an OAuth2 client, from the server's token endpoint. */
export async function bearerToken(port: number, client: { clientId: string; clientSecret: string }): Promise<string> {
  const res = await request(port, 'POST', '/1.0/auth/oauth2/token', {
    body: { grant_type: 'client_credentials', client_id: client.clientId, client_secret: client.clientSecret },
  });
  if (res.status !== 200) throw new Error(`token answered ${res.status}: ${res.body}`);
  return (JSON.parse(res.body) as { access_token: string }).access_token;
}

/**
 * The database a spawned server runs on: on PostgreSQL (TEST_DATABASE_URL) a fresh database of its own, on the
 * embedded engine a data folder seeded from the migrated template. `open` gives the test its own handle: on PGlite
 * only while no server runs on the folder (one process at a time).
 */
export async function serverStore(
  t: Test,
): Promise<{ env: Record<string, string>; databaseUrl?: string; open: () => Promise<DatabaseHandle> }> {
  if (testDatabaseUrl) {
    const { handle, url, drop } = await freshDatabase();
    await handle.close();
    t.teardown(drop);
    return {
      env: {
        DATABASE_URL: url!,
        SECRET_KEYS: `t:${Buffer.alloc(32, 7).toString('base64')}`,
        SMS_PROVIDER: 'log',
      },
      databaseUrl: url!,
      open: () => openDatabase({ databaseUrl: url! }),
    };
  }
  const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'pcc-2fa-server-'));
  t.teardown(() => fs.rmSync(dataDir, { recursive: true, force: true }));
  await seedPgliteDataDir(dataDir);
  return { env: { DATA_DIR: dataDir }, open: () => openDatabase({ dataDir }) };
}

/** Creates a service owned by `login` and an OAuth2 client of that account, straight in the database. */
export async function serviceWithClient(handle: DatabaseHandle, serviceName: string, login: string) {
  const services = buildServices({
    db: handle.db,
    box: new SecretBox([{ id: 'unused', key: randomBytes(32) }]),
    clock: systemClock,
    config: loadConfig(TEST_ENV),
  });
  await services.services.create(serviceName, login);
  return services.auth.createOauthClient(login);
}
