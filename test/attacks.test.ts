import http from 'node:http';
import net from 'node:net';
import type { AddressInfo } from 'node:net';
import t from 'tap';
import { buildTestApp } from './helpers/app.js';
import { freshName, freshPassword, freshPhone, secureKit } from './helpers/secure.js';

// Regression tests of the second review: an attacker with fresh eyes against a running server (issue 7). Each one
// reproduces an attack that got through before its fix.

const ctx = await buildTestApp(t);
const { app } = ctx;
const kit = await secureKit(t, ctx);
const userUrl = (svc: string, rest = '') => `/1.0/dedicatedCloud/${svc}/user${rest}`;

t.test('a token validator created by the API reaches nothing before his creation is validated', async (t) => {
  const svc = await ctx.newService();
  const validator = await kit.validator(svc);
  const phone = freshPhone();
  const password = freshPassword();
  const name = freshName('evil');
  const res = await kit.api('POST', userUrl(svc), { name, password, phoneNumber: phone, tokenValidator: true });
  t.equal(res.json().state, 'waitingTodo', 'the creation waits for a token validator');
  const { userId, taskId } = res.json<{ userId: number; taskId: number }>();
  await kit.settle();

  t.strictSame(kit.inbox.to(phone), [], 'the new number receives no confirmation token while the creation waits');
  const op = await kit.operationOf(taskId);
  const sms = kit.inbox.to(validator.phone!).find((m) => m.body.operationId === op.operation_id);
  t.match(
    sms?.body.message,
    `create user ${name} as a token validator with phone ${phone}`,
    'the validator is told what he grants',
  );

  const confirm = await kit.api('POST', userUrl(svc, `/${userId}/confirmPhoneNumber`), { token: '12345678' });
  t.equal(confirm.statusCode, 400, 'a number of a user not created yet cannot be confirmed');
  t.match(confirm.json().message, /not delivered/);

  // Earlier, DELETE turned `creating` into `deleting`, which counts as an active user: he could log in.
  const remove = await kit.api('DELETE', userUrl(svc, `/${userId}`));
  t.equal(remove.statusCode, 400);
  t.match(remove.json().message, /still being created/);
  t.equal((await kit.userRow(userId)).state, 'creating');
  await kit.settle();
  t.equal((await kit.login(svc, { login: name, password })).statusCode, 401, 'he cannot log in');

  // Validated, the creation applies, and only then does the number get its token.
  await kit.approve(svc, validator, taskId);
  t.equal((await kit.userRow(userId)).state, 'delivered');
  t.match(kit.inbox.latest(phone).body.message, /Token: \d{8}/);
  const confirmed = await kit.api('POST', userUrl(svc, `/${userId}/confirmPhoneNumber`), {
    token: kit.inbox.latestToken(phone),
  });
  t.equal(confirmed.statusCode, 200);
});

t.test('a new token goes to the same people as the first, never to whoever asks for it', async (t) => {
  const svc = await ctx.newService();
  const first = await kit.validator(svc);
  const second = await kit.validator(svc, { approver: first });
  // The API changes the second validator's password: the token goes to the service's validators.
  const res = await kit.api('POST', userUrl(svc, `/${second.userId}/changePassword`), { password: freshPassword() });
  t.equal(res.json().state, 'waitingTodo');
  await kit.settle();
  const op = await kit.operationOf(res.json().taskId);
  const receivers = () =>
    [first, second].filter((v) => kit.inbox.to(v.phone!).some((m) => m.body.operationId === op.operation_id)).length;
  t.equal(receivers(), 2, 'both validators got the first token');
  const before = kit.inbox.messages.length;

  ctx.clock.advance(61_000);
  const { sessionToken } = await kit.session(svc, second);
  const resend = await kit.secure('POST', svc, `/operation/${op.operation_id}/resend`, { session: sessionToken });
  t.equal(resend.statusCode, 204, resend.body);
  await kit.settle();
  const resent = kit.inbox.messages.slice(before).filter((m) => m.body.operationId === op.operation_id);
  // Earlier, the subject of the change asking for a resend received the new token alone.
  t.strictSame(resent.map((m) => m.body.to).sort(), [first.phone, second.phone].sort(), 'both validators again');
});

