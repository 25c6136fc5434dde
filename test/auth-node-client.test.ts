import fs from 'node:fs';
import https from 'node:https';
import os from 'node:os';
import path from 'node:path';
import type { AddressInfo } from 'node:net';
import t from 'tap';
import ovh from '@ovhcloud/node-ovh';
import { buildApp } from '../src/app.js';
import { systemClock } from '../src/clock.js';
import { loadConfig } from '../src/config.js';
import { writeDevCert } from '../src/dev-cert.js';
import { freshDatabase } from './helpers/db.js';

/**
 * OVH's official Node client (`@ovhcloud/node-ovh`), unmodified, against the service over HTTPS: it only speaks
 * HTTPS and signs `https://<host without port><path>`. It requests a consumer key, the account holder validates it
 * on the validation page, then the client runs the whitelist CRUD and reads the tasks.
 */
type OvhClient = {
  consumerKey: string | null;
  requestPromised(method: string, path: string, params?: Record<string, unknown>): Promise<unknown>;
};
const newClient = ovh as unknown as (params: Record<string, unknown>) => OvhClient;

t.test('the official node client works unmodified over HTTPS', async (t) => {
  const certDir = fs.mkdtempSync(path.join(os.tmpdir(), 'pcc-2fa-cert-'));
  t.teardown(() => fs.rmSync(certDir, { recursive: true, force: true }));
  const { cert, key } = await writeDevCert(certDir);
  const certPem = fs.readFileSync(cert);
  // Trust our dev certificate (and only it) for the client's https.request: verification stays on.
  const previousCa = https.globalAgent.options.ca;
  https.globalAgent.options.ca = certPem;
  t.teardown(() => {
    https.globalAgent.options.ca = previousCa;
  });

  const { handle, drop } = await freshDatabase();
  const config = loadConfig({ TLS_CERT: cert, TLS_KEY: key });
  const app = await buildApp({ handle, config, clock: systemClock, https: { cert: certPem, key: fs.readFileSync(key) } });
  await app.listen({ host: '127.0.0.1', port: 0 });
  t.teardown(async () => {
    await app.close();
    await handle.close();
    await drop();
  });
  const port = (app.server.address() as AddressInfo).port;

  const { services } = app.services;
  await services.create('pcc-node', 'acme');
  await services.create('pcc-other', 'someone-else');
  await app.services.auth.setPassword('acme', 'correct horse battery staple');
  const { applicationKey, applicationSecret } = await app.services.auth.createApplication('acme', 'node client test');

  const client = newClient({ appKey: applicationKey, appSecret: applicationSecret, host: 'localhost', port, basePath: '/1.0' });

  const request = (await client.requestPromised('POST', '/auth/credential', {
    accessRules: [
      { method: 'GET', path: '/dedicatedCloud*' },
      { method: 'POST', path: '/dedicatedCloud/pcc-node/*' },
      { method: 'DELETE', path: '/dedicatedCloud/pcc-node/*' },
    ],
  })) as { consumerKey: string; state: string; validationUrl: string };
  t.equal(request.state, 'pendingValidation');
  t.match(request.consumerKey, /^[A-Za-z0-9]{32}$/);
  const validationUrl = new URL(request.validationUrl);
  t.equal(validationUrl.origin, `https://localhost:${port}`, 'the validation link points at this server');

  client.consumerKey = request.consumerKey;
  t.match(await failure(client.requestPromised('GET', '/dedicatedCloud')), { error: 403 }, 'a pending key cannot call');

  // The account holder opens the link and authorizes for one day.
  const pageHtml = await (await httpsGet(validationUrl, certPem)).text;
  t.match(pageHtml, /GET \/dedicatedCloud\*/, 'the page lists the requested rules');
  const form = new URLSearchParams({
    credentialToken: validationUrl.searchParams.get('credentialToken')!,
    login: 'acme',
    password: 'correct horse battery staple',
    validity: '1d',
    decision: 'validated',
  });
  const validated = await app.inject({
    method: 'POST',
    url: '/auth/',
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    payload: form.toString(),
  });
  t.equal(validated.statusCode, 200, validated.body);

  t.same(await client.requestPromised('GET', '/dedicatedCloud'), ['pcc-node'], 'only the account’s own services');
  t.match(await failure(client.requestPromised('GET', '/dedicatedCloud/pcc-other')), {
    error: 404,
    message: 'This service does not exist',
  });

  const base = '/dedicatedCloud/pcc-node/twoFAWhitelist';
  const addTask = (await client.requestPromised('POST', base, { ip: '203.0.113.0/24', description: 'office é' })) as {
    taskId: number;
    state: string;
    name: string;
  };
  t.equal(addTask.state, 'todo');
  const ids = (await client.requestPromised('GET', base)) as number[];
  t.equal(ids.length, 1);
  const id = ids[0]!;
  t.match(await client.requestPromised('GET', `${base}/${id}`), {
    id,
    ip: '203.0.113.0',
    cidrNetmask: 24,
    description: 'office é',
  });

  // The worker (started by the server process; here run by hand) applies the task.
  const { TaskWorker } = await import('../src/worker/worker.js');
  const pino = (await import('pino')).default;
  const worker = new TaskWorker({
    handle,
    handlers: app.services.handlers,
    clock: systemClock,
    log: pino({ level: 'silent' }),
    leaseSeconds: 60,
    pollMs: 60_000,
  });
  await worker.drain();
  t.match(await client.requestPromised('GET', `${base}/${id}`), { state: 'enabled' });
  t.match(await client.requestPromised('GET', `/dedicatedCloud/pcc-node/task/${addTask.taskId}`), {
    state: 'done',
    progress: 100,
  });

  await client.requestPromised('POST', `${base}/${id}/changeProperties`, { description: 'renamed' });
  t.match(await client.requestPromised('GET', `${base}/${id}`), { description: 'renamed' });
  const removeTask = (await client.requestPromised('DELETE', `${base}/${id}`)) as { taskId: number };
  await worker.drain();
  t.match(await client.requestPromised('GET', `${base}/${id}`), { state: 'removed' });
  t.same(await client.requestPromised('GET', base), []);
  const doneTasks = (await client.requestPromised('GET', '/dedicatedCloud/pcc-node/task', { state: 'done' })) as number[];
  t.ok(doneTasks.includes(addTask.taskId) && doneTasks.includes(removeTask.taskId), 'tasks are listed with the state filter');

  // Outside the rules: a POST on another path is refused with OVH's code.
  t.match(
    await failure(
      client.requestPromised('POST', '/dedicatedCloud/pcc-other/twoFAWhitelist', { ip: '198.51.100.1', description: 'x' }),
    ),
    { error: 403, message: 'This call has not been granted' },
  );
});

/** The client rejects with `{error: <status>, message}`; a call that succeeds here is a test failure. */
async function failure(call: Promise<unknown>): Promise<unknown> {
  try {
    const value = await call;
    return { unexpectedSuccess: value };
  } catch (err) {
    return err;
  }
}

function httpsGet(url: URL, ca: Buffer): Promise<{ status: number; text: string }> {
  return new Promise((resolve, reject) => {
    https
      .get(url, { ca }, (res) => {
        let text = '';
        res.setEncoding('utf8');
        res.on('data', (chunk: string) => (text += chunk));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, text }));
      })
      .on('error', reject);
  });
}
