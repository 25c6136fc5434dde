import t from 'tap';
import { buildTestApp } from './helpers/app.js';
import { ovhDate } from './helpers/api.js';
import { freshIp, freshPassword, secureKit, totpCode, type Person } from './helpers/secure.js';

// The guide (use-2FA.md), step by step, on one service: each subtest is one behaviour and leans on the ones before it.
const ctx = await buildTestApp(t);
const kit = await secureKit(t, ctx);
const { inbox } = kit;
const svc = await ctx.newService();
const ip = freshIp();

const PNG_MAGIC = Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);

t.test('the guide: a token validator sets up 2FA through the certified interface', async (t) => {
  const admin: Person = { userId: 0, name: 'admin', password: freshPassword(), phone: '+33.612345678' };
  let session = '';
  let otherSession = '';
  let enrollment: { enrollmentId: string; secret: string; otpauthUri: string; qrCode: string; expiresAt: string };
  let change: { taskId: number; operationId: number };
  const newPassword = freshPassword();

  t.test('creating a token validator with a phone number sends a confirmation token to that number', async (t) => {
    const { userId, task } = await kit.createUser(svc, {
      name: admin.name,
      password: admin.password,
      phoneNumber: admin.phone,
      tokenValidator: true,
    });
    admin.userId = userId;
    t.equal(task.state, 'todo', 'no validator exists yet: the creation runs at once');
    const sms = inbox.latest(admin.phone!);
    t.equal(sms.signatureValid, true);
    t.equal(sms.body.channel, 'sms');
    t.match(sms.body.message, /confirm the phone number of admin.*Token: \d{8}/);
  });

  t.test('the token from the SMS confirms the phone number', async (t) => {
    const res = await kit.api('POST', `/1.0/dedicatedCloud/${svc}/user/${admin.userId}/confirmPhoneNumber`, {
      token: inbox.latestToken(admin.phone!),
    });
    t.equal(res.statusCode, 200);
    await kit.settle();
    t.equal((await kit.userRow(admin.userId)).phone_confirmed, true);
  });

  t.test('the user logs in with his password alone and gets a full session', async (t) => {
    const res = await kit.login(svc, { login: `admin@${svc}`, password: admin.password }, ip);
    t.equal(res.statusCode, 200);
    t.match(res.json(), { sessionToken: /^[A-Za-z0-9]{32,}$/, scope: 'full', expiresAt: String });
    t.equal(res.headers['cache-control'], 'no-store', 'the session token is never cached');
    t.equal(res.headers.pragma, 'no-cache');
    session = res.json().sessionToken;
  });

  t.test('enrollment offers a 160-bit base32 secret, its otpauth URI and a PNG QR code, valid 10 minutes', async (t) => {
    const res = await kit.secure('POST', svc, '/credentials/enrollment', { session, ip });
    t.equal(res.statusCode, 200);
    t.equal(res.headers['cache-control'], 'no-store', 'the secret and its QR code are never cached');
    t.equal(res.headers.pragma, 'no-cache');
    enrollment = res.json();
    t.match(enrollment.secret, /^[A-Z2-7]{32}$/, '32 base32 characters: 160 bits');
    const uri = new URL(enrollment.otpauthUri);
    t.equal(uri.protocol, 'otpauth:');
    t.equal(uri.host, 'totp');
    t.match(decodeURIComponent(uri.pathname), new RegExp(`^/PCC ${svc}:admin$`), 'label: issuer:login');
    t.equal(uri.searchParams.get('secret'), enrollment.secret);
    t.equal(uri.searchParams.get('issuer'), `PCC ${svc}`);
    const prefix = 'data:image/png;base64,';
    t.ok(enrollment.qrCode.startsWith(prefix), 'a PNG data URI');
    const png = Buffer.from(enrollment.qrCode.slice(prefix.length), 'base64');
    t.ok(png.subarray(0, 8).equals(PNG_MAGIC), 'decodes to a PNG');
    t.ok(png.length > 200, 'of a real image');
    t.equal(enrollment.expiresAt, ovhDate(new Date(ctx.clock.now().getTime() + 10 * 60_000)));
  });

  t.test('a code that does not match the new secret is refused naming code', async (t) => {
    const good = await totpCode(ctx, enrollment.secret);
    const res = await kit.secure('POST', svc, '/credentials', {
      session,
      ip,
      payload: { enrollmentId: enrollment.enrollmentId, newPassword, code: good === '000000' ? '000001' : '000000' },
    });
    t.equal(res.statusCode, 400);
    t.match(res.json().message, /^\[code\]/);
  });

  t.test('the new password and the current code answer 202 with a task and an operation', async (t) => {
    const res = await kit.secure('POST', svc, '/credentials', {
      session,
      ip,
      payload: { enrollmentId: enrollment.enrollmentId, newPassword, code: await totpCode(ctx, enrollment.secret) },
    });
    t.equal(res.statusCode, 202);
    change = res.json();
    t.ok(Number.isInteger(change.taskId) && Number.isInteger(change.operationId));
  });

  t.test('nothing changes before validation: the task waits, the old password logs in, the user has no 2FA', async (t) => {
    await kit.settle();
    const task = await kit.task(svc, change.taskId);
    t.match(task, { name: 'changeCredentialsUser', state: 'waitingTodo', userId: admin.userId });
    const user = (await kit.api('GET', `/1.0/dedicatedCloud/${svc}/user/${admin.userId}`)).json();
    t.strictSame(user.twoFactor, { state: 'none', enabledAt: null });
    t.equal((await kit.api('GET', `/1.0/dedicatedCloud/${svc}`)).json().twoFAState, 'disabled');
    const old = await kit.login(svc, { login: 'admin', password: admin.password }, ip);
    t.equal(old.statusCode, 200, 'the old password still logs in');
    otherSession = old.json().sessionToken;
    t.equal((await kit.login(svc, { login: 'admin', password: newPassword }, ip)).statusCode, 401, 'the new one not yet');
  });

  t.test('the token arrives by SMS at the requester, who is a token validator', async (t) => {
    const sms = inbox.latest(admin.phone!);
    t.equal(sms.signatureValid, true);
    t.equal(sms.body.operationId, change.operationId);
    t.match(sms.body.message, new RegExp(`operation ${change.operationId} .*Token: \\d{8}`));
  });

  t.test('the operation received by SMS can be loaded', async (t) => {
    const res = await kit.secure('GET', svc, `/operation/${change.operationId}`, { session, ip });
    t.equal(res.statusCode, 200);
    t.strictSame(res.json(), {
      operationId: change.operationId,
      kind: 'changeCredentialsUser',
      state: 'pending',
      taskId: change.taskId,
      description: 'Change the password and 2FA secret of admin',
      summary: 'new password and 2FA secret for admin',
      user: 'admin',
      requestedBy: 'admin',
      createdAt: ovhDate(ctx.clock.now()),
      expiresAt: ovhDate(new Date(ctx.clock.now().getTime() + 15 * 60_000)),
      triesLeft: 5,
    });
  });

  t.test('validating with the SMS token puts the task in todo, and the worker applies it', async (t) => {
    const res = await kit.secure('POST', svc, `/operation/${change.operationId}/validate`, {
      session,
      ip,
      payload: { token: inbox.tokenFor(admin.phone!, change.operationId) },
    });
    t.equal(res.statusCode, 200);
    t.strictSame(res.json(), { operationId: change.operationId, state: 'validated', taskId: change.taskId });
    t.equal((await kit.task(svc, change.taskId)).state, 'todo');
    await kit.settle();
    t.equal((await kit.task(svc, change.taskId)).state, 'done');
  });

  t.test('the user has 2FA, and the service’s twoFAState is enabled', async (t) => {
    const user = (await kit.api('GET', `/1.0/dedicatedCloud/${svc}/user/${admin.userId}`)).json();
    t.strictSame(user.twoFactor, { state: 'enabled', enabledAt: ovhDate(ctx.clock.now()) });
    t.equal((await kit.api('GET', `/1.0/dedicatedCloud/${svc}`)).json().twoFAState, 'enabled');
  });

  t.test('the user is told by SMS that his password and 2FA secret changed', async (t) => {
    t.match(inbox.latest(admin.phone!).body.message, /your password and 2FA secret were changed/);
  });

  t.test('the user’s other sessions ended; the session that asked for the change lives on', async (t) => {
    t.equal((await kit.secure('GET', svc, `/operation/${change.operationId}`, { session: otherSession, ip })).statusCode, 401);
    t.equal((await kit.secure('GET', svc, `/operation/${change.operationId}`, { session, ip })).statusCode, 200);
  });

  t.test('the old password no longer logs in', async (t) => {
    ctx.clock.advance(30_000);
    const res = await kit.login(
      svc,
      { login: 'admin', password: admin.password, token: await totpCode(ctx, enrollment.secret) },
      ip,
    );
    t.equal(res.statusCode, 401);
  });

  t.test('a login with the new password but no code is refused', async (t) => {
    const res = await kit.login(svc, { login: 'admin', password: newPassword }, ip);
    t.equal(res.statusCode, 401);
    t.match(res.json().message, /Invalid login, password or 2FA code/);
  });

  t.test('a login with the new password and a wrong code is refused', async (t) => {
    ctx.clock.advance(30_000);
    const code = await totpCode(ctx, enrollment.secret, -3);
    const res = await kit.login(svc, { login: 'admin', password: newPassword, token: code }, ip);
    t.equal(res.statusCode, 401);
  });

  let code = '';
  t.test('a login with the new password and the current code gets a full session', async (t) => {
    ctx.clock.advance(30_000);
    code = await totpCode(ctx, enrollment.secret);
    const res = await kit.login(svc, { login: 'admin', password: newPassword, token: code }, ip);
    t.equal(res.statusCode, 200);
    t.equal(res.json().scope, 'full');
  });

  t.test('a code works once: the same code again is refused with 401', async (t) => {
    const res = await kit.login(svc, { login: 'admin', password: newPassword, token: code }, ip);
    t.equal(res.statusCode, 401);
    t.match(res.json().message, /Invalid login, password or 2FA code/);
  });

  t.test('a used code replayed in the next time step, still inside the window, is refused', async (t) => {
    ctx.clock.advance(30_000);
    const res = await kit.login(svc, { login: 'admin', password: newPassword, token: code }, ip);
    t.equal(res.statusCode, 401);
  });

  t.test('the code of the previous time step is accepted (±1 step of drift)', async (t) => {
    ctx.clock.advance(30_000);
    const res = await kit.login(
      svc,
      { login: 'admin', password: newPassword, token: await totpCode(ctx, enrollment.secret, -1) },
      ip,
    );
    t.equal(res.statusCode, 200);
  });

  t.test('logging out ends the session', async (t) => {
    t.equal((await kit.secure('DELETE', svc, '/session', { session, ip })).statusCode, 204);
    t.equal((await kit.secure('GET', svc, `/operation/${change.operationId}`, { session, ip })).statusCode, 401);
  });
});

