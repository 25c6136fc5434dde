/* global AbortSignal, URLSearchParams, performance */
/**
 * `npm run bench` (add `-- --quick` for CI's short form): the hot paths of pcc-2fa, each against a baseline measured in
 * the same run, because these machines are shared and noisy: compare ratios, not absolute figures.
 *
 *   (a) a signed GET …/twoFAWhitelist/{id}, (b) the same with a bearer token: both against a bare Fastify + pg server
 *       doing the same one-row SELECT with the same pool size (bench/baseline.mjs), 50 connections;
 *   (c) GET …/twoFAWhitelist of a 10,000-entry list (median of sequential calls);
 *   (d) signed POSTs of new entries, timed until their tasks are done;
 *   (e) /secure logins with password + TOTP code of many users (each code once), against bare argon2id verification
 *       of the same hashes at the same concurrency; beside it, on the bare stack (bench/baseline.mjs), (e') an HTTP
 *       request that verifies the hash, and (e") on PostgreSQL the floor of a login: the least one with this service's
 *       guarantees does (the attempt counted durably before the check, the code's step used once, the session and
 *       its audit), in two round trips, and (e‴) the bound of any login that keeps its sessions in PostgreSQL: the
 *       user's hash read, the session written, nothing else;
 *   (f) the server's worker draining 10,000 queued whitelist tasks.
 *
 * On DATABASE_URL (PostgreSQL: the targets are for it) or on a temporary embedded database. Prints a table and writes
 * bench/results.json. Leaves nothing running; a new service each run on a shared PostgreSQL.
 */
import { execFile, spawn } from 'node:child_process';
import { createHash, randomBytes, randomInt } from 'node:crypto';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import readline from 'node:readline';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { verify as argonVerify } from '@node-rs/argon2';
import autocannon from 'autocannon';
import { generate } from 'otplib';
import { seed } from './seed.mjs';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const QUICK = process.argv.includes('--quick');
/** `--instances N`: N servers on the one PostgreSQL, sharing the load and the task queue. */
const INSTANCES = Number(process.argv[process.argv.indexOf('--instances') + 1] ?? 1) || 1;
/** `--reads`: only (a) and (b) against the baseline, on a small seed: the loop to rerun while working on the read path. */
const READS = process.argv.includes('--reads');
/** `--logins`: only (e) against bare argon2id, on a small whitelist. */
const LOGINS = process.argv.includes('--logins');
/**
 * BENCH_USERS, BENCH_WARMUP: the users whose logins (e) measures (300) and those that warm the servers up first (200).
 * More of them make a longer login load, for a profile or a steadier figure (`--logins` writes them to results.json).
 */
const loginUsers = (name, fallback) => Number(process.env[name] || fallback);
const P = {
  ...(QUICK
    ? { seconds: 2, warmup: 1, entries: 1000, users: 40, warmupLogins: 10, posts: 100, listCalls: 10, watchdogMs: 240_000 }
    : {
        seconds: 8,
        warmup: 3,
        entries: 10_000,
        users: loginUsers('BENCH_USERS', 300),
        warmupLogins: loginUsers('BENCH_WARMUP', 200),
        posts: 1000,
        listCalls: 30,
        watchdogMs: 900_000,
      }),
  ...(READS ? { entries: 100, users: 1, warmupLogins: 0 } : {}),
  ...(LOGINS ? { entries: 100 } : {}),
};
const CONNECTIONS = 50;
const LOGIN_CONCURRENCY = 8;
// The server's pool (DATABASE_POOL_SIZE, passed on to it) and the baseline's: the same.
const POOL_SIZE = Number(process.env.DATABASE_POOL_SIZE || 10);
const PASSWORD = 'Bench-password-1!';

const databaseUrl = process.env.DATABASE_URL || undefined;
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'pcc-bench-'));
const service = databaseUrl ? `pcc-bench-${randomBytes(4).toString('hex')}` : 'pcc-bench';
const env = {
  ...process.env,
  NODE_ENV: 'development',
  DATA_DIR: path.join(tmp, 'data'),
  HOST: '127.0.0.1',
  LOG_LEVEL: 'warn',
  // Load comes from one address: the per-address rate limit would answer 429 within a second. Logins say who they
  // are with X-Forwarded-For, as through a proxy: the lockout and the rate limits see many clients.
  RATE_LIMIT_PER_MINUTE: '1000000',
  TRUSTED_PROXIES: '127.0.0.1',
  WHITELIST_MAX_ENTRIES: '20000',
  // /metrics on the API's port, for the server's memory by kind at the end (`memoryOf`).
  METRICS_TOKEN: randomBytes(16).toString('hex'),
  // The worker polls at its default (TASK_POLL_MS, 2 s), as in production: a task wakes it by NOTIFY.
};
const children = new Set();
const started = Date.now();

