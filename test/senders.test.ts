import { createHmac } from 'node:crypto';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import t, { type Test } from 'tap';
import { loadConfig } from '../src/config.js';
import { OutboxDrainer, enqueueMessage } from '../src/notify/outbox.js';
import { senderFor } from '../src/notify/provider.js';
import { webhookSender } from '../src/notify/senders.js';
import { buildTestApp, silentLog } from './helpers/app.js';
import { sign } from './helpers/ovh-sign.js';
import { WebhookReceiver } from './helpers/secure.js';

// Where SMS and e-mails leave: the signed webhook, OVH's SMS API, and the outbox that retries them.
const ctx = await buildTestApp(t);
const db = ctx.handle.db;

interface Captured {
  method: string;
  url: string;
  headers: http.IncomingHttpHeaders;
  body: string;
}

/** A local HTTP server standing in for a remote API: records each request, answers `status`. */
async function fakeServer(t: Test) {
  const state = { requests: [] as Captured[], status: 200, url: '' };
  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      state.requests.push({
        method: req.method!,
        url: req.url!,
        headers: req.headers,
        body: Buffer.concat(chunks).toString('utf8'),
      });
      res.writeHead(state.status, { 'content-type': 'application/json' }).end('{}');
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  state.url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  t.teardown(() => new Promise<void>((resolve) => server.close(() => resolve())));
  return state;
}

async function queue(body: string, recipient = '+33.612345678') {
  await db
    .transaction()
    .execute((trx) =>
      enqueueMessage(
        trx,
        ctx.secretBox,
        { serviceName: null, channel: 'sms', recipient, body, operationId: null },
        ctx.clock.now(),
      ),
    );
  return db.selectFrom('outbox').selectAll().orderBy('id', 'desc').limit(1).executeTakeFirstOrThrow();
}
const outboxRow = (id: number) => db.selectFrom('outbox').selectAll().where('id', '=', id).executeTakeFirstOrThrow();

t.test('the webhook sender POSTs {channel, to, message, operationId} as JSON', async (t) => {
  const server = await fakeServer(t);
  await webhookSender(`${server.url}/hook`, 'a-shared-secret-of-16+').send({
    channel: 'sms',
    to: '+33.612345678',
    body: 'PCC pcc-1: Token: 12345678',
    operationId: 42,
  });
  t.equal(server.requests.length, 1);
  const [req] = server.requests;
  t.equal(req!.method, 'POST');
  t.equal(req!.url, '/hook');
  t.match(req!.headers['content-type'], /^application\/json/);
  t.strictSame(JSON.parse(req!.body), {
    channel: 'sms',
    to: '+33.612345678',
    message: 'PCC pcc-1: Token: 12345678',
    operationId: 42,
  });
});

t.test('the webhook signature is sha256= HMAC-SHA256 of "<timestamp>.<body>" keyed by the secret', async (t) => {
  const server = await fakeServer(t);
  const secret = 'a-shared-secret-of-16+';
  const at = new Date('2026-11-28T10:00:00Z');
  await webhookSender(server.url, secret, () => at).send({
    channel: 'email',
    to: 'a@example.com',
    body: 'hi',
    operationId: null,
  });
  const [req] = server.requests;
  t.equal(req!.headers['x-pcc-timestamp'], String(at.getTime() / 1000));
  const expected = createHmac('sha256', secret)
    .update(`${at.getTime() / 1000}.${req!.body}`)
    .digest('hex');
  t.equal(req!.headers['x-pcc-signature'], `sha256=${expected}`);
  const other = createHmac('sha256', 'another-secret-16chars')
    .update(`${at.getTime() / 1000}.${req!.body}`)
    .digest('hex');
  t.not(req!.headers['x-pcc-signature'], `sha256=${other}`, 'another key gives another signature');
});

t.test('a webhook that answers an error makes the send fail', async (t) => {
  const server = await fakeServer(t);
  server.status = 500;
  await t.rejects(
    webhookSender(server.url, 'a-shared-secret-of-16+').send({ channel: 'sms', to: '+33.6', body: 'x', operationId: null }),
    /webhook answered 500/,
  );
});

t.test('the outbox sends a queued message through the webhook and erases its body', async (t) => {
  const receiver = await WebhookReceiver.start(t);
  const row = await queue('PCC: hello');
  t.ok(row.body_ciphertext, 'sealed while queued');
  t.notMatch(row.body_ciphertext!, /hello/);
  const drainer = new OutboxDrainer(db, ctx.secretBox, receiver.sender(), silentLog, 'w1');
  t.equal(await drainer.drain(() => ctx.clock.now()), 1);
  t.match(receiver.messages, [{ signatureValid: true, body: { channel: 'sms', to: '+33.612345678', message: 'PCC: hello' } }]);
  t.match(await outboxRow(row.id), { state: 'sent', body_ciphertext: null, attempts: 1, last_error: null });
});

t.test('a message the webhook refuses is retried later, with a delay that doubles', async (t) => {
  const receiver = await WebhookReceiver.start(t);
  receiver.status = 500;
  const row = await queue('PCC: retry me');
  const drainer = new OutboxDrainer(db, ctx.secretBox, receiver.sender(), silentLog, 'w2');
  const start = ctx.clock.now().getTime();
  t.equal(await drainer.drain(() => ctx.clock.now()), 0);
  let r = await outboxRow(row.id);
  t.match(r, { state: 'pending', attempts: 1, last_error: 'webhook answered 500' });
  t.equal(r.next_attempt_at.getTime() - start, 10_000, 'first retry in 10 s');
  t.ok(r.body_ciphertext, 'the body is kept for the retry');
  await drainer.drain(() => ctx.clock.now());
  t.equal(receiver.hits, 1, 'not retried before its time');
  ctx.clock.advance(10_000);
  await drainer.drain(() => ctx.clock.now());
  t.equal(receiver.hits, 2, 'retried once due');
  r = await outboxRow(row.id);
  t.equal(r.attempts, 2);
  t.equal(r.next_attempt_at.getTime() - ctx.clock.now().getTime(), 20_000, 'then in 20 s');
  receiver.status = 200;
  ctx.clock.advance(20_000);
  t.equal(await drainer.drain(() => ctx.clock.now()), 1, 'delivered once the webhook recovers');
  t.match(await outboxRow(row.id), { state: 'sent', body_ciphertext: null, attempts: 3 });
  t.equal(receiver.messages.length, 1);
});

