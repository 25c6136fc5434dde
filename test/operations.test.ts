import t from 'tap';
import { auditEvents, buildTestApp } from './helpers/app.js';
import { freshIp, freshPassword, secureKit, totpCode, type Person } from './helpers/secure.js';

// "Operation validation": the SMS token of a pending change, its tries, expiry, resends and recipients.
const ctx = await buildTestApp(t);
const kit = await secureKit(t, ctx);
const { inbox } = kit;
const db = ctx.handle.db;

/**
 * A service with a plain user and a token validator (no 2FA: full sessions), and an API password change of the plain
 * user waiting for validation; the token went to the validator.
 */
async function gatedChange() {
  const svc = await ctx.newService();
  const person = await kit.plainUser(svc, { phone: false });
  const admin = await kit.validator(svc);
  const newPassword = freshPassword();
  const res = await kit.api('POST', `/1.0/dedicatedCloud/${svc}/user/${person.userId}/changePassword`, {
    password: newPassword,
  });
  if (res.json().state !== 'waitingTodo') throw new Error('the change is not gated');
  await kit.settle();
  const taskId: number = res.json().taskId;
  const { operation_id: operationId } = await db
    .selectFrom('operation')
    .select('operation_id')
    .where('task_id', '=', taskId)
    .executeTakeFirstOrThrow();
  const { sessionToken } = await kit.session(svc, admin);
  return {
    svc,
    person,
    admin,
    newPassword,
    taskId,
    operationId,
    session: sessionToken,
    token: () => inbox.tokenFor(admin.phone!, operationId),
    validate: (token: string, session = sessionToken, service = svc) =>
      kit.secure('POST', service, `/operation/${operationId}/validate`, { session, payload: { token } }),
    resend: (session = sessionToken) => kit.secure('POST', svc, `/operation/${operationId}/resend`, { session }),
  };
}

const wrongOf = (token: string) => String((Number(token) + 1) % 100_000_000).padStart(8, '0');
const operationRow = (operationId: number) =>
  db.selectFrom('operation').selectAll().where('operation_id', '=', operationId).executeTakeFirstOrThrow();

t.test('a user who is not a token validator can neither load nor validate an operation (403)', async (t) => {
  const g = await gatedChange();
  const { sessionToken } = await kit.session(g.svc, g.person);
  const get = await kit.secure('GET', g.svc, `/operation/${g.operationId}`, { session: sessionToken });
  t.equal(get.statusCode, 403);
  t.match(get.json().message, /token validator/);
  const res = await g.validate(g.token(), sessionToken);
  t.equal(res.statusCode, 403);
  t.equal((await kit.task(g.svc, g.taskId)).state, 'waitingTodo');
  t.match(await operationRow(g.operationId), { state: 'pending', failed_attempts: 0 });
});

t.test('a token validator of another service is refused on this service: his session is bound to his own (401)', async (t) => {
  const g = await gatedChange();
  const other = await ctx.newService();
  const stranger = await kit.validator(other);
  const { sessionToken } = await kit.session(other, stranger);
  const res = await g.validate(g.token(), sessionToken);
  t.equal(res.statusCode, 401);
  t.match(await operationRow(g.operationId), { state: 'pending', failed_attempts: 0 });
});

t.test('a token validator of another service does not find the operation through his own service (404)', async (t) => {
  const g = await gatedChange();
  const other = await ctx.newService();
  const stranger = await kit.validator(other);
  const { sessionToken } = await kit.session(other, stranger);
  const get = await kit.secure('GET', other, `/operation/${g.operationId}`, { session: sessionToken });
  t.equal(get.statusCode, 404);
  const res = await g.validate(g.token(), sessionToken, other);
  t.equal(res.statusCode, 404);
  t.match(await operationRow(g.operationId), { state: 'pending', failed_attempts: 0 });
  t.equal((await kit.task(g.svc, g.taskId)).state, 'waitingTodo');
});

t.test('a wrong token is refused and says how many tries are left', async (t) => {
  const g = await gatedChange();
  const res = await g.validate(wrongOf(g.token()));
  t.equal(res.statusCode, 400);
  t.match(res.json().message, /Wrong token \(4 tries left\)/);
  const get = await kit.secure('GET', g.svc, `/operation/${g.operationId}`, { session: g.session });
  t.match(get.json(), { state: 'pending', triesLeft: 4 });
});