t.test('enable and disable ask only for a real change, and a cancel restores what was there', async (t) => {
  const svc = await ctx.newService();
  const validator = await kit.validator(svc);
  const user = await kit.plainUser(svc, { approver: validator });

  // Earlier `enable` of an enabled user marked him `toEnable` at once: inactive, locked out by a bare API call.
  const enable = await kit.api('POST', userUrl(svc, `/${user.userId}/enable`));
  t.equal(enable.statusCode, 400);
  t.match(enable.json().message, /already enabled/);
  t.equal((await kit.userRow(user.userId)).activation_state, 'enabled');
  t.equal((await kit.login(svc, { login: user.name, password: user.password })).statusCode, 200, 'he still logs in');

  const disable = await kit.api('POST', userUrl(svc, `/${user.userId}/disable`));
  t.equal(disable.json().state, 'waitingTodo', 'disabling waits for a validator');
  t.equal((await kit.userRow(user.userId)).activation_state, 'toDisable');
  const again = await kit.api('POST', userUrl(svc, `/${user.userId}/disable`));
  t.equal(again.statusCode, 400, 'one activation change at a time');
  t.match(again.json().message, /pending \(toDisable\)/);
  t.equal((await kit.api('POST', userUrl(svc, `/${user.userId}/enable`))).statusCode, 400);

  // Unvalidated, the operation expires and the task is canceled: the user is enabled as before.
  ctx.clock.advance(15 * 60_000 + 1000);
  await kit.settle();
  t.equal((await kit.task(svc, disable.json().taskId)).state, 'canceled');
  t.equal((await kit.userRow(user.userId)).activation_state, 'enabled');

  const disabled = await kit.api('POST', userUrl(svc, `/${user.userId}/disable`));
  await kit.approve(svc, validator, disabled.json().taskId);
  t.equal((await kit.userRow(user.userId)).activation_state, 'disabled');
  t.match((await kit.api('POST', userUrl(svc, `/${user.userId}/disable`))).json().message, /already disabled/);
  const enabling = await kit.api('POST', userUrl(svc, `/${user.userId}/enable`));
  t.equal((await kit.userRow(user.userId)).activation_state, 'toEnable');
  ctx.clock.advance(15 * 60_000 + 1000);
  await kit.settle();
  t.equal((await kit.task(svc, enabling.json().taskId)).state, 'canceled');
  t.equal((await kit.userRow(user.userId)).activation_state, 'disabled', 'a canceled enable leaves him disabled');
});

t.test('a NUL character anywhere in a request answers 400 with an OVH body, never a 500', async (t) => {
  const svc = await ctx.newService();
  const attempts = [
    { method: 'POST' as const, url: `/secure/${svc}/session`, payload: { login: 'a\u0000b', password: 'x' } },
    { method: 'POST' as const, url: `/secure/${svc}/passwordLost`, payload: { login: 'a\u0000b' } },
    { method: 'GET' as const, url: `/1.0/dedicatedCloud/${svc}%00` },
    { method: 'GET' as const, url: `/1.0/dedicatedCloud/${svc}/user?name=a%00b` },
    { method: 'POST' as const, url: userUrl(svc), payload: { name: 'x\u0000y', password: freshPassword() } },
    {
      method: 'POST' as const,
      url: '/1.0/auth/oauth2/token',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      payload: 'grant_type=client_credentials&client_id=a%00b&client_secret=x',
    },
    { method: 'GET' as const, url: '/auth/?credentialToken=a%00b' },
  ];
  for (const attempt of attempts) {
    const res = await app.inject(attempt);
    t.equal(res.statusCode, 400, `${attempt.method} ${attempt.url}: ${res.body}`);
    // The OAuth2 token endpoint answers in RFC 6749's form, as it does for any body it cannot read.
    if (attempt.url.includes('oauth2')) t.match(res.json(), { error: 'invalid_request' });
    else t.match(res.json(), { class: 'Client::BadRequest', message: /NUL/ });
    t.ok(res.headers['x-ovh-queryid'], 'with its query id');
  }
});

t.test('a URL the router cannot decode answers in OVH form, with its query id', async (t) => {
  const res = await app.inject({ method: 'GET', url: '/1.0/dedicatedCloud/%ff' });
  t.equal(res.statusCode, 400);
  t.match(res.json(), { class: 'Client::BadRequest', message: String });
  t.ok(res.headers['x-ovh-queryid']);
  t.equal(res.headers['x-content-type-options'], 'nosniff');
});