async function main() {
  if (!fs.existsSync(path.join(ROOT, 'dist/server.js'))) throw new Error('dist/server.js is missing: run `npm run build`');
  if (INSTANCES > 1 && !databaseUrl) throw new Error('--instances needs DATABASE_URL: the embedded database is one process');
  if (databaseUrl && !env.SECRET_KEYS) env.SECRET_KEYS = (await cli('keys', 'new')).SECRET_KEYS;
  if (databaseUrl && !env.SMS_PROVIDER) env.SMS_PROVIDER = 'log';
  // The embedded database is one process's at a time: everything before the server starts.
  await cli('service', 'create', service, '--account', service);
  await cli('account', 'password', service, { stdin: PASSWORD });
  const client = await cli('oauth-client', 'create', '--account', service, '--name', 'bench');
  const application = await cli('app', 'create', '--account', service, '--name', 'bench');
  const seeded = await seed(ROOT, env, { service, users: P.users + P.warmupLogins, entries: P.entries, password: PASSWORD });
  console.log(
    `seeded ${P.users} users (and ${P.warmupLogins} for warming up logins) with 2FA and queued ${P.entries} whitelist tasks in ${seeded.queueSeconds.toFixed(1)} s`,
  );

  // (f) starts with the server: its worker drains the queue.
  const servers = await Promise.all(Array.from({ length: INSTANCES }, () => startServer()));
  const server = servers[0];
  const base = server.base;
  const spawnedAt = Math.min(...servers.map((x) => x.spawnedAt));
  const api = `${base}/1.0/dedicatedCloud/${service}`;
  const token = await call('POST', `${base}/1.0/auth/oauth2/token`, {
    grant_type: 'client_credentials',
    client_id: client.clientId,
    client_secret: client.clientSecret,
  });
  const bearer = `Bearer ${token.access_token}`;
  const drained = await waitDrained(api, bearer, spawnedAt);
  const once = await appliedOnce();
  console.log(`(f) ${P.entries} tasks drained in ${drained.toFixed(1)} s by ${INSTANCES} instance(s); ${once}`);

  const ids = await call('GET', `${api}/twoFAWhitelist`, undefined, { authorization: bearer });
  if (ids.length !== P.entries) throw new Error(`expected ${P.entries} entries, got ${ids.length}`);
  const entryId = ids[0];

  // A consumer key for signed calls, validated on its page with the account's password, as a person would.
  const ck = await call(
    'POST',
    `${base}/1.0/auth/credential`,
    { accessRules: ['GET', 'POST', 'PUT', 'DELETE'].map((method) => ({ method, path: '/*' })) },
    { 'x-ovh-application': application.applicationKey },
  );
  const credentialToken = new URL(ck.validationUrl).searchParams.get('credentialToken');
  const page = await fetch(`${base}/auth/`, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams({ credentialToken, login: service, password: PASSWORD, validity: 'unlimited' }),
  });
  if (!page.ok) throw new Error(`validating the consumer key answered ${page.status}`);
  const signer = ovhSigner(application.applicationKey, application.applicationSecret, ck.consumerKey);

  // (e) logins, each with its user's current code (used once), each from its own address; against bare argon2id.
  async function logins() {
    /**
     * One load and what it cost: its time, the CPU of the server processes `pids` (all their threads, and their main
     * threads apart: JavaScript, HTTP, the queries; argon2id runs in libuv's other threads), of PostgreSQL, of the load
     * generator and of the whole machine, added to `into`. The load generator's clock is read innermost, so that the
     * /proc scans around it are not charged to it.
     */
    const measure = async (pids, load, into) => {
      const before = {
        server: pids.reduce((t, pid) => t + cpuMsOf(pid), 0),
        main: pids.reduce((t, pid) => t + cpuMsOf(pid, pid), 0),
        pg: postgresCpu(),
        busy: machineCpu().busy,
      };
      const client = process.cpuUsage();
      const { statuses, ms } = await load();
      into.client += cpuMsOfUsage(process.cpuUsage(client));
      into.ms += ms;
      into.server += pids.reduce((t, pid) => t + cpuMsOf(pid), 0) - before.server;
      into.main += pids.reduce((t, pid) => t + cpuMsOf(pid, pid), 0) - before.main;
      into.pg += cpuSince(before.pg);
      into.busy += (machineCpu().busy - before.busy) * (1000 / CLOCK_TICKS);
      return statuses;
    };
    const costs = () => ({ ms: 0, server: 0, main: 0, pg: 0, client: 0, busy: 0 });
    // Each user logs in from an address of its own in 198.18.0.0/15, at an offset drawn for the run: the replays below
    // count failures on their addresses' network keys, which must not add up over the runs on one database.
    const offset = randomInt(0, 131_072 - seeded.people.length);
    const addressOf = (i) => {
      const a = offset + i;
      return `198.${18 + (a >> 16)}.${(a >> 8) & 255}.${a & 255}`;
    };
    const everyone = seeded.people.map((p, i) => ({ ...p, i }));
    // The first users warm the servers up, as (a) and (b) are: a server runs for days, and its first hundred logins,
    // with their code not yet compiled by V8, tell nothing of its rate. The rest are measured.
    const warm = everyone.slice(0, P.warmupLogins);
    const people = everyone.slice(P.warmupLogins);
    const loginOf = async (p, on) => {
      const res = await fetch(`${servers[on % servers.length].base}/secure/${service}/session`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', 'x-forwarded-for': addressOf(p.i) },
        body: JSON.stringify({ login: p.name, password: PASSWORD, token: p.code }),
        signal: AbortSignal.timeout(10_000),
      });
      await res.arrayBuffer();
      return res.status;
    };
    // The stack's own ceiling for a login: bare Fastify answering a request that verifies the same hash (and nothing
    // else), from the same client at the same concurrency.
    const bare = await startBaseline();
    // Each user's current code, made before the load (and outside what it costs).
    const withCodes = async (slice) => {
      for (const p of slice) p.code = await generate({ secret: p.secret });
      return slice;
    };
    const logInEach = (slice) =>
      postEach(
        servers.map((x, on) => ({
          url: `${x.base}/secure/${service}/session`,
          // Each instance its share of the slice (by position: a round's users share their index modulo the rounds).
          bodies: slice
            .filter((_, k) => k % servers.length === on)
            .map((p) => ({
              headers: { 'x-forwarded-for': addressOf(p.i) },
              body: JSON.stringify({ login: p.name, password: PASSWORD, token: p.code }),
            })),
        })),
      );
    const verifyEach = (slice) =>
      postEach([
        {
          url: `${bare.base}/verify`,
          bodies: slice.map((p) => ({ body: JSON.stringify({ hash: p.hash, password: PASSWORD }) })),
        },
      ]);
    // The floor (PostgreSQL only): the least a login with the same guarantees does, on the bare stack (bench/baseline.mjs).
    const floorStep = Date.now();
    const floorEach = (slice) =>
      postEach([
        {
          url: `${bare.base}/floor`,
          bodies: slice.map((p) => {
            const account = `user:${service}:${p.name}`;
            const address = addressOf(p.i);
            const keys = [account, `${account}@${address}`, `ip:${address}`];
            return { body: JSON.stringify({ service, login: p.name, password: PASSWORD, step: floorStep + p.i, keys }) };
          }),
        },
      ]);
    // The bound (PostgreSQL only): the hash read, the session written, nothing else (bench/baseline.mjs).
    const boundEach = (slice) =>
      postEach([
        {
          url: `${bare.base}/bound`,
          bodies: slice.map((p) => ({ body: JSON.stringify({ service, login: p.name, password: PASSWORD }) })),
        },
      ]);
    const floor = Boolean(databaseUrl);
    if (warm.length > 0) {
      const warmed = [(await logInEach(await withCodes(warm))).statuses, (await verifyEach(warm)).statuses];
      if (floor) warmed.push((await floorEach(warm)).statuses, (await boundEach(warm)).statuses);
      if (warmed.some((statuses) => statuses['200'] !== warm.length))
        throw new Error(`warming up answered ${JSON.stringify(warmed)}`);
    }
    // The loads take turns, a slice of the users each: a neighbour's load on this shared machine then weighs on
    // the logins and on their baselines alike, instead of on whichever ran while it lasted.
    const rounds = Math.min(6, people.length);
    const sum = {
      login: costs(),
      http: costs(),
      floor: costs(),
      bound: costs(),
      argon2: { ms: 0, cpu: 0 },
    };
    for (let r = 0; r < rounds; r++) {
      const slice = await withCodes(people.filter((p) => p.i % rounds === r));
      // Each with its user's current code (used once), each from its own address. The load goes through autocannon,
      // like (a) and (b): the client shares the machine, so it is kept as light as theirs (fetch cost 3-4 ms of CPU
      // per request here).
      const statuses = await measure(serverPids, () => logInEach(slice), sum.login);
      if (statuses['200'] !== slice.length) throw new Error(`logins failed: ${JSON.stringify(statuses)}`);
      const verified = await measure([bare.pid], () => verifyEach(slice), sum.http);
      if (verified['200'] !== slice.length) throw new Error(`bare Fastify + argon2id answered ${JSON.stringify(verified)}`);
      if (floor) {
        const floored = await measure([bare.pid], () => floorEach(slice), sum.floor);
        if (floored['200'] !== slice.length) throw new Error(`the floor's logins answered ${JSON.stringify(floored)}`);
        const bounded = await measure([bare.pid], () => boundEach(slice), sum.bound);
        if (bounded['200'] !== slice.length) throw new Error(`the bound's logins answered ${JSON.stringify(bounded)}`);
      }

      const t0 = performance.now();
      const v0 = process.cpuUsage();
      await pool(slice.length, LOGIN_CONCURRENCY, async (k) => {
        if (!(await argonVerify(slice[k].hash, PASSWORD))) throw new Error('argon2 verify failed');
      });
      sum.argon2.ms += performance.now() - t0;
      sum.argon2.cpu += cpuMsOfUsage(process.cpuUsage(v0));
    }
    await bare.stop();
    // Each code works once, on any instance: replayed on another one, every one is refused.
    const replays = await pool(Math.min(20, people.length), 4, (k) => loginOf(people[k], k + 1));
    if (replays.some((status) => status !== 401))
      throw new Error(`a replayed code was not refused: ${JSON.stringify(count(replays))}`);

    const n = people.length;
    const loginRate = n / (sum.login.ms / 1000);
    const httpVerifyRate = n / (sum.http.ms / 1000);
    const verifyRate = n / (sum.argon2.ms / 1000);
    const perLogin = (x) => ({
      serverMs: x.server / n,
      serverMainThreadMs: x.main / n,
      postgresMs: x.pg / n,
      clientMs: x.client / n,
    });
    const loginCpu = {
      ...perLogin(sum.login),
      // CPU time of the whole machine over the logins' time and its cores (the time after the last answer is left out).
      machineBusy: sum.login.busy / (sum.login.ms * os.availableParallelism()),
      argon2Ms: sum.argon2.cpu / n,
    };
    const bareCpu = perLogin(sum.http);
    const floorRate = floor ? n / (sum.floor.ms / 1000) : null;
    const floorCpu = floor ? perLogin(sum.floor) : null;
    const boundRate = floor ? n / (sum.bound.ms / 1000) : null;
    const boundCpu = floor ? perLogin(sum.bound) : null;
    console.log(
      `(e) ${loginRate.toFixed(0)} logins/s, bare argon2id ${verifyRate.toFixed(0)}/s (${(loginRate / verifyRate).toFixed(2)}×), ` +
        `bare Fastify + argon2id ${httpVerifyRate.toFixed(0)}/s (${(httpVerifyRate / verifyRate).toFixed(2)}×), in ${rounds} alternating rounds; ` +
        `machine ${(100 * loginCpu.machineBusy).toFixed(0)}% busy during logins; CPU per login: server ${loginCpu.serverMs.toFixed(1)} ms ` +
        `(main thread ${loginCpu.serverMainThreadMs.toFixed(1)}), load generator ${loginCpu.clientMs.toFixed(1)} ms, postgres ${loginCpu.postgresMs.toFixed(1)} ms; ` +
        `bare argon2id ${loginCpu.argon2Ms.toFixed(1)} ms per verification; bare Fastify + argon2id ${bareCpu.serverMs.toFixed(1)} ms ` +
        `(main thread ${bareCpu.serverMainThreadMs.toFixed(1)}), load generator ${bareCpu.clientMs.toFixed(1)} ms`,
    );
    const bareLogin = (label, rate, cpu) =>
      console.log(
        `${label} ${rate.toFixed(0)}/s (${(rate / verifyRate).toFixed(2)}× bare argon2id); CPU per login: server ${cpu.serverMs.toFixed(1)} ms ` +
          `(main thread ${cpu.serverMainThreadMs.toFixed(1)}), load generator ${cpu.clientMs.toFixed(1)} ms, postgres ${cpu.postgresMs.toFixed(1)} ms`,
      );
    if (floor) {
      bareLogin('(e") the floor of a login (bare Fastify + pg + argon2id, two round trips, two commits)', floorRate, floorCpu);
      bareLogin(
        '(e‴) the bound of any login keeping its sessions in PostgreSQL (the hash read, the session written)',
        boundRate,
        boundCpu,
      );
    }

    return {
      logins: n,
      rounds,
      loginsPerSecond: loginRate,
      argon2PerSecond: verifyRate,
      ratio: loginRate / verifyRate,
      httpArgon2PerSecond: httpVerifyRate,
      cpuPerLoginMs: loginCpu,
      cpuPerHttpVerificationMs: bareCpu,
      floorPerSecond: floorRate,
      cpuPerFloorLoginMs: floorCpu,
      boundPerSecond: boundRate,
      cpuPerBoundLoginMs: boundCpu,
    };
  }
  const serverPids = servers.map((x) => x.child.pid);
  if (LOGINS) {
    const e = await logins();
    await Promise.all(servers.map((x) => x.stop()));
    // The logins' figures alone, at full precision (the lines above round them).
    fs.writeFileSync(path.join(ROOT, 'bench/results.json'), `${JSON.stringify({ mode: 'logins', e }, null, 2)}\n`);
    return;
  }
  const baseline = await startBaseline();
  const byId = `${api}/twoFAWhitelist/${entryId}`;
  const baselineUrl = `${baseline.base}/row/${service}/${entryId}`;
  // Each instance gets its share of the connections; the figures are their sums.
  const byIdOn = (x) => byId.replace(base, x.base);
  const signedGet = servers.map((x) => ({
    url: byIdOn(x),
    setupRequest: (req) => {
      req.headers = { ...req.headers, ...signer('GET', byIdOn(x), '') };
      return req;
    },
  }));
  const bearerGet = servers.map((x) => ({ url: byIdOn(x), headers: { authorization: bearer } }));
  // Warm every path (JIT, pools), then alternate: baseline, (a), (b), baseline; the baseline is the mean of both.
  for (const targets of [[{ url: baselineUrl }], signedGet, bearerGet]) await load(targets, P.warmup);
  const base1 = await load([{ url: baselineUrl }], P.seconds, [baseline.pid]);
  const a = await load(signedGet, P.seconds, serverPids);
  const b = await load(bearerGet, P.seconds, serverPids);
  const base2 = await load([{ url: baselineUrl }], P.seconds, [baseline.pid]);
  const baseRps = (base1.rps + base2.rps) / 2;
  baseline.stop();
  if (READS) {
    const fx = (r) =>
      `${r.rps.toFixed(0)} req/s, p50 ${r.p50} ms, p99 ${r.p99} ms, CPU µs/req: server ${r.cpuUsPerRequest.toFixed(0)}, postgres ${r.postgresCpuUsPerRequest.toFixed(0)}, load ${r.loadCpuUsPerRequest.toFixed(0)}`;
    console.log(`baseline ${fx(base1)} / ${fx(base2)}`);
    console.log(`(a) signed ${fx(a)}: ${(a.rps / baseRps).toFixed(2)}×`);
    console.log(`(b) bearer ${fx(b)}: ${(b.rps / baseRps).toFixed(2)}×`);
    await Promise.all(servers.map((x) => x.stop()));
    return;
  }

  // (c) the whole list, sequential calls.
  const listTimes = [];
  for (let i = 0; i < P.listCalls; i++) {
    const t0 = performance.now();
    const list = await call('GET', `${api}/twoFAWhitelist`, undefined, { authorization: bearer });
    listTimes.push(performance.now() - t0);
    if (list.length !== P.entries) throw new Error('the list changed under the bench');
  }

  // (d) signed POSTs of new entries, 10 at a time, until their tasks are done.
  const d0 = performance.now();
  const taskIds = await pool(P.posts, 10, async (i) => {
    const url = `${api}/twoFAWhitelist`;
    const body = JSON.stringify({ ip: `12.${Math.floor(i / 250)}.${i % 250}.0/24`, description: `bench post ${i}` });
    const task = await call('POST', url, body, signer('POST', url, body));
    return task.taskId;
  });
  const postSeconds = (performance.now() - d0) / 1000;
  await waitTasksDone(api, bearer, taskIds);
  const dSeconds = (performance.now() - d0) / 1000;

  // The drain and the POSTs left dead rows behind: PostgreSQL's autovacuum would clean them during the logins and
  // charge them for it. Cleaned here first, as it would be between the two in a quiet minute.
  await settle();
  const e = await logins();

  const rssMb = Math.max(...servers.map((x) => rssOf(x.child.pid)));
  // What the RSS holds, from the server's own /metrics (prom-client's process and V8 figures), read at the same time.
  const memory = await memoryOf(servers[0].base);
  if (memory)
    console.log(
      `server memory after the run: ${Object.entries(memory)
        .map(([k, v]) => `${k} ${v.toFixed(0)} MB`)
        .join(', ')}`,
    );
  const results = {
    date: new Date().toISOString(),
    mode: QUICK ? 'quick' : 'full',
    instances: INSTANCES,
    exactlyOnce: once,
    database: databaseUrl ? 'postgresql' : 'embedded',
    machine: `${os.cpus().length} × ${os.cpus()[0]?.model ?? 'cpu'}, node ${process.version}`,
    baseline: { rps: baseRps, runs: [base1, base2] },
    a: { ...a, ratio: a.rps / baseRps },
    b: { ...b, ratio: b.rps / baseRps },
    c: { medianMs: median(listTimes), p99Ms: Math.max(...listTimes), entries: P.entries },
    d: { posts: P.posts, postsPerSecond: P.posts / postSeconds, secondsUntilDone: dSeconds },
    e,
    f: { tasks: P.entries, seconds: drained },
    rssMb,
    memoryMb: memory,
  };
  fs.writeFileSync(path.join(ROOT, 'bench/results.json'), `${JSON.stringify(results, null, 2)}\n`);
  printTable(results);
  await Promise.all(servers.map((x) => x.stop()));
}