t.test('five wrong tokens block the operation and cancel its task; the right token then fails', async (t) => {
  const g = await gatedChange();
  for (let i = 0; i < 5; i++) t.equal((await g.validate(wrongOf(g.token()))).statusCode, 400);
  const get = await kit.secure('GET', g.svc, `/operation/${g.operationId}`, { session: g.session });
  t.match(get.json(), { state: 'blocked', triesLeft: 0 });
  t.equal((await kit.task(g.svc, g.taskId)).state, 'canceled');
  // Five wrong tokens also count against the validator, like five wrong logins: he waits 30 s.
  t.equal((await g.validate(g.token())).statusCode, 429, 'the validator is locked out for a while');
  ctx.clock.advance(30_000);
  const right = await g.validate(g.token());
  t.equal(right.statusCode, 400);
  t.match(right.json().message, /is blocked/);
  await kit.settle();
  t.equal((await kit.task(g.svc, g.taskId)).state, 'canceled', 'the worker never runs it');
  t.equal((await kit.login(g.svc, { login: g.person.name, password: g.newPassword })).statusCode, 401, 'not applied');
  const task = await db.selectFrom('task').select('payload').where('task_id', '=', g.taskId).executeTakeFirstOrThrow();
  t.notOk('change' in task.payload, 'the sealed change is erased');
});

t.test('a token not validated within 15 minutes expires: housekeeping cancels the task, validation fails', async (t) => {
  const g = await gatedChange();
  ctx.clock.advance(15 * 60_000);
  await kit.settle();
  t.equal((await kit.task(g.svc, g.taskId)).state, 'canceled');
  t.equal((await operationRow(g.operationId)).state, 'expired');
  const res = await g.validate(g.token());
  t.equal(res.statusCode, 400);
  t.match(res.json().message, /is expired/);
  t.equal((await kit.login(g.svc, { login: g.person.name, password: g.newPassword })).statusCode, 401, 'not applied');
});

t.test('a token past 15 minutes fails even before housekeeping has run', async (t) => {
  const g = await gatedChange();
  ctx.clock.advance(15 * 60_000);
  const res = await g.validate(g.token());
  t.equal(res.statusCode, 400);
  t.match(res.json().message, /is expired/);
});

t.test('a token validates until the last second of its 15 minutes', async (t) => {
  const g = await gatedChange();
  ctx.clock.advance(15 * 60_000 - 1000);
  const res = await g.validate(g.token());
  t.equal(res.statusCode, 200);
  await kit.settle();
  t.equal((await kit.task(g.svc, g.taskId)).state, 'done');
});

t.test('a token is used once: validating it again fails', async (t) => {
  const g = await gatedChange();
  t.equal((await g.validate(g.token())).statusCode, 200);
  const again = await g.validate(g.token());
  t.equal(again.statusCode, 400);
  t.match(again.json().message, /is validated/);
});

t.test('two validations racing: exactly one succeeds and the change is applied once', async (t) => {
  const g = await gatedChange();
  const results = await Promise.all([g.validate(g.token()), g.validate(g.token())]);
  t.strictSame(results.map((r) => r.statusCode).sort(), [200, 400]);
  await kit.settle();
  t.equal((await kit.task(g.svc, g.taskId)).state, 'done');
  const validated = await auditEvents(ctx, g.svc, 'operation.validated');
  t.equal(validated.filter((e) => e.data.operationId === g.operationId).length, 1, 'one validation audited');
  const history = await db.selectFrom('password_history').select('id').where('user_id', '=', g.person.userId).execute();
  t.equal(history.length, 2, 'the first password and the new one: applied once');
});

t.test('a resend within 60 s of the last token is refused with 429', async (t) => {
  const g = await gatedChange();
  ctx.clock.advance(59_000);
  const res = await g.resend();
  t.equal(res.statusCode, 429);
  t.match(res.json().message, /less than a minute ago/);
});

