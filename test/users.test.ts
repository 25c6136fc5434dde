import t from 'tap';
import { buildTestApp } from './helpers/app.js';
import { T0, assertOvhError } from './helpers/api.js';
import { freshIp, freshName, freshPassword, freshPhone, secureKit } from './helpers/secure.js';

// One app and database for the file; every test works on its own service. Tasks are run by a worker that also sends
// the queued SMS to a local webhook.
const ctx = await buildTestApp(t);
const kit = await secureKit(t, ctx);
const { inbox } = kit;
const userUrl = (svc: string, rest = '') => `/1.0/dedicatedCloud/${svc}/user${rest}`;

const expectedUser = (fields: Record<string, unknown>) => ({
  activationState: 'enabled',
  activeDirectoryId: null,
  activeDirectoryType: null,
  canManageIpFailOvers: false,
  canManageNetwork: false,
  canManageRights: false,
  email: null,
  encryptionRight: false,
  firstName: null,
  fullAdminRo: false,
  identityProviderId: null,
  identityProviderType: null,
  isEnableManageable: true,
  isTokenValidator: false,
  lastName: null,
  login: '',
  name: '',
  nsxRight: false,
  phoneNumber: null,
  receiveAlerts: false,
  state: 'delivered',
  type: 'user',
  userId: 0,
  twoFactor: { state: 'none', enabledAt: null },
  ...fields,
});

t.test('POST user answers an addUser task for the new user', async (t) => {
  const svc = await ctx.newService();
  const name = freshName();
  const res = await kit.api('POST', userUrl(svc), { name, password: freshPassword() });
  t.equal(res.statusCode, 200);
  const task = res.json();
  t.match(task, { name: 'addUser', type: 'user', state: 'todo', createdFrom: 'api', executionDate: T0, progress: 0 });
  t.ok(Number.isInteger(task.userId) && task.userId > 0, 'the task names the user');
  const user = await kit.api('GET', userUrl(svc, `/${task.userId}`));
  t.equal(user.json().state, 'creating', 'the user is creating until the task is done');
});

t.test('a user created without tokenValidator reads back with every field of dedicatedCloud.User and twoFactor', async (t) => {
  const svc = await ctx.newService();
  const name = freshName();
  const { userId } = await kit.createUser(svc, {
    name,
    password: freshPassword(),
    email: `${name}@example.com`,
    firstName: 'Ada',
    lastName: 'Lovelace',
  });
  const res = await kit.api('GET', userUrl(svc, `/${userId}`));
  t.equal(res.statusCode, 200);
  t.strictSame(
    res.json(),
    expectedUser({ userId, name, login: `${name}@${svc}`, email: `${name}@example.com`, firstName: 'Ada', lastName: 'Lovelace' }),
  );
});

t.test('a user created with tokenValidator and a phone number is a token validator with that number', async (t) => {
  const svc = await ctx.newService();
  const name = freshName();
  const phone = freshPhone();
  const { userId } = await kit.createUser(svc, { name, password: freshPassword(), phoneNumber: phone, tokenValidator: true });
  const res = await kit.api('GET', userUrl(svc, `/${userId}`));
  t.strictSame(res.json(), expectedUser({ userId, name, login: `${name}@${svc}`, phoneNumber: phone, isTokenValidator: true }));
});

t.test(
  'a phone number in neither international form (+33.612345678, +33612345678) is refused with 400 naming phoneNumber',
  async (t) => {
    const svc = await ctx.newService();
    for (const phoneNumber of ['0612345678', '+33.6 12 34 56 78', '33.612345678', '+336', '+33-612345678']) {
      const res = await kit.api('POST', userUrl(svc), { name: freshName(), password: freshPassword(), phoneNumber });
      assertOvhError(t, res, 400, /^\[phoneNumber\]/);
    }
    t.strictSame((await kit.api('GET', userUrl(svc))).json(), [], 'no user was created');
  },
);