function printTable(r) {
  const fx = (n, d = 0) => n.toFixed(d);
  const rows = [
    ['scenario', 'result', 'p50 ms', 'p99 ms', 'baseline', 'ratio', 'target'],
    [
      'baseline: bare Fastify + pg, GET one row',
      `${fx(r.baseline.rps)} req/s`,
      fx(r.baseline.runs[0].p50, 1),
      fx(r.baseline.runs[0].p99, 1),
      '',
      '',
      '',
    ],
    [
      '(a) signed GET …/twoFAWhitelist/{id}',
      `${fx(r.a.rps)} req/s`,
      fx(r.a.p50, 1),
      fx(r.a.p99, 1),
      `${fx(r.baseline.rps)} req/s`,
      fx(r.a.ratio, 2),
      verdict(r.a.ratio >= 0.8 && r.a.p99 <= 25, '≥ 0.8×, p99 ≤ 25'),
    ],
    [
      '(b) bearer GET …/twoFAWhitelist/{id}',
      `${fx(r.b.rps)} req/s`,
      fx(r.b.p50, 1),
      fx(r.b.p99, 1),
      `${fx(r.baseline.rps)} req/s`,
      fx(r.b.ratio, 2),
      verdict(r.b.ratio >= 0.8 && r.b.p99 <= 25, '≥ 0.8×, p99 ≤ 25'),
    ],
    [
      `(c) GET list of ${r.c.entries} entries`,
      `${fx(r.c.medianMs, 1)} ms median`,
      fx(r.c.medianMs, 1),
      fx(r.c.p99Ms, 1),
      '',
      '',
      verdict(r.c.medianMs <= 50, 'median ≤ 50 ms'),
    ],
    [
      `(d) ${r.d.posts} signed POSTs until done`,
      `${fx(r.d.postsPerSecond)} POST/s, done in ${fx(r.d.secondsUntilDone, 1)} s`,
      '',
      '',
      '',
      '',
      '',
    ],
    [
      `(e) ${r.e.logins} logins, password + TOTP`,
      `${fx(r.e.loginsPerSecond)} /s`,
      '',
      '',
      `${fx(r.e.argon2PerSecond)} argon2id/s`,
      fx(r.e.ratio, 2),
      verdict(r.e.ratio >= 0.8, '≥ 0.8×'),
    ],
    [
      "(e') bare Fastify + argon2id, same client",
      `${fx(r.e.httpArgon2PerSecond)} /s`,
      '',
      '',
      `${fx(r.e.argon2PerSecond)} argon2id/s`,
      fx(r.e.httpArgon2PerSecond / r.e.argon2PerSecond, 2),
      "the stack's ceiling for (e)",
    ],
    ...(r.e.floorPerSecond === null
      ? []
      : [
          [
            '(e") the floor of a login, bare stack',
            `${fx(r.e.floorPerSecond)} /s`,
            '',
            '',
            `${fx(r.e.argon2PerSecond)} argon2id/s`,
            fx(r.e.floorPerSecond / r.e.argon2PerSecond, 2),
            `(e) is ${fx(r.e.loginsPerSecond / r.e.floorPerSecond, 2)}× it`,
          ],
          [
            '(e‴) the bound of any login on PostgreSQL',
            `${fx(r.e.boundPerSecond)} /s`,
            '',
            '',
            `${fx(r.e.argon2PerSecond)} argon2id/s`,
            fx(r.e.boundPerSecond / r.e.argon2PerSecond, 2),
            'hash read, session written',
          ],
        ]),
    [
      `(f) drain ${r.f.tasks} whitelist tasks`,
      `${fx(r.f.seconds, 1)} s`,
      '',
      '',
      '',
      '',
      verdict(r.f.seconds <= 20 * (r.f.tasks / 10_000), `≤ ${20 * (r.f.tasks / 10_000)} s`),
    ],
    ['server RSS after the run', `${fx(r.rssMb)} MB`, '', '', '', '', verdict(r.rssMb <= 200, '≤ 200 MB')],
  ];
  const widths = rows[0].map((_, i) => Math.max(...rows.map((row) => row[i].length)));
  const line = (row) => row.map((cell, i) => (i === 0 ? cell.padEnd(widths[i]) : cell.padStart(widths[i]))).join('  ');
  console.log(`\n${line(rows[0])}\n${widths.map((w) => '-'.repeat(w)).join('  ')}`);
  for (const row of rows.slice(1)) console.log(line(row));
  console.log(
    `\n${r.mode} run on ${r.database}, ${r.instances} instance(s), ${CONNECTIONS} connections, ${P.seconds} s per load, pool ${POOL_SIZE}; ${r.machine}; ` +
      `whole run ${((Date.now() - started) / 1000).toFixed(0)} s. Written to bench/results.json.`,
  );
}
const verdict = (ok, target) => `${ok ? 'met' : 'MISSED'}: ${target}`;