t.test('the guide: other users of a 2FA service must set up 2FA too', async (t) => {
  const svc2 = await ctx.newService();
  const admin = await kit.enable2FA(svc2, await kit.validator(svc2));
  const bob = await kit.plainUser(svc2, { confirm: true, approver: admin });
  const bobIp = freshIp();
  let bobSession = '';
  let op = { taskId: 0, operationId: 0 };
  let secret = '';
  const newPassword = freshPassword();

  t.test('a user without 2FA gets only the credentialsRenewal scope', async (t) => {
    const res = await kit.login(svc2, { login: bob.name, password: bob.password }, bobIp);
    t.equal(res.statusCode, 200);
    t.equal(res.json().scope, 'credentialsRenewal');
    bobSession = res.json().sessionToken;
  });

  t.test('a renewal session may not change the password without setting up 2FA', async (t) => {
    const res = await kit.secure('POST', svc2, '/credentials', { session: bobSession, ip: bobIp, payload: { newPassword } });
    t.equal(res.statusCode, 400);
    t.match(res.json().message, /^\[enrollmentId\]/);
  });

  t.test('a renewal session can enroll and ask for the change', async (t) => {
    const e = await kit.secure('POST', svc2, '/credentials/enrollment', { session: bobSession, ip: bobIp });
    t.equal(e.statusCode, 200);
    secret = e.json().secret;
    const res = await kit.secure('POST', svc2, '/credentials', {
      session: bobSession,
      ip: bobIp,
      payload: { enrollmentId: e.json().enrollmentId, newPassword, code: await totpCode(ctx, secret) },
    });
    t.equal(res.statusCode, 202);
    op = res.json();
  });

  t.test('the requester is not a token validator: the service’s token validator gets the token', async (t) => {
    await kit.settle();
    t.equal(inbox.latest(admin.phone!).body.operationId, op.operationId);
    t.equal(inbox.to(bob.phone!).filter((m) => m.body.operationId === op.operationId).length, 0, 'not the requester');
  });

  t.test('a renewal session cannot load or validate operations', async (t) => {
    const token = inbox.tokenFor(admin.phone!, op.operationId);
    const get = await kit.secure('GET', svc2, `/operation/${op.operationId}`, { session: bobSession, ip: bobIp });
    t.equal(get.statusCode, 403);
    const post = await kit.secure('POST', svc2, `/operation/${op.operationId}/validate`, {
      session: bobSession,
      ip: bobIp,
      payload: { token },
    });
    t.equal(post.statusCode, 403);
    t.equal((await kit.task(svc2, op.taskId)).state, 'waitingTodo');
  });

  t.test('the token validator validates it; the user then logs in with his password and code', async (t) => {
    const { sessionToken } = await kit.session(svc2, admin);
    const res = await kit.secure('POST', svc2, `/operation/${op.operationId}/validate`, {
      session: sessionToken,
      payload: { token: inbox.tokenFor(admin.phone!, op.operationId) },
    });
    t.equal(res.statusCode, 200);
    await kit.settle();
    ctx.clock.advance(30_000);
    const login = await kit.login(svc2, { login: bob.name, password: newPassword, token: await totpCode(ctx, secret) }, bobIp);
    t.equal(login.statusCode, 200);
    t.equal(login.json().scope, 'full');
  });
});