t.test('a password that breaks the policy is refused with 400 naming password and the rule', async (t) => {
  const svc = await ctx.newService();
  const cases: Array<[string, RegExp]> = [
    ['Sh0rt!pw', /^\[password\] must be at least 12 characters long$/],
    ['nouppercase-123', /^\[password\] must contain an uppercase letter$/],
    ['NoDigitsHere-!', /^\[password\] must contain a digit$/],
    ['NoSpecial12345', /^\[password\] must contain a special character$/],
  ];
  for (const [password, rule] of cases) {
    const res = await kit.api('POST', userUrl(svc), { name: freshName(), password });
    assertOvhError(t, res, 400, rule);
  }
  t.strictSame((await kit.api('GET', userUrl(svc))).json(), [], 'no user was created');
});

t.test('a second user with the same name, whatever its case, is refused with 400 naming name', async (t) => {
  const svc = await ctx.newService();
  const name = freshName('dup');
  await kit.createUser(svc, { name, password: freshPassword() });
  for (const again of [name, name.toUpperCase()]) {
    const res = await kit.api('POST', userUrl(svc), { name: again, password: freshPassword() });
    assertOvhError(t, res, 400, /^\[name\] .*already exists/);
  }
  t.equal((await kit.api('GET', userUrl(svc))).json().length, 1);
});

t.test('the same name may exist on two services', async (t) => {
  const [a, b] = [await ctx.newService(), await ctx.newService()];
  const name = freshName();
  await kit.createUser(a, { name, password: freshPassword() });
  const res = await kit.api('POST', userUrl(b), { name, password: freshPassword() });
  t.equal(res.statusCode, 200);
});

t.test('GET user lists the ids, and name filters them', async (t) => {
  const svc = await ctx.newService();
  const alice = await kit.createUser(svc, { name: 'alice', password: freshPassword() });
  const bob = await kit.createUser(svc, { name: 'bob', password: freshPassword() });
  t.strictSame((await kit.api('GET', userUrl(svc))).json(), [alice.userId, bob.userId]);
  t.strictSame((await kit.api('GET', userUrl(svc, '?name=bob'))).json(), [bob.userId]);
  t.strictSame((await kit.api('GET', userUrl(svc, '?name=carol'))).json(), []);
});

t.test('a user of another service is 404, like one that does not exist', async (t) => {
  const [a, b] = [await ctx.newService(), await ctx.newService()];
  const { userId } = await kit.createUser(a, { name: freshName(), password: freshPassword() });
  assertOvhError(t, await kit.api('GET', userUrl(b, `/${userId}`)), 404, `userId = ${userId}`);
  assertOvhError(t, await kit.api('GET', userUrl(a, '/999999')), 404, 'userId = 999999');
});

t.test('DELETE user answers a removeUser task; once it is done the user is 404 and no longer listed', async (t) => {
  const svc = await ctx.newService();
  const { userId } = await kit.createUser(svc, { name: freshName(), password: freshPassword() });
  const res = await kit.api('DELETE', userUrl(svc, `/${userId}`));
  t.equal(res.statusCode, 200);
  t.match(res.json(), { name: 'removeUser', state: 'todo', userId });
  t.equal((await kit.api('GET', userUrl(svc, `/${userId}`))).json().state, 'deleting');
  await kit.settle();
  t.equal((await kit.task(svc, res.json().taskId)).state, 'done');
  assertOvhError(t, await kit.api('GET', userUrl(svc, `/${userId}`)), 404, `userId = ${userId}`);
  t.strictSame((await kit.api('GET', userUrl(svc))).json(), []);
});

t.test('a removed user name can be given to a new user', async (t) => {
  const svc = await ctx.newService();
  const name = freshName();
  const { userId } = await kit.createUser(svc, { name, password: freshPassword() });
  await kit.api('DELETE', userUrl(svc, `/${userId}`));
  await kit.settle();
  const res = await kit.api('POST', userUrl(svc), { name, password: freshPassword() });
  t.equal(res.statusCode, 200);
});

