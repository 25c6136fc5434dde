import t from 'tap';
import { auditEvents, buildTestApp } from './helpers/app.js';
import { T0, assertOvhError } from './helpers/api.js';
import { freshName, freshPassword, secureKit } from './helpers/secure.js';

// OVH's user parameters a tool generated from OVH's schema sends (issue 12): rights, expiration, both phone spellings.
const ctx = await buildTestApp(t);
const kit = await secureKit(t, ctx);
const userUrl = (svc: string, rest = '') => `/1.0/dedicatedCloud/${svc}/user${rest}`;
const put = (url: string, payload: Record<string, unknown>) => ctx.app.inject({ method: 'PUT', url, payload });
const HOUR = 3600_000;

t.test('POST user accepts every OVH field; they read back on the user and as his datacenter right', async (t) => {
  const svc = await ctx.newService();
  const name = freshName();
  const { userId, task } = await kit.createUser(svc, {
    name,
    password: freshPassword(),
    email: `${name}@example.com`,
    phoneNumber: '+33612345678',
    tokenValidator: false,
    firstName: 'Ada',
    lastName: 'Lovelace',
    right: 'readwrite',
    canAddRessource: true,
    canManageRights: true,
    encryptionRight: true,
    networkRole: 'manager',
    vmNetworkRole: 'readonly',
    nsxRight: true,
    receiveAlerts: true,
    expirationDate: '2027-01-01T00:00:00+00:00',
  });
  t.equal((await kit.task(svc, task.taskId)).state, 'done');
  const user = (await kit.api('GET', userUrl(svc, `/${userId}`))).json();
  t.match(user, {
    name,
    phoneNumber: '+33.612345678',
    firstName: 'Ada',
    lastName: 'Lovelace',
    canManageRights: true,
    encryptionRight: true,
    nsxRight: true,
    receiveAlerts: true,
    state: 'delivered',
  });
  const rightIds = (await kit.api('GET', userUrl(svc, `/${userId}/right`))).json<number[]>();
  t.equal(rightIds.length, 1, 'one right: the service has one datacenter');
  const right = (await kit.api('GET', userUrl(svc, `/${userId}/right/${rightIds[0]}`))).json();
  t.match(right, {
    right: 'readwrite',
    canAddRessource: true,
    networkRole: 'manager',
    vmNetworkRole: 'readonly',
    rightId: rightIds[0],
  });
  t.ok(Number.isInteger(right.datacenterId) && right.datacenterId > 0, 'the right names the datacenter');
  const row = await kit.userRow(userId);
  t.equal((row.expiration_date as Date).toISOString(), '2027-01-01T00:00:00.000Z', 'expirationDate stored');
});

t.test("a user created without rights has OVH's defaults: disabled, no resource, noAccess to networks", async (t) => {
  const svc = await ctx.newService();
  const { userId } = await kit.createUser(svc, { name: freshName(), password: freshPassword() });
  const [rightId] = (await kit.api('GET', userUrl(svc, `/${userId}/right`))).json<number[]>();
  t.match((await kit.api('GET', userUrl(svc, `/${userId}/right/${rightId}`))).json(), {
    right: 'disabled',
    canAddRessource: false,
    networkRole: 'noAccess',
    vmNetworkRole: 'noAccess',
  });
});

t.test('PUT right changes it (its read-only fields are ignored), answers a done task, and is audited', async (t) => {
  const svc = await ctx.newService();
  const { userId } = await kit.createUser(svc, { name: freshName(), password: freshPassword() });
  const [rightId] = (await kit.api('GET', userUrl(svc, `/${userId}/right`))).json<number[]>();
  const url = userUrl(svc, `/${userId}/right/${rightId}`);
  const read = (await kit.api('GET', url)).json();
  const res = await put(url, { ...read, right: 'admin', vmNetworkRole: 'admin' });
  t.equal(res.statusCode, 200, res.body);
  t.match(res.json(), { name: 'changeRightUser', userId, type: 'user' });
  await kit.settle();
  t.equal((await kit.task(svc, res.json().taskId)).state, 'done');
  t.match((await kit.api('GET', url)).json(), { right: 'admin', vmNetworkRole: 'admin', networkRole: 'noAccess' });
  const [event] = await auditEvents(ctx, svc, 'user.changeRight');
  t.match(event?.data, { before: { right: 'disabled' }, after: { right: 'admin' } });

  assertOvhError(t, await put(url, { right: 'superuser' }), 400, /right/);
  const ignored = await put(url, { rightId: rightId! + 1, datacenterId: read.datacenterId + 1, canAddRessource: true });
  t.equal(ignored.statusCode, 200, ignored.body);
  t.match((await kit.api('GET', url)).json(), { rightId, datacenterId: read.datacenterId, canAddRessource: true });
  assertOvhError(t, await put(userUrl(svc, `/${userId}/right/${rightId! + 999}`), { right: 'admin' }), 404, /rightId/);
});

