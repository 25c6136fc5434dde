import t, { type Test } from 'tap';
import { buildApp, operatorAccess } from '../src/app.js';
import { openDatabase } from '../src/db/database.js';
import { buildTestApp } from './helpers/app.js';
import { T0, addEntry, addEntryOk, assertOvhError, getEntry, getTask, listIds, rowCounts, whitelistUrl } from './helpers/api.js';
import { engine } from './helpers/db.js';

// One app and database for the file (a fresh embedded database costs seconds); every test works on its own service,
// and the clock is never moved here, so every date is T0.
const ctx = await buildTestApp(t);
const { app } = ctx;

const expectedTask = (fields: Record<string, unknown>) => ({
  createdBy: null,
  createdFrom: 'api',
  datacenterId: null,
  description: null,
  endDate: null,
  executionDate: T0,
  filerId: null,
  hostId: null,
  lastModificationDate: T0,
  maintenanceDateFrom: null,
  maintenanceDateTo: null,
  name: 'addTwoFAWhitelist',
  network: null,
  networkAccessId: null,
  orderId: null,
  parentTaskId: null,
  progress: 0,
  state: 'todo',
  taskId: 0,
  type: 'twoFAWhitelist',
  userId: null,
  vlanId: null,
  ...fields,
});

/** Asserts that a refused call wrote no task, no entry and no audit event for the service. */
async function assertNothingWritten(t: Test, serviceName: string, before: Awaited<ReturnType<typeof rowCounts>>) {
  t.strictSame(await rowCounts(ctx.handle.db, serviceName), before, 'no task, entry or audit event written');
}

for (const prefix of ['/1.0', '/v1']) {
  t.test(`${prefix}: POST of a network answers the creation task with every field of dedicatedCloud.Task`, async (t) => {
    const svc = await ctx.newService();
    const res = await addEntry(app, svc, { ip: '203.0.113.0/24', description: 'backup appliance' }, prefix);
    t.equal(res.statusCode, 200);
    const task = res.json();
    t.ok(Number.isInteger(task.taskId) && task.taskId > 0, 'taskId is a positive integer');
    t.strictSame(
      task,
      expectedTask({ taskId: task.taskId, description: 'Add 203.0.113.0/24 to the 2FA whitelist', network: '203.0.113.0/24' }),
    );
  });

  t.test(`${prefix}: a new entry is listed and reads back as enabling, stored as ip + cidrNetmask`, async (t) => {
    const svc = await ctx.newService();
    await addEntry(app, svc, { ip: '203.0.113.0/24', description: 'backup appliance' }, prefix);
    const list = await app.inject({ method: 'GET', url: whitelistUrl(svc, prefix) });
    t.equal(list.statusCode, 200);
    const ids = list.json<number[]>();
    t.equal(ids.length, 1);
    const id = ids[0] as number;
    t.ok(Number.isInteger(id), 'ids are integers');
    const one = await app.inject({ method: 'GET', url: `${whitelistUrl(svc, prefix)}/${id}` });
    t.equal(one.statusCode, 200);
    t.strictSame(one.json(), { id, ip: '203.0.113.0', cidrNetmask: 24, description: 'backup appliance', state: 'enabling' });
  });

  t.test(`${prefix}: an entry becomes enabled once its task is done`, async (t) => {
    const svc = await ctx.newService();
    const { id, taskId } = await addEntryOk(app, svc, '198.51.100.0/25');
    await ctx.worker.drain();
    const one = await app.inject({ method: 'GET', url: `${whitelistUrl(svc, prefix)}/${id}` });
    t.equal(one.json().state, 'enabled');
    const task = await app.inject({ method: 'GET', url: `${prefix}/dedicatedCloud/${svc}/task/${taskId}` });
    t.equal(task.json().state, 'done');
    t.equal(task.json().progress, 100);
  });

  t.test(`${prefix}: DELETE answers the removal task and the entry goes removing`, async (t) => {
    const svc = await ctx.newService();
    const { id } = await addEntryOk(app, svc, '198.51.100.0/24');
    await ctx.worker.drain();
    const res = await app.inject({ method: 'DELETE', url: `${whitelistUrl(svc, prefix)}/${id}` });
    t.equal(res.statusCode, 200);
    const task = res.json();
    t.strictSame(
      task,
      expectedTask({
        taskId: task.taskId,
        name: 'removeTwoFAWhitelist',
        description: 'Remove 198.51.100.0/24 from the 2FA whitelist',
        network: '198.51.100.0/24',
      }),
    );
    t.equal((await getEntry(app, svc, id)).json().state, 'removing');
  });

  t.test(`${prefix}: a removing entry is removed once its task is done`, async (t) => {
    const svc = await ctx.newService();
    const { id } = await addEntryOk(app, svc, '198.51.100.0/26');
    await ctx.worker.drain();
    const res = await app.inject({ method: 'DELETE', url: `${whitelistUrl(svc, prefix)}/${id}` });
    await ctx.worker.drain();
    t.equal((await getTask(app, svc, res.json().taskId)).state, 'done');
    t.equal((await getEntry(app, svc, id)).json().state, 'removed');
  });

  t.test(`${prefix}: changeProperties answers a task and changes the description`, async (t) => {
    const svc = await ctx.newService();
    const { id } = await addEntryOk(app, svc, '192.0.2.0/24', 'old text');
    const res = await app.inject({
      method: 'POST',
      url: `${whitelistUrl(svc, prefix)}/${id}/changeProperties`,
      payload: { description: 'new text' },
    });
    t.equal(res.statusCode, 200);
    const task = res.json();
    t.strictSame(
      task,
      expectedTask({
        taskId: task.taskId,
        name: 'changePropertiesTwoFAWhitelist',
        description: 'Change the properties of 192.0.2.0/24 in the 2FA whitelist',
        network: '192.0.2.0/24',
      }),
    );
    t.strictSame((await getEntry(app, svc, id)).json(), {
      id,
      ip: '192.0.2.0',
      cidrNetmask: 24,
      description: 'new text',
      state: 'enabling',
    });
  });
}