t.test('a resend after 60 s sends a new token, and the old one no longer validates', async (t) => {
  const g = await gatedChange();
  const old = g.token();
  ctx.clock.advance(60_000);
  t.equal((await g.resend()).statusCode, 204);
  await kit.settle();
  const fresh = g.token();
  t.not(fresh, old, 'a new token');
  t.equal(inbox.to(g.admin.phone!).filter((m) => m.body.operationId === g.operationId).length, 2);
  if (fresh !== old) t.equal((await g.validate(old)).statusCode, 400, 'the old token is void');
  t.equal((await g.validate(fresh)).statusCode, 200, 'the new token validates');
  const resent = await auditEvents(ctx, g.svc, 'operation.resent');
  t.match(resent, [{ actor: g.admin.name, data: { operationId: g.operationId, sends: 2, askedBy: g.admin.userId } }], 'audited');
});

t.test('no more than 5 tokens are sent for one operation', async (t) => {
  const g = await gatedChange();
  for (let i = 2; i <= 5; i++) {
    ctx.clock.advance(61_000);
    t.equal((await g.resend()).statusCode, 204, `token ${i}`);
  }
  ctx.clock.advance(61_000);
  const sixth = await g.resend();
  t.equal(sixth.statusCode, 429);
  t.match(sixth.json().message, /No more than 5 tokens/);
  await kit.settle();
  t.equal(inbox.to(g.admin.phone!).filter((m) => m.body.operationId === g.operationId).length, 5);
});

t.test('only a full session of a token validator may have a token sent again: each new token voids the last', async (t) => {
  const g = await gatedChange();
  ctx.clock.advance(61_000);
  const refused = async (session: string, message: RegExp, label: string) => {
    const res = await g.resend(session);
    t.equal(res.statusCode, 403, `${label}: ${res.body}`);
    t.equal(res.json().class, 'Client::Forbidden');
    t.match(res.json().message, message);
  };
  // The user the change is about (a full session, no token validator).
  const subject = await kit.session(g.svc, g.person);
  t.equal(subject.scope, 'full');
  await refused(subject.sessionToken, /token validator/, 'the subject of the change');
  // A token validator's "password lost" session: his phone alone, a renewal session.
  const lost = await kit.secure('POST', g.svc, '/passwordLost', { payload: { login: g.admin.name }, ip: freshIp() });
  t.equal(lost.statusCode, 202);
  await kit.settle();
  const renewal = await kit.login(g.svc, { login: g.admin.name, resetToken: inbox.latestResetCode(g.admin.phone!) });
  t.equal(renewal.json().scope, 'credentialsRenewal');
  await refused(renewal.json().sessionToken, /Renew your credentials first/, 'a password-lost session');
  // Six asks would have burnt the five sends and voided every token; none was sent, and the first token still works.
  for (let i = 0; i < 5; i++) {
    ctx.clock.advance(61_000);
    t.equal((await g.resend(subject.sessionToken)).statusCode, 403);
  }
  t.match(await operationRow(g.operationId), { state: 'pending', sends: 1 });
  t.equal((await g.validate(g.token())).statusCode, 200, 'the token the validator received still validates');
});

t.test('a resend of an operation that is no longer pending is refused', async (t) => {
  const g = await gatedChange();
  await g.validate(g.token());
  ctx.clock.advance(61_000);
  t.equal((await g.resend()).statusCode, 400);
});

t.test('the requester who is a token validator gets the token himself, and the other validators do not', async (t) => {
  const svc = await ctx.newService();
  const alice = await kit.validator(svc);
  const bob = await kit.validator(svc, { approver: alice });
  const { sessionToken } = await kit.session(svc, alice);
  const e = (await kit.secure('POST', svc, '/credentials/enrollment', { session: sessionToken })).json();
  const res = await kit.secure('POST', svc, '/credentials', {
    session: sessionToken,
    payload: { enrollmentId: e.enrollmentId, newPassword: freshPassword(), code: await totpCode(ctx, e.secret) },
  });
  t.equal(res.statusCode, 202);
  await kit.settle();
  const { operationId } = res.json();
  t.equal(inbox.to(alice.phone!).filter((m) => m.body.operationId === operationId).length, 1, 'the requester');
  t.equal(inbox.to(bob.phone!).filter((m) => m.body.operationId === operationId).length, 0, 'not the other validator');
});