/**
 * Loads every target at once, the connections shared among them; returns the summed rate, the worst latencies, and the
 * CPU time the given server processes spent per request (user + system, from /proc: steadier than rates on a shared
 * machine).
 */
async function load(targets, duration, pids = []) {
  const share = Math.max(1, Math.floor(CONNECTIONS / targets.length));
  const cpu0 = pids.reduce((n, pid) => n + cpuMsOf(pid), 0);
  const pg0 = postgresCpu();
  const self0 = process.cpuUsage();
  const runs = await Promise.all(
    targets.map((target) =>
      autocannon({
        url: target.url,
        connections: share,
        duration,
        headers: { accept: 'application/json', ...(target.headers ?? {}) },
        ...(target.setupRequest ? { requests: [{ setupRequest: target.setupRequest }] } : {}),
      }),
    ),
  );
  const bad = runs.reduce((n, r) => n + r.non2xx + r.errors + r.timeouts, 0);
  if (bad > 0) throw new Error(`${targets[0].url}: ${bad} requests failed`);
  const cpuMs = pids.reduce((n, pid) => n + cpuMsOf(pid), 0) - cpu0;
  const pgMs = cpuSince(pg0);
  const self = process.cpuUsage(self0);
  const total = Math.max(
    1,
    runs.reduce((n, r) => n + r.requests.total, 0),
  );
  return {
    cpuUsPerRequest: (cpuMs * 1000) / total,
    postgresCpuUsPerRequest: (pgMs * 1000) / total,
    loadCpuUsPerRequest: (self.user + self.system) / total,
    rps: runs.reduce((n, r) => n + r.requests.average, 0),
    p50: Math.max(...runs.map((r) => r.latency.p50)),
    p99: Math.max(...runs.map((r) => r.latency.p99)),
    requests: runs.reduce((n, r) => n + r.requests.total, 0),
  };
}