t.test('changeProperties without a body answers a task and keeps the description', async (t) => {
  const svc = await ctx.newService();
  const { id } = await addEntryOk(app, svc, '192.0.2.128/25', 'kept');
  const res = await app.inject({ method: 'POST', url: `${whitelistUrl(svc)}/${id}/changeProperties` });
  t.equal(res.statusCode, 200);
  t.equal(res.json().name, 'changePropertiesTwoFAWhitelist');
  t.equal((await getEntry(app, svc, id)).json().description, 'kept');
});

t.test("changeProperties with an empty JSON body (what OVH's node client sends) answers a task", async (t) => {
  const svc = await ctx.newService();
  const { id } = await addEntryOk(app, svc, '192.0.2.64/26', 'kept');
  const res = await app.inject({
    method: 'POST',
    url: `${whitelistUrl(svc)}/${id}/changeProperties`,
    headers: { 'content-type': 'application/json' },
    payload: '',
  });
  t.equal(res.statusCode, 200);
  t.equal(res.json().name, 'changePropertiesTwoFAWhitelist');
});

// Address forms: what is stored for each.
const forms: Array<[string, string, string, number]> = [
  ['an IPv4 host is stored with cidrNetmask 32', '203.0.113.7', '203.0.113.7', 32],
  ['an IPv4 /32 network is the same as the host', '203.0.113.8/32', '203.0.113.8', 32],
  ['an IPv6 host is stored with cidrNetmask 128', '2001:db8::7', '2001:db8::7', 128],
  ['an IPv6 network is stored as its network address and prefix', '2001:db8:abcd::/48', '2001:db8:abcd::', 48],
  ['an IPv6 address is stored in its canonical spelling', '2001:0DB8:0000:0000::0001', '2001:db8::1', 128],
  ['an IPv4-mapped IPv6 host is stored as the IPv4 host', '::ffff:203.0.113.9', '203.0.113.9', 32],
  ['an IPv4-mapped IPv6 network is stored as the IPv4 network', '::ffff:198.51.100.0/120', '198.51.100.0', 24],
];
for (const [name, ip, storedIp, cidrNetmask] of forms) {
  t.test(name, async (t) => {
    const svc = await ctx.newService();
    const res = await addEntry(app, svc, { ip, description: 'form' });
    t.equal(res.statusCode, 200, res.body);
    t.equal(res.json().network, `${storedIp}/${cidrNetmask}`, 'the task names the normalised network');
    const [id] = await listIds(app, svc);
    t.strictSame((await getEntry(app, svc, id as number)).json(), {
      id,
      ip: storedIp,
      cidrNetmask,
      description: 'form',
      state: 'enabling',
    });
  });
}