t.test('a removed user can no longer log in, and his sessions end', async (t) => {
  const svc = await ctx.newService();
  const person = await kit.plainUser(svc, { phone: false });
  const { sessionToken } = await kit.session(svc, person);
  await kit.api('DELETE', userUrl(svc, `/${person.userId}`));
  await kit.settle();
  t.equal((await kit.secure('POST', svc, '/credentials/enrollment', { session: sessionToken })).statusCode, 401);
  t.equal((await kit.login(svc, { login: person.name, password: person.password })).statusCode, 401);
});

t.test('changeProperties changes the given fields and leaves the others', async (t) => {
  const svc = await ctx.newService();
  const name = freshName();
  const { userId } = await kit.createUser(svc, { name, password: freshPassword(), firstName: 'Ada' });
  const res = await kit.api('POST', userUrl(svc, `/${userId}/changeProperties`), {
    lastName: 'Byron',
    canManageRights: true,
    fullAdminRo: true,
    receiveAlerts: true,
  });
  t.equal(res.statusCode, 200);
  t.match(res.json(), { name: 'changePropertiesUser', state: 'todo', userId });
  t.strictSame(
    (await kit.api('GET', userUrl(svc, `/${userId}`))).json(),
    expectedUser({
      userId,
      name,
      login: `${name}@${svc}`,
      firstName: 'Ada',
      lastName: 'Byron',
      canManageRights: true,
      fullAdminRo: true,
      receiveAlerts: true,
    }),
  );
});

t.test('a new phone number gets a confirmation SMS and is unconfirmed until its owner confirms it', async (t) => {
  const svc = await ctx.newService();
  const person = await kit.plainUser(svc, { confirm: true });
  t.equal((await kit.userRow(person.userId)).phone_confirmed, true, 'confirmed before');
  const phone = freshPhone();
  const res = await kit.api('POST', userUrl(svc, `/${person.userId}/changeProperties`), { phoneNumber: phone });
  t.equal(res.statusCode, 200);
  t.equal(res.json().state, 'todo', 'no token validator: nothing to wait for');
  await kit.settle();
  t.equal((await kit.api('GET', userUrl(svc, `/${person.userId}`))).json().phoneNumber, phone);
  t.equal((await kit.userRow(person.userId)).phone_confirmed, false, 'the new number is not confirmed');
  t.match(inbox.latest(phone).body, { channel: 'sms', to: phone, message: /confirm the phone number .*Token: \d{8}/ });
  const confirm = await kit.api('POST', userUrl(svc, `/${person.userId}/confirmPhoneNumber`), {
    token: inbox.latestToken(phone),
  });
  t.equal(confirm.statusCode, 200);
  t.equal((await kit.userRow(person.userId)).phone_confirmed, true, 'confirmed with the token sent to it');
});

t.test('advancedSecurity: a new phone number waits for a token validator; until then nothing changes', async (t) => {
  const svc = await ctx.newService();
  const person = await kit.plainUser(svc, { confirm: true });
  const validator = await kit.validator(svc);
  const phone = freshPhone();
  const res = await kit.api('POST', userUrl(svc, `/${person.userId}/changeProperties`), { phoneNumber: phone });
  t.equal(res.json().state, 'waitingTodo');
  await kit.settle();
  t.equal((await kit.api('GET', userUrl(svc, `/${person.userId}`))).json().phoneNumber, person.phone, 'the old number');
  t.equal((await kit.userRow(person.userId)).phone_confirmed, true);
  t.strictSame(inbox.to(phone), [], 'nothing sent to the new number yet');
  t.match(
    inbox.latest(validator.phone!).body.message,
    `(change user ${person.name}: phone number ${phone}). Token: `,
    'the validator is asked',
  );
  await kit.approve(svc, validator, res.json().taskId);
  t.equal((await kit.api('GET', userUrl(svc, `/${person.userId}`))).json().phoneNumber, phone, 'applied once validated');
  t.equal((await kit.userRow(person.userId)).phone_confirmed, false);
  t.match(inbox.latest(phone).body.message, /confirm the phone number/, 'and the new number is asked to confirm');
});