/** VACUUM (ANALYZE) of the tables the bench wrote to (PostgreSQL only; skipped if the bench's role may not). */
async function settle() {
  if (!databaseUrl) return;
  const pg = (await import('pg')).default;
  const client = new pg.Client({ connectionString: databaseUrl });
  await client.connect();
  try {
    await client.query('VACUUM (ANALYZE) task, two_fa_whitelist, audit_event');
  } catch (err) {
    console.log(`(the tables were not vacuumed: ${err.message})`);
  } finally {
    await client.end();
  }
}

/**
 * Every queued task applied once: each was claimed once (a task applied twice was claimed twice, its `attempts`
 * would show it), and each entry is enabled. Read from the database directly (PostgreSQL only).
 */
async function appliedOnce() {
  if (!databaseUrl) return 'exactly-once check: PostgreSQL only';
  const pg = (await import('pg')).default;
  const client = new pg.Client({ connectionString: databaseUrl });
  await client.connect();
  try {
    const { rows } = await client.query(
      `SELECT count(*)::int AS tasks, sum(attempts)::int AS claims, count(*) FILTER (WHERE state = 'done')::int AS done
         FROM task WHERE service_name = $1 AND name = 'addTwoFAWhitelist'`,
      [service],
    );
    const entries = await client.query(
      `SELECT count(*) FILTER (WHERE state = 'enabled')::int AS enabled FROM two_fa_whitelist WHERE service_name = $1`,
      [service],
    );
    const { tasks, claims, done } = rows[0];
    const { enabled } = entries.rows[0];
    if (tasks !== P.entries || done !== tasks || claims !== tasks || enabled !== tasks) {
      throw new Error(`tasks ${tasks}, done ${done}, claims ${claims}, entries enabled ${enabled}: not exactly once`);
    }
    return `exactly once: ${tasks} tasks, ${claims} claims, ${done} done, ${enabled} entries enabled`;
  } finally {
    await client.end();
  }
}