t.test('adding an entry records one audit event with the entry, network and task', async (t) => {
  const svc = await ctx.newService();
  const { id, taskId } = await addEntryOk(app, svc, '203.0.113.0/28');
  const events = await ctx.handle.db.selectFrom('audit_event').selectAll().where('service_name', '=', svc).execute();
  t.equal(events.length, 1);
  t.equal(events[0]?.type, 'twoFAWhitelist.add');
  t.strictSame(events[0]?.data, { whitelistId: id, network: '203.0.113.0/28', taskId, operationId: null, approval: 'bootstrap' });
});

t.test('the list hides removed entries and keeps the others', async (t) => {
  const svc = await ctx.newService();
  const kept = await addEntryOk(app, svc, '203.0.113.0/27');
  const gone = await addEntryOk(app, svc, '203.0.113.32/27');
  await ctx.worker.drain();
  await app.inject({ method: 'DELETE', url: `${whitelistUrl(svc)}/${gone.id}` });
  t.strictSame(
    await listIds(app, svc),
    [kept.id, gone.id].sort((a, b) => a - b),
    'a removing entry is still listed',
  );
  await ctx.worker.drain();
  t.strictSame(await listIds(app, svc), [kept.id]);
});

t.test('GET of a removed entry still answers it, in state removed', async (t) => {
  const svc = await ctx.newService();
  const { id } = await addEntryOk(app, svc, '203.0.113.64/26', 'old appliance');
  await ctx.worker.drain();
  await app.inject({ method: 'DELETE', url: `${whitelistUrl(svc)}/${id}` });
  await ctx.worker.drain();
  const res = await getEntry(app, svc, id);
  t.equal(res.statusCode, 200);
  t.strictSame(res.json(), { id, ip: '203.0.113.64', cidrNetmask: 26, description: 'old appliance', state: 'removed' });
});

// Refused POSTs: 400 naming the field, and nothing written.
const refusedIps: Array<[string, string, RegExp]> = [
  ['a network with host bits set', '203.0.113.7/24', /^\[ip\] .*host bits set.*203\.0\.113\.0\/24/],
  ['a malformed address', '203.0.113', /^\[ip\] 203\.0\.113 is not an IP address/],
  ['a word instead of an address', 'localhost', /^\[ip\] localhost is not an IP address/],
  ['an IPv4 prefix longer than 32', '203.0.113.0/33', /^\[ip\] .*invalid prefix length/],
  ['an IPv6 prefix longer than 128', '2001:db8::/129', /^\[ip\] .*invalid prefix length/],
  ['the whole IPv4 internet (/0)', '0.0.0.0/0', /^\[ip\] .*too wide/],
  ['an IPv4 network wider than the shortest prefix allowed by default (/23)', '10.0.0.0/23', /^\[ip\] .*too wide.*\/24/],
  ['the whole IPv6 internet (::/0)', '::/0', /^\[ip\] .*too wide/],
  ['an IPv6 network wider than the shortest prefix allowed by default (/47)', '2001:db8::/47', /^\[ip\] .*too wide.*\/48/],
  ['an address with a zone id', 'fe80::1%eth0', /^\[ip\] .*not an IP address/],
  ['an IPv4-mapped address with a prefix shorter than /96', '::ffff:203.0.113.0/24', /^\[ip\] .*invalid prefix length/],
];
for (const [what, ip, message] of refusedIps) {
  t.test(`POST of ${what} answers 400 naming ip and creates nothing`, async (t) => {
    const svc = await ctx.newService();
    const before = await rowCounts(ctx.handle.db, svc);
    assertOvhError(t, await addEntry(app, svc, { ip, description: 'refused' }), 400, message);
    await assertNothingWritten(t, svc, before);
  });
}