t.test('advancedSecurity: granting tokenValidator and changing the e-mail wait for a token validator', async (t) => {
  const svc = await ctx.newService();
  const person = await kit.plainUser(svc, { phone: false });
  const validator = await kit.validator(svc);
  const res = await kit.api('POST', userUrl(svc, `/${person.userId}/changeProperties`), {
    tokenValidator: true,
    email: 'new@example.com',
    firstName: 'Grace',
  });
  t.equal(res.json().state, 'waitingTodo');
  await kit.settle();
  t.match(
    inbox.latest(validator.phone!).body.message,
    `(change user ${person.name}: e-mail new@example.com, token validator right granted)`,
    'the SMS says what is granted, and the new address',
  );
  const before = (await kit.api('GET', userUrl(svc, `/${person.userId}`))).json();
  t.match(before, { isTokenValidator: false, email: null, firstName: 'Grace' }, 'only the name changed at once');
  await kit.approve(svc, validator, res.json().taskId);
  t.match((await kit.api('GET', userUrl(svc, `/${person.userId}`))).json(), {
    isTokenValidator: true,
    email: 'new@example.com',
  });
});

t.test('advancedSecurity: taking tokenValidator away waits for a token validator; the right stays until then', async (t) => {
  const svc = await ctx.newService();
  const first = await kit.validator(svc);
  const second = await kit.validator(svc, { approver: first });
  const res = await kit.api('POST', userUrl(svc, `/${second.userId}/changeProperties`), { tokenValidator: false });
  t.equal(res.json().state, 'waitingTodo');
  await kit.settle();
  t.match(inbox.latest(first.phone!).body.message, `(change user ${second.name}: token validator right revoked)`);
  t.equal((await kit.api('GET', userUrl(svc, `/${second.userId}`))).json().isTokenValidator, true, 'not yet');
  await kit.approve(svc, first, res.json().taskId);
  t.equal((await kit.api('GET', userUrl(svc, `/${second.userId}`))).json().isTokenValidator, false, 'once validated');
});

t.test('with no token validator left to reach, an armed service holds API changes for an operator', async (t) => {
  const svc = await ctx.newService();
  const other = await kit.plainUser(svc, { phone: false });
  const validator = await kit.validator(svc);
  const change = await kit.api('POST', userUrl(svc, `/${validator.userId}/changeProperties`), { phoneNumber: freshPhone() });
  // His old, confirmed number approves the new one; the new one is not confirmed yet, so nobody can receive a token.
  await kit.approve(svc, validator, change.json().taskId);
  const sent = inbox.messages.length;
  const password = freshPassword();
  const res = await kit.api('POST', userUrl(svc, `/${other.userId}/changePassword`), { password });
  t.equal(res.json().state, 'waitingTodo', 'the gate fails closed');
  await kit.settle();
  t.equal(inbox.messages.length, sent, 'no SMS: nobody to send it to');
  const op = await kit.operationOf(res.json().taskId);
  t.equal(op.approval, 'operator');
  t.equal((await kit.login(svc, { login: other.name, password })).statusCode, 401, 'the new password is not set');
  await ctx.app.services.operations.approveByOperator(svc, op.operation_id);
  await kit.settle();
  t.equal((await kit.task(svc, res.json().taskId)).state, 'done', 'the operator approved it (npm run cli -- operation approve)');
  t.equal((await kit.login(svc, { login: other.name, password })).statusCode, 200);
});

t.test('changeProperties with the same phone number sends nothing and keeps it confirmed', async (t) => {
  const svc = await ctx.newService();
  const person = await kit.validator(svc);
  const before = inbox.to(person.phone!).length;
  await kit.api('POST', userUrl(svc, `/${person.userId}/changeProperties`), { phoneNumber: person.phone });
  await kit.settle();
  t.equal(inbox.to(person.phone!).length, before);
  t.equal((await kit.userRow(person.userId)).phone_confirmed, true);
});

t.test('confirmPhoneNumber answers a confirmPhoneNumberUser task', async (t) => {
  const svc = await ctx.newService();
  const phone = freshPhone();
  const { userId } = await kit.createUser(svc, { name: freshName(), password: freshPassword(), phoneNumber: phone });
  const res = await kit.api('POST', userUrl(svc, `/${userId}/confirmPhoneNumber`), { token: inbox.latestToken(phone) });
  t.equal(res.statusCode, 200);
  t.match(res.json(), { name: 'confirmPhoneNumberUser', userId, state: 'todo' });
  await kit.settle();
  t.equal((await kit.task(svc, res.json().taskId)).state, 'done');
});