/**
 * OVH's signature headers for a call, with the current time (the server allows a small window). The load generator
 * shares the machine with the server: a call's headers are signed once per second and reused within it.
 */
function ovhSigner(applicationKey, applicationSecret, consumerKey) {
  const signed = new Map();
  return (method, url, body) => {
    const timestamp = String(Math.floor(Date.now() / 1000));
    const key = `${method} ${url} ${body}`;
    const hit = signed.get(key);
    if (hit?.['x-ovh-timestamp'] === timestamp) return hit;
    const sha = createHash('sha1').update([applicationSecret, consumerKey, method, url, body, timestamp].join('+')).digest('hex');
    const headers = {
      'x-ovh-application': applicationKey,
      'x-ovh-consumer': consumerKey,
      'x-ovh-timestamp': timestamp,
      'x-ovh-signature': `$1$${sha}`,
      ...(body ? { 'content-type': 'application/json' } : {}),
    };
    if (signed.size > 10_000) signed.clear();
    signed.set(key, headers);
    return headers;
  };
}

async function startServer() {
  const port = await freePort();
  const base = `http://127.0.0.1:${port}`;
  const log = fs.openSync(path.join(tmp, 'server.log'), 'a');
  // BENCH_CPU_PROF=<dir>: the server writes a V8 CPU profile there when it stops (open it in Chrome's DevTools).
  const profile = process.env.BENCH_CPU_PROF ? ['--cpu-prof', `--cpu-prof-dir=${path.resolve(process.env.BENCH_CPU_PROF)}`] : [];
  // (f) counts from here: a server's worker starts draining before its readiness answers.
  const spawnedAt = performance.now();
  // BENCH_SERVER_FLAGS='--trace-gc …': Node.js flags for the server only (NODE_OPTIONS would reach the bench too).
  const flags = (process.env.BENCH_SERVER_FLAGS ?? '').split(' ').filter(Boolean);
  const child = spawn(process.execPath, [...profile, ...flags, 'dist/server.js'], {
    cwd: ROOT,
    env: { ...env, PORT: String(port) },
    stdio: ['ignore', log, log],
  });
  fs.closeSync(log);
  children.add(child);
  await waitReady(base, child);
  return { base, child, spawnedAt, stop: () => stopChild(child) };
}