const refusedBodies: Array<[string, Record<string, unknown>, RegExp]> = [
  ['without ip', { description: 'no ip' }, /^\[ip\] Property is mandatory/],
  ['without description', { ip: '203.0.113.0/24' }, /^\[description\] Property is mandatory/],
  [
    'with an unknown parameter',
    { ip: '203.0.113.0/24', description: 'x', state: 'enabled' },
    /not described parameters: \(state\)/,
  ],
  ['with a description over 255 characters', { ip: '203.0.113.0/24', description: 'x'.repeat(256) }, /^\[description\] /],
  ['with a newline in the description', { ip: '203.0.113.0/24', description: 'line\nbreak' }, /^\[description\] /],
  // PostgreSQL text cannot hold NUL: the body parser refuses it before any field is read.
  ['with a NUL in the description', { ip: '203.0.113.0/24', description: 'nul\u0000' }, /NUL character/],
  ['with a DEL in the description', { ip: '203.0.113.0/24', description: 'del\u007f' }, /^\[description\] /],
  ['with an escape sequence in the description', { ip: '203.0.113.0/24', description: '\u001b[31mred' }, /^\[description\] /],
];
for (const [what, body, message] of refusedBodies) {
  t.test(`POST ${what} answers 400 naming the field and creates nothing`, async (t) => {
    const svc = await ctx.newService();
    const before = await rowCounts(ctx.handle.db, svc);
    assertOvhError(t, await addEntry(app, svc, body), 400, message);
    await assertNothingWritten(t, svc, before);
  });
}

t.test('a description of exactly 255 printable characters is accepted', async (t) => {
  const svc = await ctx.newService();
  const description = 'é'.repeat(255);
  const res = await addEntry(app, svc, { ip: '203.0.113.0/24', description });
  t.equal(res.statusCode, 200);
  const [id] = await listIds(app, svc);
  t.equal((await getEntry(app, svc, id as number)).json().description, description);
});

t.test('a second POST of the same network answers 400 and creates nothing', async (t) => {
  const svc = await ctx.newService();
  const { id } = await addEntryOk(app, svc, '203.0.113.0/24');
  const before = await rowCounts(ctx.handle.db, svc);
  assertOvhError(
    t,
    await addEntry(app, svc, { ip: '203.0.113.0/24', description: 'again' }),
    400,
    new RegExp(`^\\[ip\\] 203\\.0\\.113\\.0/24 is already in the 2FA whitelist \\(id ${id}\\)`),
  );
  await assertNothingWritten(t, svc, before);
});

t.test('a duplicate written in another spelling of the same network is refused', async (t) => {
  const svc = await ctx.newService();
  await addEntryOk(app, svc, '2001:db8:1::/48');
  const before = await rowCounts(ctx.handle.db, svc);
  assertOvhError(t, await addEntry(app, svc, { ip: '2001:0DB8:0001:0000::/48', description: 'x' }), 400, /already in/);
  await assertNothingWritten(t, svc, before);
});

t.test('an enabled entry still refuses a duplicate', async (t) => {
  const svc = await ctx.newService();
  await addEntryOk(app, svc, '198.51.100.7');
  await ctx.worker.drain();
  assertOvhError(t, await addEntry(app, svc, { ip: '198.51.100.7/32', description: 'x' }), 400, /already in/);
});

t.test('an entry being removed still refuses a duplicate until its removal is done', async (t) => {
  const svc = await ctx.newService();
  const { id } = await addEntryOk(app, svc, '198.51.100.8');
  await ctx.worker.drain();
  await app.inject({ method: 'DELETE', url: `${whitelistUrl(svc)}/${id}` });
  assertOvhError(t, await addEntry(app, svc, { ip: '198.51.100.8', description: 'x' }), 400, /already in/);
});