t.test('confirmPhoneNumber with a wrong token is refused and leaves the number unconfirmed', async (t) => {
  const svc = await ctx.newService();
  const phone = freshPhone();
  const { userId } = await kit.createUser(svc, { name: freshName(), password: freshPassword(), phoneNumber: phone });
  const right = inbox.latestToken(phone);
  const wrong = right === '00000000' ? '00000001' : '00000000';
  const res = await kit.api('POST', userUrl(svc, `/${userId}/confirmPhoneNumber`), { token: wrong });
  assertOvhError(t, res, 400, /Wrong token/);
  t.equal((await kit.userRow(userId)).phone_confirmed, false);
});

t.test('confirmPhoneNumber with no confirmation pending is refused with 400', async (t) => {
  const svc = await ctx.newService();
  const { userId } = await kit.createUser(svc, { name: freshName(), password: freshPassword() });
  assertOvhError(
    t,
    await kit.api('POST', userUrl(svc, `/${userId}/confirmPhoneNumber`), { token: '12345678' }),
    400,
    /No phone number confirmation is pending/,
  );
});

t.test('changePassword replaces the password once its task is done: the new one logs in, the old one no more', async (t) => {
  const svc = await ctx.newService();
  const person = await kit.plainUser(svc, { phone: false });
  const password = freshPassword();
  const res = await kit.api('POST', userUrl(svc, `/${person.userId}/changePassword`), { password });
  t.match(res.json(), { name: 'changePasswordUser', state: 'todo', userId: person.userId });
  await kit.settle();
  t.equal((await kit.login(svc, { login: person.name, password: person.password })).statusCode, 401, 'old');
  t.equal((await kit.login(svc, { login: person.name, password })).statusCode, 200, 'new');
});

t.test('changePassword to one of the last 5 passwords is refused with 400 naming password', async (t) => {
  const svc = await ctx.newService();
  const person = await kit.plainUser(svc, { phone: false });
  const second = freshPassword();
  await kit.api('POST', userUrl(svc, `/${person.userId}/changePassword`), { password: second });
  await kit.settle();
  for (const reused of [person.password, second]) {
    const res = await kit.api('POST', userUrl(svc, `/${person.userId}/changePassword`), { password: reused });
    assertOvhError(t, res, 400, /^\[password\] must differ from the last 5 passwords$/);
  }
});

t.test('changePassword with a password that breaks the policy is refused naming password', async (t) => {
  const svc = await ctx.newService();
  const { userId } = await kit.createUser(svc, { name: freshName(), password: freshPassword() });
  assertOvhError(
    t,
    await kit.api('POST', userUrl(svc, `/${userId}/changePassword`), { password: 'alllowercase-123' }),
    400,
    /^\[password\] must contain an uppercase letter$/,
  );
});

t.test('disable ends the user’s sessions and refuses his logins; enable lets him in again', async (t) => {
  const svc = await ctx.newService();
  const person = await kit.plainUser(svc, { phone: false });
  const { sessionToken } = await kit.session(svc, person);
  const off = await kit.api('POST', userUrl(svc, `/${person.userId}/disable`));
  t.match(off.json(), { name: 'disableUser', state: 'todo' });
  await kit.settle();
  t.equal((await kit.api('GET', userUrl(svc, `/${person.userId}`))).json().activationState, 'disabled');
  const ended = await ctx.handle.db
    .selectFrom('user_session')
    .select(['ended_at', 'end_reason'])
    .where('user_id', '=', person.userId)
    .execute();
  t.match(ended, [{ end_reason: 'userDisabled' }], 'the session ended');
  t.equal((await kit.secure('POST', svc, '/credentials/enrollment', { session: sessionToken })).statusCode, 401);
  t.equal((await kit.login(svc, { login: person.name, password: person.password })).statusCode, 401, 'disabled');
  await kit.api('POST', userUrl(svc, `/${person.userId}/enable`));
  await kit.settle();
  t.equal((await kit.api('GET', userUrl(svc, `/${person.userId}`))).json().activationState, 'enabled');
  t.equal((await kit.login(svc, { login: person.name, password: person.password })).statusCode, 200, 'enabled');
});