t.test('the token of a requester who is not a token validator goes to every confirmed token validator', async (t) => {
  const svc = await ctx.newService();
  const person = await kit.plainUser(svc, { confirm: true });
  const alice = await kit.validator(svc);
  const bob = await kit.validator(svc, { approver: alice });
  // A token validator whose number is not confirmed receives nothing.
  const unconfirmed: Person = { userId: 0, name: 'carol', password: freshPassword(), phone: '+33.699999999' };
  await kit.createUser(
    svc,
    { name: 'carol', password: unconfirmed.password, phoneNumber: unconfirmed.phone, tokenValidator: true },
    alice,
  );
  const { sessionToken } = await kit.session(svc, person);
  const e = (await kit.secure('POST', svc, '/credentials/enrollment', { session: sessionToken })).json();
  const res = await kit.secure('POST', svc, '/credentials', {
    session: sessionToken,
    payload: { enrollmentId: e.enrollmentId, newPassword: freshPassword(), code: await totpCode(ctx, e.secret) },
  });
  t.equal(res.statusCode, 202);
  await kit.settle();
  const { operationId } = res.json();
  const got = (phone: string) => inbox.to(phone).filter((m) => m.body.operationId === operationId).length;
  t.equal(got(alice.phone!), 1);
  t.equal(got(bob.phone!), 1);
  t.equal(got(person.phone!), 0, 'not the requester');
  t.equal(got(unconfirmed.phone!), 0, 'not an unconfirmed number');
});

t.test('a credentials change with no token validator to reach is refused with 409 and writes nothing', async (t) => {
  const svc = await ctx.newService();
  const person = await kit.plainUser(svc, { phone: false });
  const { sessionToken } = await kit.session(svc, person);
  const e = (await kit.secure('POST', svc, '/credentials/enrollment', { session: sessionToken })).json();
  const body = { enrollmentId: e.enrollmentId, newPassword: freshPassword(), code: await totpCode(ctx, e.secret) };
  const res = await kit.secure('POST', svc, '/credentials', { session: sessionToken, payload: body });
  t.equal(res.statusCode, 409);
  t.equal(res.json().class, 'Client::Conflict');
  t.strictSame(
    await db.selectFrom('operation').select('operation_id').where('service_name', '=', svc).execute(),
    [],
    'no operation',
  );
  t.strictSame(
    await db
      .selectFrom('task')
      .select('task_id')
      .where('service_name', '=', svc)
      .where('name', '=', 'changeCredentialsUser')
      .execute(),
    [],
    'no task',
  );
  // The enrollment was not used up: once a validator exists, the same request goes through.
  await kit.validator(svc);
  const again = await kit.secure('POST', svc, '/credentials', { session: sessionToken, payload: body });
  t.equal(again.statusCode, 202);
});

t.test('an unknown operation is 404', async (t) => {
  const g = await gatedChange();
  const res = await kit.secure('GET', g.svc, '/operation/999999', { session: g.session });
  t.equal(res.statusCode, 404);
});

t.test('wrong tokens count against the validator across operations: the sixth guess waits, whatever operation', async (t) => {
  const svc = await ctx.newService();
  const admin = await kit.validator(svc);
  const operations: number[] = [];
  for (let i = 0; i < 3; i++) {
    const person = await kit.plainUser(svc, { phone: false, approver: admin });
    const res = await kit.api('POST', `/1.0/dedicatedCloud/${svc}/user/${person.userId}/changePassword`, {
      password: freshPassword(),
    });
    operations.push((await kit.operationOf(res.json().taskId)).operation_id);
  }
  await kit.settle();
  const { sessionToken } = await kit.session(svc, admin);
  const guess = (operationId: number, ip = '192.0.2.10') =>
    kit.secure('POST', svc, `/operation/${operationId}/validate`, {
      session: sessionToken,
      ip,
      payload: { token: wrongOf(inbox.tokenFor(admin.phone!, operationId)) },
    });
  // Each operation alone would allow 5 tries: 2 + 2 + 1 stay within every operation's limit.
  for (const operationId of [operations[0]!, operations[0]!, operations[1]!, operations[1]!, operations[2]!]) {
    t.equal((await guess(operationId)).statusCode, 400);
  }
  const sixth = await guess(operations[2]!);
  t.equal(sixth.statusCode, 429, 'the sixth wrong token is refused before it is checked');
  t.equal((await guess(operations[2]!, '198.51.100.77')).statusCode, 429, 'from another address too: the validator is counted');
  t.match(await operationRow(operations[2]!), { state: 'pending', failed_attempts: 1 }, 'the refused guesses were not checked');
  // The lock the fifth wrong token started is audited, as a login's is (a third attack found none was).
  const started = await auditEvents(ctx, svc, 'lockout.started');
  t.ok(
    started.some((e) => String((e.data as { key: string }).key).endsWith('#operationToken')),
    `the validator's lock is audited: ${JSON.stringify(started.map((e) => e.data))}`,
  );
});