t.test('a network may be added again once its previous entry is removed', async (t) => {
  const svc = await ctx.newService();
  const first = await addEntryOk(app, svc, '198.51.100.0/24');
  await ctx.worker.drain();
  await app.inject({ method: 'DELETE', url: `${whitelistUrl(svc)}/${first.id}` });
  await ctx.worker.drain();
  const res = await addEntry(app, svc, { ip: '198.51.100.0/24', description: 'back again' });
  t.equal(res.statusCode, 200);
  const ids = await listIds(app, svc);
  t.equal(ids.length, 1);
  t.not(ids[0], first.id, 'a new entry, not the removed one');
  t.equal((await getEntry(app, svc, first.id)).json().state, 'removed');
});

t.test('the same network may be whitelisted by two services', async (t) => {
  const a = await ctx.newService();
  const b = await ctx.newService();
  await addEntryOk(app, a, '203.0.113.0/24');
  t.equal((await addEntry(app, b, { ip: '203.0.113.0/24', description: 'b' })).statusCode, 200);
});

t.test('DELETE of an unknown id answers 404 and creates nothing', async (t) => {
  const svc = await ctx.newService();
  const before = await rowCounts(ctx.handle.db, svc);
  const res = await app.inject({ method: 'DELETE', url: `${whitelistUrl(svc)}/987654` });
  assertOvhError(t, res, 404, 'The requested object (id = 987654) does not exist');
  await assertNothingWritten(t, svc, before);
});

t.test('a second DELETE while the entry is being removed answers 400 and creates nothing', async (t) => {
  const svc = await ctx.newService();
  const { id } = await addEntryOk(app, svc, '203.0.113.0/24');
  await app.inject({ method: 'DELETE', url: `${whitelistUrl(svc)}/${id}` });
  const before = await rowCounts(ctx.handle.db, svc);
  assertOvhError(t, await app.inject({ method: 'DELETE', url: `${whitelistUrl(svc)}/${id}` }), 400, /already being removed/);
  await assertNothingWritten(t, svc, before);
});

t.test('DELETE of a removed entry answers 404 and creates nothing', async (t) => {
  const svc = await ctx.newService();
  const { id } = await addEntryOk(app, svc, '203.0.113.0/24');
  await app.inject({ method: 'DELETE', url: `${whitelistUrl(svc)}/${id}` });
  await ctx.worker.drain();
  const before = await rowCounts(ctx.handle.db, svc);
  assertOvhError(t, await app.inject({ method: 'DELETE', url: `${whitelistUrl(svc)}/${id}` }), 404, `(id = ${id})`);
  await assertNothingWritten(t, svc, before);
});

t.test('changeProperties of a removed entry answers 404 and changes nothing', async (t) => {
  const svc = await ctx.newService();
  const { id } = await addEntryOk(app, svc, '203.0.113.0/24', 'before');
  await app.inject({ method: 'DELETE', url: `${whitelistUrl(svc)}/${id}` });
  await ctx.worker.drain();
  const before = await rowCounts(ctx.handle.db, svc);
  const res = await app.inject({
    method: 'POST',
    url: `${whitelistUrl(svc)}/${id}/changeProperties`,
    payload: { description: 'after' },
  });
  assertOvhError(t, res, 404, `(id = ${id})`);
  await assertNothingWritten(t, svc, before);
  t.equal((await getEntry(app, svc, id)).json().description, 'before');
});

t.test('changeProperties of an entry being removed answers 400 and changes nothing', async (t) => {
  const svc = await ctx.newService();
  const { id } = await addEntryOk(app, svc, '203.0.113.0/24', 'before');
  await app.inject({ method: 'DELETE', url: `${whitelistUrl(svc)}/${id}` });
  const before = await rowCounts(ctx.handle.db, svc);
  const res = await app.inject({
    method: 'POST',
    url: `${whitelistUrl(svc)}/${id}/changeProperties`,
    payload: { description: 'after' },
  });
  assertOvhError(t, res, 400, /being removed/);
  await assertNothingWritten(t, svc, before);
  t.equal((await getEntry(app, svc, id)).json().description, 'before');
});

