import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import t, { type Test } from 'tap';
import { TEST_ENV } from './helpers/app.js';
import { freshDatabase, seedPgliteDataDir, testDatabaseUrl } from './helpers/db.js';

// The CLI while `npm start` runs. On the embedded database the server holds the data folder (one process only): the
// CLI hands each command to the server over DATA_DIR/control.sock, and the server runs it. With DATABASE_URL the CLI
// connects to PostgreSQL itself. Both are real processes here, and every effect is checked through the HTTP API.

// src/server.ts and src/cli.ts as this file runs: transpiled beside it by `npm test`, or TypeScript under a loader.
const self = fileURLToPath(import.meta.url);
const source = (name: string) => path.resolve(path.dirname(self), '../src', `${name}${path.extname(self)}`);
const METRICS_TOKEN = 'metrics-token-of-the-cli-test';
// The test runner's own hooks (coverage, mocks) cost each child a second or more, and do nothing for it.
const execArgv = process.execArgv.filter((a) => !a.includes('@tapjs/'));

interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
}

function run(file: string, args: string[], env: NodeJS.ProcessEnv, stdin?: string): Promise<Run> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [...execArgv, file, ...args], { env, stdio: ['pipe', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    child.on('error', reject);
    child.on('exit', (code) => resolve({ code, stdout, stderr }));
    child.stdin.end(stdin ?? '');
  });
}

/** Runs the CLI and returns its JSON, or throws with what it printed. */
async function cli(env: NodeJS.ProcessEnv, args: string[], stdin?: string): Promise<Record<string, unknown>> {
  const result = await run(source('cli'), args, env, stdin);
  if (result.code !== 0) throw new Error(`cli ${args.join(' ')} exited ${result.code}:\n${result.stderr}`);
  return JSON.parse(result.stdout) as Record<string, unknown>;
}

interface Server {
  child: ChildProcess;
  base: string;
  output: () => string;
  stop(): Promise<number | null>;
}

async function startServer(t: Test, env: NodeJS.ProcessEnv): Promise<Server> {
  const child = spawn(process.execPath, [...execArgv, source('server')], { env, stdio: ['ignore', 'pipe', 'pipe'] });
  t.teardown(() => {
    if (child.exitCode === null) child.kill('SIGKILL');
  });
  let output = '';
  child.stderr!.on('data', (d: Buffer) => (output += d.toString()));
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
  const ready = (pattern: RegExp) =>
    new Promise<RegExpExecArray>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`server not ready:\n${output}`)), 90_000);
      const check = () => {
        const match = pattern.exec(output);
        if (!match) return;
        clearTimeout(timer);
        resolve(match);
      };
      child.stdout!.on('data', (d: Buffer) => {
        output += d.toString();
        check();
      });
      void exited.then((code) => reject(new Error(`server exited early (${code}):\n${output}`)));
      check();
    });
  const [, port] = await ready(/Server listening at http:\/\/127\.0\.0\.1:(\d+)/);
  // The control socket opens before the API listens (none on PostgreSQL); the metrics listener right after it.
  if (!env.DATABASE_URL) await ready(/control socket ready/);
  await ready(/metrics listening at/);
  return {
    child,
    base: `http://127.0.0.1:${port}`,
    output: () => output,
    stop: async () => {
      child.kill('SIGTERM');
      return exited;
    },
  };
}

/** A bearer token of an OAuth2 client, and a GET with it. */
async function bearer(server: Server, client: Record<string, unknown>) {
  const res = await fetch(`${server.base}/1.0/auth/oauth2/token`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ grant_type: 'client_credentials', client_id: client.clientId, client_secret: client.clientSecret }),
  });
  if (res.status !== 200) throw new Error(`token: ${res.status} ${await res.text()}`);
  const token = ((await res.json()) as { access_token: string }).access_token;
  const call = async (method: string, url: string, body?: unknown) => {
    const answer = await fetch(`${server.base}${url}`, {
      method,
      headers: { authorization: `Bearer ${token}`, ...(body ? { 'content-type': 'application/json' } : {}) },
      ...(body ? { body: JSON.stringify(body) } : {}),
    });
    return { status: answer.status, body: (await answer.json()) as Record<string, unknown> & unknown[] };
  };
  return call;
}

function serverEnv(dataDir: string, extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { ...process.env, ...TEST_ENV, SEED_DEMO: 'false', DATA_DIR: dataDir, LOG_LEVEL: 'info' };
  delete env.DATABASE_URL;
  return { ...env, ...extra };
}