t.test(
  'a token validator who must renew his credentials validates his own change (the guide: “autonomy in token validation”)',
  async (t) => {
    const svc3 = await ctx.newService();
    const admin = await kit.enable2FA(svc3, await kit.validator(svc3));
    // A second token validator, created once 2FA is on: he has no 2FA and gets a renewal session.
    const carol = await kit.validator(svc3, { approver: admin });
    const login = await kit.login(svc3, { login: carol.name, password: carol.password });
    t.equal(login.json().scope, 'credentialsRenewal');
    const session = login.json().sessionToken;
    const e = (await kit.secure('POST', svc3, '/credentials/enrollment', { session })).json();
    const newPassword = freshPassword();
    const res = await kit.secure('POST', svc3, '/credentials', {
      session,
      payload: { enrollmentId: e.enrollmentId, newPassword, code: await totpCode(ctx, e.secret) },
    });
    t.equal(res.statusCode, 202);
    const { operationId, taskId } = res.json();
    await kit.settle();
    t.equal(inbox.latest(carol.phone!).body.operationId, operationId, 'the token went to the requester');
    t.notOk(
      inbox.to(admin.phone!).some((m) => m.body.operationId === operationId),
      'and to nobody else',
    );
    t.equal((await kit.secure('GET', svc3, `/operation/${operationId}`, { session })).statusCode, 200, 'he loads it');
    const validate = await kit.secure('POST', svc3, `/operation/${operationId}/validate`, {
      session,
      payload: { token: inbox.tokenFor(carol.phone!, operationId) },
    });
    t.equal(validate.statusCode, 200, 'he validates it');
    await kit.settle();
    t.equal((await kit.task(svc3, taskId)).state, 'done');
  },
);