t.test('a client that sends its headers too slowly is cut off (slowloris)', async (t) => {
  // Timeouts made short through the configuration, visibly, so that the test waits well under a second.
  const slow = await buildTestApp(t, { env: { HEADERS_TIMEOUT_MS: '300', REQUEST_TIMEOUT_MS: '600' } });
  await slow.app.listen({ port: 0, host: '127.0.0.1' });
  const { port } = slow.app.server.address() as AddressInfo;
  t.equal(slow.app.server.headersTimeout, 300);
  t.equal(slow.app.server.requestTimeout, 600);

  const started = Date.now();
  const answer = await new Promise<string>((resolve, reject) => {
    const socket = net.connect(port, '127.0.0.1', () => socket.write('GET /health/live HTTP/1.1\r\nHost: x\r\n'));
    let text = '';
    socket.on('data', (d: Buffer) => (text += d.toString()));
    socket.on('close', () => resolve(text));
    socket.on('error', reject);
    // One more header line now and then, never the blank line that ends them.
    const drip = setInterval(() => socket.writable && socket.write('X-a: b\r\n'), 100);
    socket.on('close', () => clearInterval(drip));
    setTimeout(() => reject(new Error('the slow client was never cut off')), 5000).unref();
  });
  t.match(answer, /^HTTP\/1\.1 408/, 'the server answered 408 Request Timeout and closed');
  t.ok(Date.now() - started < 3000, `cut off after ${Date.now() - started} ms`);
  const live = await new Promise<number>((resolve, reject) =>
    http
      .get({ host: '127.0.0.1', port, path: '/health/live', agent: false }, (r) => {
        r.resume();
        resolve(r.statusCode ?? 0);
      })
      .on('error', reject),
  );
  t.equal(live, 200, 'and it still serves others');
});

// Found by an attack on a running server: an account's API calls that create a user or change a password run argon2id
// up to six times each (the password history, then the new hash), and only the 1,200 requests a minute per address
// stood in front. One account, from two addresses, took both cores: another account's logins went from 18 ms to 1.9 s
// (p50) and 4 s (p90), and its own calls queued for 26 s.
t.test("an account's password changes and user creations spend a budget of 30 a minute; operators are not counted", async (t) => {
  let principal = { accountId: null as number | null, login: null as string | null, credentialId: null };
  const own = await buildTestApp(t, { deps: { authenticate: async () => principal } });
  const svc = await own.newService(undefined, 'budget-owner');
  const other = await own.newService(undefined, 'budget-other');
  const accountOf = async (login: string) =>
    Number(
      (await own.handle.db.selectFrom('account').select('account_id').where('login', '=', login).executeTakeFirstOrThrow())
        .account_id,
    );
  const call = (service: string, body: Record<string, unknown>) =>
    own.app.inject({ method: 'POST', url: `/1.0/dedicatedCloud/${service}/user`, payload: body });
  // As an operator (no account): not counted.
  for (let i = 0; i < 35; i++) t.equal((await call(svc, { name: freshName('op') })).statusCode, 200);
  principal = { accountId: await accountOf('budget-owner'), login: 'budget-owner', credentialId: null };
  const statuses: number[] = [];
  for (let i = 0; i < 31; i++)
    statuses.push((await call(svc, { name: freshName('flood'), password: freshPassword() })).statusCode);
  t.strictSame(statuses.slice(0, 30), Array<number>(30).fill(200), 'thirty in a minute');
  t.equal(statuses[30], 429, 'the 31st is refused before any argon2id runs');
  const users = Number(
    (
      await own.handle.db
        .selectFrom('pcc_user')
        .select((eb) => eb.fn.countAll().as('n'))
        .where('service_name', '=', svc)
        .where('name', 'like', 'flood%')
        .executeTakeFirstOrThrow()
    ).n,
  );
  t.equal(users, 30, 'and creates nothing');
  own.clock.advance(2000);
  t.equal((await call(svc, { name: freshName('flood') })).statusCode, 200, 'one more 2 s later');
  principal = { accountId: await accountOf('budget-other'), login: 'budget-other', credentialId: null };
  t.equal((await call(other, { name: freshName('else') })).statusCode, 200, "another account's budget is its own");
});