async function startBaseline() {
  const child = spawn(process.execPath, ['bench/baseline.mjs'], {
    cwd: ROOT,
    env: {
      ...process.env,
      BASELINE_DATABASE_URL: databaseUrl ?? '',
      BASELINE_POOL_SIZE: String(POOL_SIZE),
      BASELINE_SERVICE: service,
    },
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  children.add(child);
  const port = await new Promise((resolve, reject) => {
    const lines = readline.createInterface({ input: child.stdout });
    lines.on('line', (l) => l.startsWith('listening ') && resolve(Number(l.slice(10))));
    child.once('exit', (code) => reject(new Error(`the baseline server exited with ${code}`)));
  });
  return { base: `http://127.0.0.1:${port}`, pid: child.pid, stop: () => stopChild(child) };
}

/** Seconds from the servers' start until no task of the service is left to do (their start-up included). */
async function waitDrained(api, bearer, since) {
  const deadline = Date.now() + 300_000;
  for (;;) {
    const left = [];
    for (const state of ['todo', 'doing']) {
      left.push(...(await call('GET', `${api}/task?state=${state}`, undefined, { authorization: bearer })));
    }
    if (left.length === 0) return (performance.now() - since) / 1000;
    if (Date.now() > deadline) throw new Error(`${left.length} tasks still not done after 5 minutes`);
    await sleep(200);
  }
}

async function waitTasksDone(api, bearer, taskIds) {
  const deadline = Date.now() + 120_000;
  for (const id of taskIds) {
    for (;;) {
      const task = await call('GET', `${api}/task/${id}`, undefined, { authorization: bearer });
      if (task.state === 'done') break;
      if (['error', 'canceled'].includes(task.state)) throw new Error(`task ${id} ended ${task.state}`);
      if (Date.now() > deadline) throw new Error(`task ${id} not done in time`);
      await sleep(50);
    }
  }
}

/**
 * Each body POSTed once (JSON) to its target, LOGIN_CONCURRENCY connections in all, through autocannon. Returns the
 * count of answers per status code.
 */
async function postEach(targets) {
  const share = Math.max(1, Math.floor(LOGIN_CONCURRENCY / targets.length));
  // autocannon ends a run on its one-second tick: the load's time is its last answer's.
  const started = performance.now();
  let last = started;
  const runs = await Promise.all(
    targets
      .filter(({ bodies }) => bodies.length > 0)
      .map(({ url, bodies }) => {
        let next = 0;
        return autocannon({
          url,
          method: 'POST',
          connections: Math.min(share, bodies.length),
          amount: bodies.length,
          timeout: 10,
          headers: { 'content-type': 'application/json' },
          requests: [
            {
              setupRequest: (req) => {
                const { headers, body } = bodies[next++ % bodies.length];
                return { ...req, headers: { ...req.headers, ...headers }, body };
              },
              onResponse: () => {
                last = performance.now();
              },
            },
          ],
        });
      }),
  );
  const statuses = {};
  for (const run of runs) {
    for (const [code, { count: n }] of Object.entries(run.statusCodeStats ?? {})) statuses[code] = (statuses[code] ?? 0) + n;
    if (run.errors + run.timeouts > 0) statuses.errors = (statuses.errors ?? 0) + run.errors + run.timeouts;
  }
  return { statuses, ms: last - started };
}

async function pool(n, width, fn) {
  const out = new Array(n);
  let next = 0;
  await Promise.all(
    Array.from({ length: Math.min(width, n) }, async () => {
      while (next < n) {
        const i = next++;
        out[i] = await fn(i);
      }
    }),
  );
  return out;
}

const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const count = (xs) => xs.reduce((m, x) => ({ ...m, [x]: (m[x] ?? 0) + 1 }), {});

/** CPU time (user + system) a process has used, in ms; 0 where /proc is not there. */
function cpuMsOf(pid, thread) {
  try {
    const stat = fs.readFileSync(thread === undefined ? `/proc/${pid}/stat` : `/proc/${pid}/task/${thread}/stat`, 'utf8');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return ((Number(fields[11]) + Number(fields[12])) * 1000) / CLOCK_TICKS;
  } catch {
    return 0;
  }
}
const CLOCK_TICKS = 100;
/** The machine's busy CPU time, all cores, in clock ticks (/proc/stat: user, nice, system, irq, softirq, steal). */
function machineCpu() {
  try {
    const f = fs.readFileSync('/proc/stat', 'utf8').split('\n')[0].trim().split(/\s+/).slice(1).map(Number);
    return { busy: f[0] + f[1] + f[2] + f[5] + f[6] + f[7] };
  } catch {
    return { busy: 0 };
  }
}
const cpuMsOfUsage = (usage) => (usage.user + usage.system) / 1000;

/**
 * CPU time of PostgreSQL's processes (its backends serve the load), in ms per process id; compare two readings with
 * `cpuSince`, which counts those started meanwhile from their start (one that ends in between takes its time with it).
 */
function postgresCpu() {
  const byPid = new Map();
  for (const entry of fs.existsSync('/proc') ? fs.readdirSync('/proc') : []) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      if (fs.readFileSync(`/proc/${entry}/comm`, 'utf8').trim() === 'postgres') byPid.set(entry, cpuMsOf(Number(entry)));
    } catch {
      // the process ended meanwhile
    }
  }
  return byPid;
}
function cpuSince(before) {
  let ms = 0;
  // A backend started meanwhile (the pool replaces idle connections) counts from its start.
  for (const [pid, now] of postgresCpu()) ms += now - (before.get(pid) ?? 0);
  return ms;
}