t.test('object rights: created, listed, read, refused twice on one object, removed; each a task', async (t) => {
  const svc = await ctx.newService();
  const { userId } = await kit.createUser(svc, { name: freshName(), password: freshPassword() });
  const base = userUrl(svc, `/${userId}/objectRight`);
  t.strictSame((await kit.api('GET', base)).json(), []);
  const created = await kit.api('POST', base, { right: 'readonly', type: 'vm', vmwareObjectId: 'vm-1234', propagate: true });
  t.equal(created.statusCode, 200, created.body);
  t.match(created.json(), { name: 'addObjectRightUser', userId });
  const ids = (await kit.api('GET', base)).json<number[]>();
  t.equal(ids.length, 1);
  t.strictSame((await kit.api('GET', `${base}/${ids[0]}`)).json(), {
    name: 'vm-1234',
    objectRightId: ids[0],
    propagate: true,
    right: 'readonly',
    type: 'vm',
    vmwareObjectId: 'vm-1234',
  });
  assertOvhError(
    t,
    await kit.api('POST', base, { right: 'admin', type: 'vm', vmwareObjectId: 'vm-1234' }),
    400,
    /^\[vmwareObjectId\]/,
  );
  assertOvhError(t, await kit.api('POST', base, { right: 'admin', type: 'planet', vmwareObjectId: 'x' }), 400, /type/);
  assertOvhError(t, await kit.api('POST', base, { right: 'admin', type: 'vm' }), 400, /vmwareObjectId/);
  const removed = await kit.api('DELETE', `${base}/${ids[0]}`);
  t.match(removed.json(), { name: 'removeObjectRightUser', userId });
  await kit.settle();
  t.equal((await kit.task(svc, removed.json().taskId)).state, 'done');
  t.strictSame((await kit.api('GET', base)).json(), []);
  assertOvhError(t, await kit.api('GET', `${base}/${ids[0]}`), 404, /objectRightId/);
});

t.test("another service's user has no rights to read here (404)", async (t) => {
  const svc = await ctx.newService();
  const other = await ctx.newService();
  const { userId } = await kit.createUser(other, { name: freshName(), password: freshPassword() });
  assertOvhError(t, await kit.api('GET', userUrl(svc, `/${userId}/right`)), 404, /userId/);
  assertOvhError(t, await kit.api('GET', userUrl(svc, `/${userId}/objectRight`)), 404, /userId/);
});

t.test('both phone spellings are accepted, stored and answered dotted, on creation and on changeProperties', async (t) => {
  const svc = await ctx.newService();
  const dotted = await kit.createUser(svc, { name: freshName(), password: freshPassword(), phoneNumber: '+44.7700900123' });
  const plain = await kit.createUser(svc, { name: freshName(), password: freshPassword(), phoneNumber: '+447700900124' });
  t.equal((await kit.userRow(dotted.userId)).phone_number, '+44.7700900123');
  t.equal((await kit.userRow(plain.userId)).phone_number, '+44.7700900124');
  const change = await kit.api('POST', userUrl(svc, `/${plain.userId}/changeProperties`), { phoneNumber: '+14155550123' });
  t.equal(change.statusCode, 200, change.body);
  await kit.settle();
  t.equal((await kit.api('GET', userUrl(svc, `/${plain.userId}`))).json().phoneNumber, '+1.4155550123');
  t.ok(kit.inbox.latestToken('+1.4155550123'), 'the confirmation SMS goes to the dotted number');
  assertOvhError(
    t,
    await kit.api('POST', userUrl(svc, `/${plain.userId}/changeProperties`), { phoneNumber: '+336' }),
    400,
    /^\[phoneNumber\]/,
  );
});