t.test('the tasks of a user are listed, filtered by name and state, and read one by one', async (t) => {
  const svc = await ctx.newService();
  const { userId, task } = await kit.createUser(svc, { name: freshName(), password: freshPassword() });
  const other = await kit.createUser(svc, { name: freshName(), password: freshPassword() });
  const change = (await kit.api('POST', userUrl(svc, `/${userId}/changeProperties`), { firstName: 'X' })).json();
  t.strictSame((await kit.api('GET', userUrl(svc, `/${userId}/task`))).json(), [task.taskId, change.taskId]);
  t.strictSame((await kit.api('GET', userUrl(svc, `/${userId}/task?name=addUser`))).json(), [task.taskId]);
  t.strictSame((await kit.api('GET', userUrl(svc, `/${userId}/task?state=todo`))).json(), [change.taskId]);
  const one = await kit.api('GET', userUrl(svc, `/${userId}/task/${task.taskId}`));
  t.equal(one.statusCode, 200);
  t.match(one.json(), { taskId: task.taskId, name: 'addUser', state: 'done', userId, progress: 100 });
  assertOvhError(t, await kit.api('GET', userUrl(svc, `/${userId}/task/${other.task.taskId}`)), 404, 'taskId');
  assertOvhError(t, await kit.api('GET', userUrl(svc, `/999999/task`)), 404, 'userId = 999999');
});

t.test('GET passwordPolicy answers OVH’s dedicatedCloud.passwordPolicy with the defaults', async (t) => {
  const svc = await ctx.newService();
  const res = await kit.api('GET', `/1.0/dedicatedCloud/${svc}/passwordPolicy`);
  t.equal(res.statusCode, 200);
  t.strictSame(res.json(), {
    deniedChars: [],
    digitMandatory: true,
    historyCheck: 5,
    letterMandatory: true,
    lowercaseLetterMandatory: true,
    maxLength: 64,
    minLength: 12,
    specialMandatory: true,
    uppercaseLetterMandatory: true,
    validityPeriod: 0,
  });
});

t.test('a user created without a password gets a generated one by e-mail, and it logs in', async (t) => {
  const svc = await ctx.newService();
  const name = freshName();
  const email = `${name}@example.com`;
  await kit.createUser(svc, { name, email });
  const message = inbox.latest(email);
  t.equal(message.body.channel, 'email');
  const password = /is (\S+)$/.exec(message.body.message)?.[1];
  t.ok(password, 'the e-mail holds the password');
  t.equal((await kit.login(svc, { login: name, password: password! }, freshIp())).statusCode, 200);
});

// advancedSecurity (on by default): sensitive API calls wait for operation validation once a confirmed token validator
// exists to validate them; before that (bootstrap) they run at once.

t.test('advancedSecurity with no confirmed token validator: an API user creation runs at once (bootstrap)', async (t) => {
  const svc = await ctx.newService();
  t.equal((await kit.api('GET', `/1.0/dedicatedCloud/${svc}`)).json().advancedSecurity, true);
  const res = await kit.api('POST', userUrl(svc), { name: freshName(), password: freshPassword(), tokenValidator: true });
  t.equal(res.json().state, 'todo');
});

t.test('advancedSecurity with a confirmed token validator: an API user creation waits in waitingTodo', async (t) => {
  const svc = await ctx.newService();
  const validator = await kit.validator(svc);
  const res = await kit.api('POST', userUrl(svc), { name: freshName(), password: freshPassword() });
  t.equal(res.statusCode, 200);
  t.equal(res.json().state, 'waitingTodo');
  await kit.settle();
  t.equal((await kit.task(svc, res.json().taskId)).state, 'waitingTodo', 'the worker leaves it alone');
  t.equal((await kit.api('GET', userUrl(svc, `/${res.json().userId}`))).json().state, 'creating');
  t.match(inbox.latest(validator.phone!).body.message, /create user .*Token: \d{8}/, 'the validator got the token');
});