t.test('failed logins by a stranger do not stop a logged-in validator from validating: his token counts apart', async (t) => {
  const g = await gatedChange();
  // Someone who knows the validator's login tries passwords from addresses of his own until the login locks.
  for (let i = 0; i < 6; i++) await kit.login(g.svc, { login: g.admin.name, password: `guess-${i}-${freshPassword()}` });
  t.equal((await kit.login(g.svc, { login: g.admin.name, password: g.admin.password })).statusCode, 429, 'the login is locked');
  const res = await g.validate(g.token());
  t.equal(res.statusCode, 200, `the validator's session still validates: ${res.body}`);
  await kit.settle();
  t.equal((await kit.task(g.svc, g.taskId)).state, 'done');
});

t.test('wrong tokens do not lock the validator out of his login, and an unlock clears them', async (t) => {
  const ip = freshIp();
  const validate = (g: Awaited<ReturnType<typeof gatedChange>>, token: string) =>
    kit.secure('POST', g.svc, `/operation/${g.operationId}/validate`, { session: g.session, ip, payload: { token } });
  const g = await gatedChange();
  for (let i = 0; i < 5; i++) t.equal((await validate(g, wrongOf(g.token()))).statusCode, 400);
  t.equal((await validate(g, g.token())).statusCode, 429, 'the sixth token waits');
  t.equal((await kit.session(g.svc, g.admin)).scope, 'full', 'his login is not locked by them');
  const g2 = await gatedChange();
  for (let i = 0; i < 5; i++) await validate(g2, wrongOf(g2.token()));
  t.equal((await validate(g2, g2.token())).statusCode, 429);
  const unlock = await kit.api('POST', `/1.0/dedicatedCloud/${g2.svc}/user/${g2.admin.userId}/unlock`);
  t.equal(unlock.statusCode, 200, unlock.body);
  t.not((await validate(g2, g2.token())).statusCode, 429, 'the unlock cleared the token count too');
});

t.test('a phone number confirmation is no operation of the certified interface: 404 like none, its token kept', async (t) => {
  const svc = await ctx.newService();
  const admin = await kit.validator(svc);
  const person = await kit.plainUser(svc, { approver: admin });
  const op = await db
    .selectFrom('operation')
    .selectAll()
    .where('user_id', '=', person.userId)
    .where('kind', '=', 'confirmPhoneNumber')
    .executeTakeFirstOrThrow();
  const token = inbox.latestToken(person.phone!);
  const { sessionToken: session } = await kit.session(svc, admin);
  const missing = 999_999_999;
  const ip = freshIp();
  const same = async (method: 'GET' | 'POST', path: (id: number) => string, payload?: unknown) => {
    const real = await kit.secure(method, svc, path(op.operation_id), { session, payload, ip });
    const none = await kit.secure(method, svc, path(missing), { session, payload, ip });
    t.equal(real.statusCode, 404, `${method} ${path(0)}: ${real.body}`);
    t.strictSame(real.json(), { ...none.json(), message: none.json().message.replace(String(missing), String(op.operation_id)) });
  };
  await same('GET', (id) => `/operation/${id}`);
  await same('POST', (id) => `/operation/${id}/validate`, { token: wrongOf(token) });
  await same('POST', (id) => `/operation/${id}/validate`, { token });
  ctx.clock.advance(61_000);
  await same('POST', (id) => `/operation/${id}/resend`);
  await kit.settle();
  t.equal(inbox.latestToken(person.phone!), token, 'no new token was sent');
  t.match(await operationRow(op.operation_id), { state: 'pending', failed_attempts: 0, sends: 1 });
  const confirm = await kit.api('POST', `/1.0/dedicatedCloud/${svc}/user/${person.userId}/confirmPhoneNumber`, { token });
  t.equal(confirm.statusCode, 200, 'its owner still confirms the number with the token');
  t.equal((await kit.userRow(person.userId)).phone_confirmed, true);
});
