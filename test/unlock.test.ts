import t from 'tap';
import { auditEvents, buildTestApp } from './helpers/app.js';
import { freshIp, secureKit } from './helpers/secure.js';

/** `POST …/user/{userId}/unlock`: the service's account lifts a user's lockout through the API, audited. */
const ctx = await buildTestApp(t);
const kit = await secureKit(t, ctx);
const unlock = (svc: string, userId: number) => kit.api('POST', `/1.0/dedicatedCloud/${svc}/user/${userId}/unlock`);

t.test('an unlock lets a locked-out user log in at once, from the address that locked him too', async (t) => {
  const svc = await ctx.newService();
  const person = await kit.plainUser(svc, { phone: false });
  const ip = freshIp();
  for (let i = 0; i < 5; i++) {
    t.equal((await kit.login(svc, { login: person.name, password: 'Wrong-password-1!' }, ip)).statusCode, 401);
  }
  t.equal((await kit.login(svc, { login: person.name, password: person.password }, ip)).statusCode, 429, 'locked');

  const res = await unlock(svc, person.userId);
  t.equal(res.statusCode, 200);
  t.strictSame(res.json(), { userId: person.userId, unlocked: true });
  t.equal((await kit.login(svc, { login: person.name, password: person.password }, ip)).statusCode, 200, 'in again');

  const events = await auditEvents(ctx, svc, 'lockout.cleared');
  t.equal(events.length, 1, 'the unlock is audited');
  t.match(events[0], { user_id: person.userId, data: { unlocked: true } });

  t.strictSame((await unlock(svc, person.userId)).json(), { userId: person.userId, unlocked: false }, 'nothing left');
});

t.test('an unlock of a user of another service, or of no user, answers 404 and writes nothing', async (t) => {
  const svc = await ctx.newService();
  const other = await ctx.newService();
  const person = await kit.plainUser(other, { phone: false });
  for (const [what, userId] of [
    ['another service’s user', person.userId],
    ['no user', 987_654],
  ] as const) {
    const res = await unlock(svc, userId);
    t.equal(res.statusCode, 404, what);
    t.equal(res.json().class, 'Client::NotFound', what);
  }
  t.equal((await auditEvents(ctx, svc, 'lockout.cleared')).length, 0);
});