t.test('a renewal session of a token validator cannot load or validate an operation about another user', async (t) => {
  const svc4 = await ctx.newService();
  const admin = await kit.enable2FA(svc4, await kit.validator(svc4));
  const dave = await kit.validator(svc4, { approver: admin });
  // An API user creation, gated: its token goes to both validators.
  const other = await kit.createUser(svc4, { name: 'other', password: freshPassword() });
  await kit.settle();
  const creation = inbox.latest(admin.phone!).body.operationId!;
  t.ok(other.task.state === 'waitingTodo');
  const session = (await kit.login(svc4, { login: dave.name, password: dave.password })).json();
  t.equal(session.scope, 'credentialsRenewal');
  t.equal((await kit.secure('GET', svc4, `/operation/${creation}`, { session: session.sessionToken })).statusCode, 403);
  const res = await kit.secure('POST', svc4, `/operation/${creation}/validate`, {
    session: session.sessionToken,
    payload: { token: inbox.tokenFor(dave.phone!, creation) },
  });
  t.equal(res.statusCode, 403);
});

t.test('twoFAWhitelist: a login from an enabled entry skips the code, never the password, and is audited', async (t) => {
  const svc5 = await ctx.newService();
  const admin = await kit.enable2FA(svc5, await kit.validator(svc5));
  const add = await kit.api('POST', `/1.0/dedicatedCloud/${svc5}/twoFAWhitelist`, {
    ip: '198.51.100.0/24',
    description: 'backup appliance',
  });
  t.equal(add.statusCode, 200);
  // A network that skips the code is a way around the second factor: with advancedSecurity it waits for a validator.
  t.equal(add.json().state, 'waitingTodo');

  t.test('an entry still enabling skips nothing', async (t) => {
    const res = await kit.login(svc5, { login: admin.name, password: admin.password }, '198.51.100.7');
    t.equal(res.statusCode, 401);
  });

  t.test('from an address of an enabled entry, the password alone logs in', async (t) => {
    await kit.approve(svc5, admin, add.json().taskId);
    const res = await kit.login(svc5, { login: admin.name, password: admin.password }, '198.51.100.7');
    t.equal(res.statusCode, 200);
    t.equal(res.json().scope, 'full');
  });

  t.test('the bypass is audited as login.2faBypass with the address', async (t) => {
    const events = await ctx.handle.db
      .selectFrom('audit_event')
      .select(['type', 'actor', 'ip', 'user_id'])
      .where('service_name', '=', svc5)
      .where('type', '=', 'login.2faBypass')
      .execute();
    t.equal(events.length, 1);
    t.match(events[0], { actor: admin.name, user_id: admin.userId });
    t.equal(String(events[0]!.ip), '198.51.100.7');
  });

  t.test('from an address of an enabled entry, a wrong password is still refused', async (t) => {
    const res = await kit.login(svc5, { login: admin.name, password: `${admin.password}x` }, '198.51.100.8');
    t.equal(res.statusCode, 401);
  });

  t.test('outside the entry the code is still required', async (t) => {
    const res = await kit.login(svc5, { login: admin.name, password: admin.password }, '198.51.101.7');
    t.equal(res.statusCode, 401);
  });

  t.test('an IPv4 client seen as ::ffff:a.b.c.d (a dual-stack listener) is matched by its IPv4 entry', async (t) => {
    const res = await kit.login(svc5, { login: admin.name, password: admin.password }, '::ffff:198.51.100.10');
    t.equal(res.statusCode, 200);
  });

  t.test('a user without 2FA gets no full session from a whitelisted address', async (t) => {
    const eve = await kit.plainUser(svc5, { phone: false, approver: admin });
    const res = await kit.login(svc5, { login: eve.name, password: eve.password }, '198.51.100.9');
    t.equal(res.statusCode, 200);
    t.equal(res.json().scope, 'credentialsRenewal', 'the whitelist is no substitute for enrolment');
  });
});