t.test('advancedSecurity with a confirmed token validator: an API changePassword waits in waitingTodo', async (t) => {
  const svc = await ctx.newService();
  const person = await kit.plainUser(svc, { phone: false });
  await kit.validator(svc);
  const password = freshPassword();
  const res = await kit.api('POST', userUrl(svc, `/${person.userId}/changePassword`), { password });
  t.equal(res.json().state, 'waitingTodo');
  await kit.settle();
  t.equal((await kit.login(svc, { login: person.name, password: person.password })).statusCode, 200, 'old still works');
});

t.test('advancedSecurity: a gated API user creation validated by a token validator delivers the user', async (t) => {
  const svc = await ctx.newService();
  const validator = await kit.validator(svc);
  const res = await kit.api('POST', userUrl(svc), { name: freshName(), password: freshPassword() });
  await kit.settle();
  const operationId = inbox.latest(validator.phone!).body.operationId!;
  const { sessionToken } = await kit.session(svc, validator);
  const ok = await kit.secure('POST', svc, `/operation/${operationId}/validate`, {
    session: sessionToken,
    payload: { token: inbox.tokenFor(validator.phone!, operationId) },
  });
  t.equal(ok.statusCode, 200);
  await kit.settle();
  t.equal((await kit.task(svc, res.json().taskId)).state, 'done');
  t.equal((await kit.api('GET', userUrl(svc, `/${res.json().userId}`))).json().state, 'delivered');
});

t.test('advancedSecurity: a gated user creation whose token expires frees the name for a new try', async (t) => {
  const svc = await ctx.newService();
  await kit.validator(svc);
  const name = freshName();
  const res = await kit.api('POST', userUrl(svc), { name, password: freshPassword() });
  ctx.clock.advance(15 * 60_000 + 1000);
  await kit.settle();
  t.equal((await kit.task(svc, res.json().taskId)).state, 'canceled');
  t.strictSame((await kit.api('GET', userUrl(svc, `?name=${name}`))).json(), [], 'the canceled user is not listed');
  const again = await kit.api('POST', userUrl(svc), { name, password: freshPassword() });
  t.equal(again.statusCode, 200, 'the name can be used again');
});

t.test('advancedSecurity: a gated user removal whose token expires leaves the user delivered', async (t) => {
  const svc = await ctx.newService();
  const person = await kit.plainUser(svc, { phone: false });
  await kit.validator(svc);
  const res = await kit.api('DELETE', userUrl(svc, `/${person.userId}`));
  t.equal(res.json().state, 'waitingTodo');
  ctx.clock.advance(15 * 60_000 + 1000);
  await kit.settle();
  t.equal((await kit.task(svc, res.json().taskId)).state, 'canceled');
  t.equal((await kit.api('GET', userUrl(svc, `/${person.userId}`))).json().state, 'delivered');
  t.equal((await kit.api('DELETE', userUrl(svc, `/${person.userId}`))).statusCode, 200, 'removal can be asked again');
});

t.test('advancedSecurity off: an API user creation runs at once even with a confirmed token validator', async (t) => {
  const svc = await ctx.newService();
  await kit.validator(svc);
  await ctx.handle.db.updateTable('service').set({ advanced_security: false }).where('service_name', '=', svc).execute();
  const res = await kit.api('POST', userUrl(svc), { name: freshName(), password: freshPassword() });
  t.equal(res.json().state, 'todo');
});

t.test('a token validator whose number is not confirmed does not gate API calls', async (t) => {
  const svc = await ctx.newService();
  await kit.createUser(svc, { name: freshName(), password: freshPassword(), phoneNumber: freshPhone(), tokenValidator: true });
  const res = await kit.api('POST', userUrl(svc), { name: freshName(), password: freshPassword() });
  t.equal(res.json().state, 'todo');
});