/** The server's memory by kind, in MB, from its /metrics (the bench gives it METRICS_TOKEN); undefined if unread. */
async function memoryOf(base) {
  try {
    const res = await fetch(`${base}/metrics`, { headers: { authorization: `Bearer ${env.METRICS_TOKEN}` } });
    const text = await res.text();
    const value = (name) => Number(new RegExp(`^${name}(?:\\{[^}]*\\})? (\\S+)$`, 'm').exec(text)?.[1] ?? NaN) / 1048576;
    return {
      rss: value('pcc_process_resident_memory_bytes'),
      v8HeapTotal: value('pcc_nodejs_heap_size_total_bytes'),
      v8HeapUsed: value('pcc_nodejs_heap_size_used_bytes'),
      external: value('pcc_nodejs_external_memory_bytes'),
    };
  } catch {
    return undefined;
  }
}

function rssOf(pid) {
  try {
    const line = fs
      .readFileSync(`/proc/${pid}/status`, 'utf8')
      .split('\n')
      .find((l) => l.startsWith('VmRSS:'));
    return Number(line.split(/\s+/)[1]) / 1024;
  } catch {
    return process.memoryUsage().rss / 1024 / 1024;
  }
}

/** Runs a CLI command of the built server and returns its JSON output. */
async function cli(...args) {
  const options = typeof args.at(-1) === 'object' ? args.pop() : {};
  const run = promisify(execFile);
  const child = run(process.execPath, ['dist/cli.js', ...args], { cwd: ROOT, env, timeout: 60_000 });
  if (options.stdin !== undefined) {
    child.child.stdin.end(options.stdin);
  }
  const { stdout } = await child;
  return JSON.parse(stdout);
}

async function call(method, url, body, headers = {}) {
  const res = await fetch(url, {
    method,
    headers: { ...(body ? { 'content-type': 'application/json' } : {}), ...headers },
    body: typeof body === 'string' || body === undefined ? body : JSON.stringify(body),
    signal: AbortSignal.timeout(30_000),
  });
  const text = await res.text();
  if (!res.ok) throw new Error(`${method} ${url} answered ${res.status}: ${text}`);
  return JSON.parse(text);
}

async function waitReady(base, child) {
  const deadline = Date.now() + 60_000;
  for (;;) {
    if (child.exitCode !== null) throw new Error(`the server exited with code ${child.exitCode}`);
    try {
      const res = await fetch(`${base}/health/ready`, { signal: AbortSignal.timeout(1000) });
      if (res.ok) return;
    } catch {
      // not listening yet
    }
    if (Date.now() > deadline) throw new Error('the server was not ready within 60 s');
    await sleep(50);
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

/** SIGTERM (a graceful stop), SIGKILL after 10 s. */
async function stopChild(child) {
  children.delete(child);
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise((resolve) => child.once('exit', resolve));
  child.kill('SIGTERM');
  const timer = setTimeout(() => child.kill('SIGKILL'), 10_000);
  await exited;
  clearTimeout(timer);
}

function showServerLog() {
  try {
    const text = fs.readFileSync(path.join(tmp, 'server.log'), 'utf8').trim();
    if (text) console.error(`server log:\n${text.split('\n').slice(-20).join('\n')}`);
  } catch {
    // no log yet
  }
}

const killAll = () => {
  for (const child of children) child.kill('SIGKILL');
  fs.rmSync(tmp, { recursive: true, force: true });
};
const watchdog = setTimeout(() => {
  console.error(`bench: still running after ${P.watchdogMs / 1000} s, giving up`);
  killAll();
  process.exit(1);
}, P.watchdogMs);
for (const signal of ['SIGINT', 'SIGTERM']) {
  process.once(signal, () => {
    killAll();
    process.exit(130);
  });
}

let code = 0;
try {
  await main();
} catch (err) {
  console.error(`bench failed: ${err instanceof Error ? err.stack : String(err)}`);
  showServerLog();
  code = 1;
} finally {
  for (const child of [...children]) await stopChild(child);
  fs.rmSync(tmp, { recursive: true, force: true });
  clearTimeout(watchdog);
}
process.exit(code);