t.test('a message still refused after 8 attempts is failed, and its body erased', async (t) => {
  const receiver = await WebhookReceiver.start(t);
  receiver.status = 500;
  const row = await queue('PCC: Token: 87654321');
  const drainer = new OutboxDrainer(db, ctx.secretBox, receiver.sender(), silentLog, 'w3');
  for (let i = 0; i < 8; i++) {
    await drainer.drain(() => ctx.clock.now());
    ctx.clock.advance(15 * 60_000);
  }
  t.equal(receiver.hits, 8);
  t.match(await outboxRow(row.id), { state: 'failed', attempts: 8, body_ciphertext: null, last_error: 'webhook answered 500' });
  await drainer.drain(() => ctx.clock.now());
  t.equal(receiver.hits, 8, 'a failed message is not tried again');
});

t.test('a message whose sender died is sent again once its lease ends', async (t) => {
  const receiver = await WebhookReceiver.start(t);
  const row = await queue('PCC: lease');
  await db
    .updateTable('outbox')
    .set({ state: 'sending', locked_by: 'dead', locked_until: ctx.clock.now() })
    .where('id', '=', row.id)
    .execute();
  const drainer = new OutboxDrainer(db, ctx.secretBox, receiver.sender(), silentLog, 'w4');
  ctx.clock.advance(1000);
  t.equal(await drainer.drain(() => ctx.clock.now()), 1);
  t.equal((await outboxRow(row.id)).state, 'sent');
});

const ovhEnv = (endpoint: string) => ({
  SMS_PROVIDER: 'ovh',
  OVH_SMS_ENDPOINT: endpoint,
  OVH_SMS_APPLICATION_KEY: 'app-key-1',
  OVH_SMS_APPLICATION_SECRET: 'app-secret-1',
  OVH_SMS_CONSUMER_KEY: 'consumer-key-1',
  OVH_SMS_SERVICE_NAME: 'sms-ab12345-1',
});

t.test('the ovh sender posts an SMS job to /sms/{service}/jobs at OVH_SMS_ENDPOINT', async (t) => {
  const server = await fakeServer(t);
  const sender = senderFor(loadConfig(ovhEnv(`${server.url}/1.0`)));
  t.equal(sender.name, 'ovh');
  await sender.send({ channel: 'sms', to: '+33.612345678', body: 'PCC pcc-1: Token: 12345678', operationId: 7 });
  t.equal(server.requests.length, 1);
  const [req] = server.requests;
  t.equal(req!.method, 'POST');
  t.equal(req!.url, '/1.0/sms/sms-ab12345-1/jobs');
  const body = JSON.parse(req!.body);
  t.match(body, { message: 'PCC pcc-1: Token: 12345678', receivers: ['+33612345678'], charset: 'UTF-8', noStopClause: true });
  t.equal(req!.headers['x-ovh-application'], 'app-key-1');
  t.equal(req!.headers['x-ovh-consumer'], 'consumer-key-1');
});

t.test('the ovh sender signs like OVH: $1$ + sha1(AS+CK+POST+url+body+timestamp)', async (t) => {
  const server = await fakeServer(t);
  const sender = senderFor(loadConfig(ovhEnv(`${server.url}/1.0/`)));
  const before = Math.floor(Date.now() / 1000);
  await sender.send({ channel: 'sms', to: '+33.612345678', body: 'héllo', operationId: null });
  const [req] = server.requests;
  const timestamp = Number(req!.headers['x-ovh-timestamp']);
  t.ok(timestamp >= before && timestamp <= before + 5, 'a current unix timestamp');
  t.equal(
    req!.headers['x-ovh-signature'],
    sign({
      as: 'app-secret-1',
      ck: 'consumer-key-1',
      method: 'POST',
      url: `${server.url}/1.0/sms/sms-ab12345-1/jobs`,
      body: req!.body,
      timestamp,
    }),
  );
});

t.test('the ovh sender refuses e-mails', async (t) => {
  const server = await fakeServer(t);
  const sender = senderFor(loadConfig(ovhEnv(`${server.url}/1.0`)));
  await t.rejects(sender.send({ channel: 'email', to: 'a@example.com', body: 'x', operationId: null }), /SMS only/);
  t.equal(server.requests.length, 0);
});

t.test('an error from OVH’s API makes the send fail', async (t) => {
  const server = await fakeServer(t);
  server.status = 403;
  const sender = senderFor(loadConfig(ovhEnv(`${server.url}/1.0`)));
  await t.rejects(sender.send({ channel: 'sms', to: '+33.612345678', body: 'x', operationId: null }), /OVH SMS API answered 403/);
});

t.test('with DATABASE_URL and no SMS_PROVIDER there is no sender: tokens must not land on a console', async (t) => {
  t.throws(() => senderFor(loadConfig({ DATABASE_URL: 'postgres://x@127.0.0.1/x' })), /SMS_PROVIDER must be set/);
});