/** A socket file as a killed server leaves it: a process listens on it, then dies by SIGKILL without cleaning up. */
async function staleSocket(file: string): Promise<void> {
  const child = spawn(process.execPath, ['-e', 'require("net").createServer().listen(process.argv[1])', file], {
    stdio: 'ignore',
  });
  for (let i = 0; i < 200 && !fs.existsSync(file); i++) await new Promise((r) => setTimeout(r, 25));
  const dead = new Promise((resolve) => child.on('exit', resolve));
  child.kill('SIGKILL');
  await dead;
}

t.test(
  'on the embedded database, CLI commands run in the server while it runs',
  { skip: Boolean(testDatabaseUrl) },
  async (t) => {
    const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'pcc-2fa-cli-'));
    t.teardown(() => fs.rmSync(dataDir, { recursive: true, force: true }));
    await seedPgliteDataDir(dataDir);
    const socketFile = path.join(dataDir, 'control.sock');
    await staleSocket(socketFile);
    t.ok(fs.lstatSync(socketFile).isSocket(), 'a stale socket file from a killed server is there before the start');

    const env = serverEnv(dataDir, { PORT: '0', METRICS_PORT: '0', METRICS_TOKEN });
    const server = await startServer(t, env);
    const serverPid = String(server.child.pid);
    t.equal(fs.readFileSync(path.join(dataDir, 'pcc-2fa.pid'), 'utf8'), serverPid, 'the server holds the data folder');
    t.equal(fs.statSync(socketFile).mode & 0o777, 0o600, 'the control socket is the owner’s only (0600)');
    t.equal(fs.statSync(path.join(dataDir, 'control.token')).mode & 0o777, 0o600, 'and so is its token');

    t.test('the real process serves /metrics on its metrics listener, with the token', async (t) => {
      const url = /metrics listening at (http:\/\/127\.0\.0\.1:\d+\/metrics)/.exec(server.output())?.[1];
      t.ok(url, 'the listener logged its address');
      t.equal((await fetch(url!)).status, 401);
      const res = await fetch(url!, { headers: { authorization: `Bearer ${METRICS_TOKEN}` } });
      t.equal(res.status, 200);
      t.match(await res.text(), /pcc_process_cpu_user_seconds_total/, 'with the process metrics');
    });

    let owner: Awaited<ReturnType<typeof bearer>>;
    t.test('service create and oauth-client create take effect at once in the running server', async (t) => {
      const created = await cli(env, ['service', 'create', 'pcc-ctl', '--account', 'ctl-owner']);
      t.match(created, { created: true, serviceName: 'pcc-ctl', account: 'ctl-owner' });
      const client = await cli(env, ['oauth-client', 'create', '--account', 'ctl-owner']);
      t.match(client, { clientId: /^pcc-/, clientSecret: String });
      owner = await bearer(server, client);
      const list = await owner('GET', '/1.0/dedicatedCloud');
      t.same(list.body, ['pcc-ctl'], 'the new client sees the new service');
    });

    t.test('user unlock clears a lockout the running server counted', async (t) => {
      const password = 'Ctl-Passw0rd-1!';
      const created = await owner('POST', '/1.0/dedicatedCloud/pcc-ctl/user', { name: 'ctluser', password });
      t.equal(created.status, 200);
      for (let i = 0; i < 100; i++) {
        const task = await owner('GET', `/1.0/dedicatedCloud/pcc-ctl/task/${String(created.body.taskId)}`);
        if (task.body.state === 'done') break;
        await new Promise((r) => setTimeout(r, 100));
      }
      const login = (pw: string) =>
        fetch(`${server.base}/secure/pcc-ctl/session`, {
          method: 'POST',
          headers: { 'content-type': 'application/json' },
          body: JSON.stringify({ login: 'ctluser', password: pw }),
        });
      for (let i = 0; i < 5; i++) t.equal((await login('Wrong-Passw0rd-1!')).status, 401);
      t.equal((await login(password)).status, 429, 'locked out after five failures');
      t.match(await cli(env, ['user', 'unlock', 'pcc-ctl', 'ctluser']), { serviceName: 'pcc-ctl' });
      t.equal((await login(password)).status, 200, 'the unlock took effect in the server');
    });

    t.test('a command that reads standard input gets the CLI’s', async (t) => {
      const created = await cli(env, ['account', 'create', 'ctl-other', '--password-stdin'], 'Other-Passw0rd-1!\n');
      t.same(created, { login: 'ctl-other' }, 'the password came from stdin: none was made up and shown');
    });

    t.test('credential validate - reads the consumer key from stdin, out of the process list', async (t) => {
      // An attack round: the key, a credential once validated, was an argument that other local users see (`ps`).
      const app = await cli(env, ['app', 'create', '--account', 'ctl-owner', '--name', 'stdin']);
      const res = await fetch(`${server.base}/1.0/auth/credential`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', 'x-ovh-application': String(app.applicationKey) },
        body: JSON.stringify({ accessRules: [{ method: 'GET', path: '/*' }] }),
      });
      const { consumerKey } = (await res.json()) as { consumerKey: string };
      const validated = await cli(env, ['credential', 'validate', '-', '--validity', '1h'], `${consumerKey}\n`);
      t.match(validated, { status: 'validated', expiration: String });
      const empty = await run(source('cli'), ['credential', 'validate', '-'], env, '\n');
      t.equal(empty.code, 64, 'an empty stdin is a usage error');
      const two = await run(source('cli'), ['credential', 'validate', '-', consumerKey], env, `${consumerKey}\n`);
      t.equal(two.code, 64, 'and so are two keys');
    });

    t.test('the CLI reports the server’s refusals with its usual exit codes', async (t) => {
      const usage = await run(source('cli'), ['user', 'unlock', 'pcc-ctl'], env);
      t.equal(usage.code, 64);
      t.match(usage.stderr, /user unlock needs <serviceName> <userName>[\s\S]*Usage:/);
      const unknown = await run(source('cli'), ['user', 'unlock', 'pcc-ctl', 'nobody'], env);
      t.equal(unknown.code, 65);
      t.match(unknown.stderr, /does not exist/);
    });

    t.test('a request without the control token is refused and changes nothing', async (t) => {
      const reply = await new Promise<string>((resolve, reject) => {
        const socket = net.createConnection(socketFile);
        let text = '';
        socket.on('connect', () =>
          socket.write(
            `${JSON.stringify({ token: 'guess', argv: ['service', 'create', 'pcc-evil', '--account', 'ctl-owner'], stdin: null })}\n`,
          ),
        );
        socket.on('data', (d: Buffer) => (text += d.toString()));
        socket.on('end', () => resolve(text));
        socket.on('error', reject);
      });
      t.match(JSON.parse(reply), { exitCode: 77, error: /wrong control token/ });
      t.same((await owner('GET', '/1.0/dedicatedCloud')).body, ['pcc-ctl']);
    });

    t.test('after the server stops, its socket is gone and the CLI opens the database itself', async (t) => {
      t.equal(await server.stop(), 0);
      t.notOk(fs.existsSync(socketFile), 'the socket file is removed');
      t.notOk(fs.existsSync(path.join(dataDir, 'control.token')), 'and its token');
      t.match(await cli(env, ['service', 'create', 'pcc-after', '--account', 'ctl-owner']), { created: true });
      t.notOk(fs.existsSync(path.join(dataDir, 'pcc-2fa.pid')), 'the CLI released the folder');
    });
  },
);

t.test('with DATABASE_URL the CLI connects to PostgreSQL itself while the server runs', { skip: !testDatabaseUrl }, async (t) => {
  const { handle, url, drop } = await freshDatabase();
  await handle.close();
  t.teardown(drop);
  const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'pcc-2fa-cli-'));
  t.teardown(() => fs.rmSync(dataDir, { recursive: true, force: true }));
  const env = serverEnv(dataDir, {
    PORT: '0',
    METRICS_PORT: '0',
    DATABASE_URL: url!,
    SECRET_KEYS: `t:${Buffer.alloc(32, 7).toString('base64')}`,
    SMS_PROVIDER: 'log',
  });
  const server = await startServer(t, env);
  t.match(await cli(env, ['service', 'create', 'pcc-ctl', '--account', 'ctl-owner']), { created: true });
  const owner = await bearer(server, await cli(env, ['oauth-client', 'create', '--account', 'ctl-owner']));
  t.same((await owner('GET', '/1.0/dedicatedCloud')).body, ['pcc-ctl']);
  t.notOk(fs.existsSync(path.join(dataDir, 'control.sock')), 'no control socket: PostgreSQL serves every process');
  t.equal(await server.stop(), 0);
});