t.test('the code that confirmed the enrollment does not log in once 2FA is on (a code is accepted once)', async (t) => {
  const svc6 = await ctx.newService();
  const admin = await kit.validator(svc6);
  const { sessionToken } = await kit.session(svc6, admin);
  const e = (await kit.secure('POST', svc6, '/credentials/enrollment', { session: sessionToken })).json();
  const code = await totpCode(ctx, e.secret);
  const newPassword = freshPassword();
  const change = await kit.secure('POST', svc6, '/credentials', {
    session: sessionToken,
    payload: { enrollmentId: e.enrollmentId, newPassword, code },
  });
  await kit.settle();
  const { operationId } = change.json();
  await kit.secure('POST', svc6, `/operation/${operationId}/validate`, {
    session: sessionToken,
    payload: { token: inbox.tokenFor(admin.phone!, operationId) },
  });
  await kit.settle();
  // Still in the same time step: the code an onlooker saw during the enrollment.
  const res = await kit.login(svc6, { login: admin.name, password: newPassword, token: code });
  t.equal(res.statusCode, 401);
  ctx.clock.advance(30_000);
  const next = await kit.login(svc6, { login: admin.name, password: newPassword, token: await totpCode(ctx, e.secret) });
  t.equal(next.statusCode, 200, 'the next code works');
});