t.test('changeProperties with an invalid description answers 400 naming it and changes nothing', async (t) => {
  const svc = await ctx.newService();
  const { id } = await addEntryOk(app, svc, '203.0.113.0/24', 'before');
  const before = await rowCounts(ctx.handle.db, svc);
  const res = await app.inject({
    method: 'POST',
    url: `${whitelistUrl(svc)}/${id}/changeProperties`,
    payload: { description: 'tab\there' },
  });
  assertOvhError(t, res, 400, /^\[description\] /);
  await assertNothingWritten(t, svc, before);
  t.equal((await getEntry(app, svc, id)).json().description, 'before');
});

t.test('changeProperties with an unknown parameter answers 400 naming it', async (t) => {
  const svc = await ctx.newService();
  const { id } = await addEntryOk(app, svc, '203.0.113.0/24');
  const res = await app.inject({
    method: 'POST',
    url: `${whitelistUrl(svc)}/${id}/changeProperties`,
    payload: { ip: '198.51.100.0/24' },
  });
  assertOvhError(t, res, 400, /not described parameters: \(ip\)/);
});

for (const badId of ['abc', '1.5', '0', '-3']) {
  t.test(`an entry id of "${badId}" answers 400 naming id on every entry endpoint`, async (t) => {
    const svc = await ctx.newService();
    const url = `${whitelistUrl(svc)}/${badId}`;
    assertOvhError(t, await app.inject({ method: 'GET', url }), 400, /^\[id\] /);
    assertOvhError(t, await app.inject({ method: 'DELETE', url }), 400, /^\[id\] /);
    const change = await app.inject({ method: 'POST', url: `${url}/changeProperties`, payload: { description: 'x' } });
    assertOvhError(t, change, 400, /^\[id\] /);
  });
}

t.test('GET of an unknown id answers 404', async (t) => {
  const svc = await ctx.newService();
  assertOvhError(t, await getEntry(app, svc, 424242), 404, 'The requested object (id = 424242) does not exist');
});

t.test('an entry of another service answers 404, as if it did not exist', async (t) => {
  const owner = await ctx.newService();
  const other = await ctx.newService();
  const { id } = await addEntryOk(app, owner, '203.0.113.0/24');
  const before = await rowCounts(ctx.handle.db, owner);
  assertOvhError(t, await getEntry(app, other, id), 404, `(id = ${id})`);
  assertOvhError(t, await app.inject({ method: 'DELETE', url: `${whitelistUrl(other)}/${id}` }), 404, `(id = ${id})`);
  const change = await app.inject({
    method: 'POST',
    url: `${whitelistUrl(other)}/${id}/changeProperties`,
    payload: { description: 'hijack' },
  });
  assertOvhError(t, change, 404, `(id = ${id})`);
  t.strictSame(await rowCounts(ctx.handle.db, owner), before);
  t.equal((await getEntry(app, owner, id)).json().state, 'enabling');
});

t.test('every whitelist endpoint answers 404 "This service does not exist" for an unknown service', async (t) => {
  const url = whitelistUrl('pcc-does-not-exist');
  const calls = [
    app.inject({ method: 'GET', url }),
    app.inject({ method: 'POST', url, payload: { ip: '203.0.113.0/24', description: 'x' } }),
    app.inject({ method: 'GET', url: `${url}/1` }),
    app.inject({ method: 'DELETE', url: `${url}/1` }),
    app.inject({ method: 'POST', url: `${url}/1/changeProperties`, payload: { description: 'x' } }),
  ];
  for (const res of await Promise.all(calls)) {
    t.strictSame(res.json(), { class: 'Client::NotFound', message: 'This service does not exist' });
    t.equal(res.statusCode, 404);
  }
  const written = await ctx.handle.db
    .selectFrom('task')
    .select('task_id')
    .where('service_name', '=', 'pcc-does-not-exist')
    .execute();
  t.equal(written.length, 0);
});