t.test('an expirationDate that is not in the future is refused', async (t) => {
  const svc = await ctx.newService();
  const res = await kit.api('POST', userUrl(svc), { name: freshName(), password: freshPassword(), expirationDate: T0 });
  assertOvhError(t, res, 400, /^\[expirationDate\] is not in the future/);
  assertOvhError(
    t,
    await kit.api('POST', userUrl(svc), { name: freshName(), expirationDate: 'tomorrow' }),
    400,
    /expirationDate/,
  );
});

t.test(
  'once his expirationDate passes a user can no longer log in, the worker disables him, and an enable lifts it',
  async (t) => {
    const svc = await ctx.newService();
    const name = freshName();
    const password = freshPassword();
    const expires = new Date(ctx.clock.now().getTime() + 2 * HOUR).toISOString();
    const { userId } = await kit.createUser(svc, { name, password, expirationDate: expires });
    const before = await kit.login(svc, { login: name, password });
    t.equal(before.statusCode, 200, 'logs in before');
    const session = before.json<{ sessionToken: string }>().sessionToken;
    ctx.clock.advance(HOUR);
    await kit.settle();
    t.equal((await kit.api('GET', userUrl(svc, `/${userId}`))).json().activationState, 'enabled', 'still enabled an hour before');

    ctx.clock.advance(HOUR);
    t.equal((await kit.login(svc, { login: name, password })).statusCode, 401, 'refused from the moment it passes');
    const call = await kit.secure('POST', svc, '/credentials/enrollment', { session });
    t.equal(call.statusCode, 401, 'and so is his open session');
    await kit.settle();
    t.equal((await kit.api('GET', userUrl(svc, `/${userId}`))).json().activationState, 'disabled', 'the worker disabled him');
    const [expired] = await auditEvents(ctx, svc, 'user.expired');
    t.match(expired, { actor: 'expiration', user_id: userId });
    const tasks = (await kit.api('GET', `${userUrl(svc, `/${userId}/task`)}?name=disableUser`)).json<number[]>();
    t.match(await kit.task(svc, tasks[0]!), { createdBy: 'expiration', state: 'done' });
    await kit.settle();
    t.equal((await auditEvents(ctx, svc, 'user.expired')).length, 1, 'disabled once');

    const enable = await kit.api('POST', userUrl(svc, `/${userId}/enable`));
    t.equal(enable.statusCode, 200, enable.body);
    await kit.settle();
    t.equal((await kit.userRow(userId)).expiration_date, null, 'the enable lifted the expiration');
    ctx.clock.advance(60_000);
    t.equal((await kit.login(svc, { login: name, password })).statusCode, 200, 'logs in again');
  },
);

t.test('the user task routes relaunch a task in error and reschedule one not started, scoped to the user', async (t) => {
  const svc = await ctx.newService();
  const a = await kit.createUser(svc, { name: freshName(), password: freshPassword() });
  const b = await kit.createUser(svc, { name: freshName(), password: freshPassword() });
  const taskId = a.task.taskId;
  await ctx.handle.db.updateTable('task').set({ state: 'error' }).where('task_id', '=', taskId).execute();
  assertOvhError(
    t,
    await kit.api('POST', userUrl(svc, `/${b.userId}/task/${taskId}/resetTaskState`), { reason: 'x' }),
    404,
    /taskId/,
  );
  const reset = await kit.api('POST', userUrl(svc, `/${a.userId}/task/${taskId}/resetTaskState`), { reason: 'retry' });
  t.equal(reset.statusCode, 200, reset.body);
  t.match(reset.json(), { state: 'todo', description: 'Relaunched: retry' });

  const later = new Date(ctx.clock.now().getTime() + HOUR).toISOString().replace('.000Z', '+00:00');
  const moved = await kit.api('POST', userUrl(svc, `/${a.userId}/task/${taskId}/changeMaintenanceExecutionDate`), {
    executionDate: later,
  });
  t.equal(moved.statusCode, 200, moved.body);
  t.equal(moved.json().executionDate, later);
  assertOvhError(
    t,
    await kit.api('POST', userUrl(svc, `/${b.userId}/task/${taskId}/changeMaintenanceExecutionDate`), { executionDate: later }),
    404,
    /taskId/,
  );
});