t.test('a service of another account answers exactly like one that does not exist', async (t) => {
  const mine = await ctx.newService(undefined, 'alice');
  const theirs = await ctx.newService(undefined, 'mallory');
  await addEntryOk(app, theirs, '203.0.113.0/24');
  const alice = await ctx.handle.db
    .selectFrom('account')
    .select('account_id')
    .where('login', '=', 'alice')
    .executeTakeFirstOrThrow();
  const aliceApp = await buildApp({
    handle: ctx.handle,
    config: ctx.config,
    clock: ctx.clock,
    authenticate: async () => ({ accountId: alice.account_id, login: 'alice' }),
  });
  t.teardown(() => aliceApp.close());
  t.equal((await aliceApp.inject({ method: 'GET', url: whitelistUrl(mine) })).statusCode, 200);
  const before = await rowCounts(ctx.handle.db, theirs);
  const list = await aliceApp.inject({ method: 'GET', url: whitelistUrl(theirs) });
  const post = await aliceApp.inject({
    method: 'POST',
    url: whitelistUrl(theirs),
    payload: { ip: '198.51.100.0/24', description: 'x' },
  });
  for (const res of [list, post]) {
    t.equal(res.statusCode, 404);
    t.strictSame(res.json(), { class: 'Client::NotFound', message: 'This service does not exist' });
  }
  t.strictSame(await rowCounts(ctx.handle.db, theirs), before);
});

t.test('20 concurrent POSTs of one network create exactly one entry and one task', async (t) => {
  const svc = await ctx.newService();
  const responses = await Promise.all(
    Array.from({ length: 20 }, (_, i) => addEntry(app, svc, { ip: '203.0.113.0/24', description: `racer ${i}` })),
  );
  const codes = responses.map((r) => r.statusCode).sort();
  t.strictSame(codes, [200, ...Array<number>(19).fill(400)]);
  for (const res of responses.filter((r) => r.statusCode === 400)) t.match(res.json().message, /^\[ip\] .*already in/);
  t.strictSame(await rowCounts(ctx.handle.db, svc), { tasks: 1, entries: 1, auditEvents: 1 });
});

t.test(
  '20 concurrent POSTs of one network across two instances create exactly one entry and one task',
  { skip: engine === 'pg' ? false : 'needs PostgreSQL (TEST_DATABASE_URL)' },
  async (t) => {
    const svc = await ctx.newService();
    const handle2 = await openDatabase({ databaseUrl: ctx.databaseUrl });
    const app2 = await buildApp({
      handle: handle2,
      config: ctx.config,
      clock: ctx.clock,
      secretBox: ctx.secretBox,
      authenticate: operatorAccess,
    });
    t.teardown(async () => {
      await app2.close();
      await handle2.close();
    });
    await Promise.all([app.ready(), app2.ready()]);
    const responses = await Promise.all(
      Array.from({ length: 20 }, (_, i) =>
        addEntry(i % 2 === 0 ? app : app2, svc, { ip: '203.0.113.0/24', description: `racer ${i}` }),
      ),
    );
    const codes = responses.map((r) => r.statusCode).sort();
    t.strictSame(codes, [200, ...Array<number>(19).fill(400)]);
    t.strictSame(await rowCounts(ctx.handle.db, svc), { tasks: 1, entries: 1, auditEvents: 1 });
  },
);

t.test('a service at the most entries allowed refuses one more and creates nothing', async (t) => {
  const small = await buildTestApp(t, { env: { WHITELIST_MAX_ENTRIES: '2' } });
  const svc = await small.newService();
  await addEntryOk(small.app, svc, '203.0.113.1');
  await addEntryOk(small.app, svc, '203.0.113.2');
  const before = await rowCounts(small.handle.db, svc);
  assertOvhError(t, await addEntry(small.app, svc, { ip: '203.0.113.3', description: 'x' }), 400, /already holds 2 entries/);
  t.strictSame(await rowCounts(small.handle.db, svc), before);

  t.test('a removed entry frees its place', async (t) => {
    const [first] = await listIds(small.app, svc);
    await small.app.inject({ method: 'DELETE', url: `${whitelistUrl(svc)}/${first}` });
    await small.worker.drain();
    t.equal((await addEntry(small.app, svc, { ip: '203.0.113.3', description: 'x' })).statusCode, 200);
  });
});
