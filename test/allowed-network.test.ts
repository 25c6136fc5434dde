import t, { type Test } from 'tap';
import { auditEvents, buildTestApp, type TestContext } from './helpers/app.js';
import { getTask } from './helpers/api.js';

const url = (sn: string) => `/1.0/dedicatedCloud/${sn}/allowedNetwork`;

async function post(ctx: TestContext, sn: string, body: Record<string, unknown>) {
  return ctx.app.inject({ method: 'POST', url: url(sn), payload: body });
}

t.test('allowedNetwork', async (t) => {
  const ctx = await buildTestApp(t);

  /** A service whose access policy is filtered to 192.0.2.0/24, with one user made through the API. */
  async function filteredService(t: Test, user: Record<string, string>) {
    const sn = await ctx.newService();
    const created = await ctx.app.inject({ method: 'POST', url: `/1.0/dedicatedCloud/${sn}/user`, payload: user });
    t.equal(created.statusCode, 200, created.body);
    await ctx.worker.drain();
    await ctx.app.inject({
      method: 'POST',
      url: `/1.0/dedicatedCloud/${sn}/changeProperties`,
      payload: { userAccessPolicy: 'filtered' },
    });
    await post(ctx, sn, { network: '192.0.2.0/24' });
    return sn;
  }

  t.test('a network is added, listed, read, updated through a task, then removed', async (t) => {
    const sn = await ctx.newService();
    const add = await post(ctx, sn, { network: '203.0.113.0/24', description: 'office' });
    t.equal(add.statusCode, 200, add.body);
    t.match(add.json(), { name: 'addAllowedNetwork', state: 'todo', networkAccessId: Number });
    const [id] = (await ctx.app.inject({ method: 'GET', url: url(sn) })).json<number[]>();
    t.ok(id);
    t.same((await ctx.app.inject({ method: 'GET', url: `${url(sn)}/${id}` })).json(), {
      description: 'office',
      network: '203.0.113.0/24',
      networkAccessId: id,
      state: 'allowed',
    });

    const put = await ctx.app.inject({
      method: 'PUT',
      url: `${url(sn)}/${id}`,
      payload: { description: 'head office', network: '203.0.113.0/25' },
    });
    t.equal(put.statusCode, 200, put.body);
    t.match((await ctx.app.inject({ method: 'GET', url: `${url(sn)}/${id}` })).json(), {
      state: 'toUpdate',
      network: '203.0.113.0/25',
    });
    await ctx.worker.drain();
    t.match((await ctx.app.inject({ method: 'GET', url: `${url(sn)}/${id}` })).json(), {
      state: 'allowed',
      description: 'head office',
    });
    t.equal((await getTask(ctx.app, sn, put.json<{ taskId: number }>().taskId)).state, 'done');

    const del = await ctx.app.inject({ method: 'DELETE', url: `${url(sn)}/${id}` });
    t.equal(del.statusCode, 200);
    t.match((await ctx.app.inject({ method: 'GET', url: `${url(sn)}/${id}` })).json(), { state: 'toDelete' });
    await ctx.worker.drain();
    t.equal((await ctx.app.inject({ method: 'GET', url: `${url(sn)}/${id}` })).statusCode, 404);
    t.same((await ctx.app.inject({ method: 'GET', url: url(sn) })).json(), []);
  });

  t.test('a malformed network, host bits set, or a duplicate answer 400 naming network', async (t) => {
    const sn = await ctx.newService();
    for (const network of ['nope', '203.0.113.7/24', '300.1.1.1']) {
      const res = await post(ctx, sn, { network });
      t.equal(res.statusCode, 400, network);
      t.match(res.json(), { class: 'Client::BadRequest', message: /^\[network\]/ });
    }
    t.equal((await post(ctx, sn, { network: '198.51.100.0/24' })).statusCode, 200);
    t.match((await post(ctx, sn, { network: '198.51.100.0/24' })).json(), { message: /already allowed/ });
  });

  t.test('the service properties change at once and the change is recorded as a task', async (t) => {
    const sn = await ctx.newService();
    const res = await ctx.app.inject({
      method: 'POST',
      url: `/1.0/dedicatedCloud/${sn}/changeProperties`,
      payload: { userAccessPolicy: 'filtered', userSessionTimeout: 900, userLimitConcurrentSession: 3, userLogoutPolicy: 'last' },
    });
    t.equal(res.statusCode, 200, res.body);
    t.match(res.json(), { name: 'changePropertiesDedicatedCloud' });
    t.match((await ctx.app.inject({ method: 'GET', url: `/1.0/dedicatedCloud/${sn}` })).json(), {
      userAccessPolicy: 'filtered',
      userSessionTimeout: 900,
      userLimitConcurrentSession: 3,
      userLogoutPolicy: 'last',
    });
    const bad = await ctx.app.inject({
      method: 'POST',
      url: `/1.0/dedicatedCloud/${sn}/changeProperties`,
      payload: { userAccessPolicy: 'closed' },
    });
    t.equal(bad.statusCode, 400);
    t.match(bad.json().message, /userAccessPolicy/);
  });

  t.test('with a filtered access policy, a login from outside the allowed networks is refused before the password', async (t) => {
    const sn = await filteredService(t, { name: 'bob', password: 'Bob-Passw0rd-123' });
    const login = (ip: string) =>
      ctx.app.inject({
        method: 'POST',
        url: `/secure/${sn}/session`,
        remoteAddress: ip,
        payload: { login: 'bob', password: 'Bob-Passw0rd-123' },
      });
    const outside = await login('198.51.100.9');
    t.equal(outside.statusCode, 403);
    t.match(outside.json(), { class: 'Client::Forbidden', message: /not allowed/ });
    // Read and admitted in one statement (secure/repository.ts `loginContext`): the admission did not run.
    const counted = await ctx.handle.db
      .selectFrom('auth_failure')
      .select('key')
      .where((eb) => eb.or([eb('key', 'like', `%${sn}%`), eb('key', 'like', '%198.51.100.9%')]))
      .execute();
    t.same(counted, [], 'from outside, nothing is counted on the lockout');
    const inside = await login('192.0.2.10');
    t.equal(inside.statusCode, 200, inside.body);
    t.equal(inside.json().scope, 'full');
  });
  t.test('with a filtered access policy, password lost and a live session are refused from outside too', async (t) => {
    const sn = await filteredService(t, { name: 'carol', password: 'Carol-Passw0rd-123', email: 'carol@example.com' });
    const session = await ctx.app.inject({
      method: 'POST',
      url: `/secure/${sn}/session`,
      remoteAddress: '::ffff:192.0.2.10',
      payload: { login: 'carol', password: 'Carol-Passw0rd-123' },
    });
    t.equal(session.statusCode, 200, 'an IPv4-mapped client inside the IPv4 network logs in');
    const token = session.json().sessionToken as string;
    const call = (ip: string) =>
      ctx.app.inject({
        method: 'GET',
        url: `/secure/${sn}/operation/1`,
        remoteAddress: ip,
        headers: { authorization: `Bearer ${token}` },
      });
    t.equal((await call('192.0.2.10')).statusCode, 403, 'inside: the session works (a plain user is refused operations)');
    t.match((await call('192.0.2.10')).json().message, /token validator/);
    const outside = await call('198.51.100.9');
    t.equal(outside.statusCode, 403);
    t.match(outside.json().message, /not allowed/, 'outside: the session does not carry past the policy');

    const lost = await ctx.app.inject({
      method: 'POST',
      url: `/secure/${sn}/passwordLost`,
      remoteAddress: '198.51.100.9',
      payload: { login: 'carol' },
    });
    t.equal(lost.statusCode, 403, 'password lost from outside is refused');
    const resets = await ctx.handle.db.selectFrom('password_reset').select('user_id').where('service_name', '=', sn).execute();
    t.equal(resets.length, 0, 'and no reset code is made');
    const refused = await auditEvents(ctx, sn, 'access.refused');
    t.strictSame(
      refused.map((r) => r.data.what),
      ['session', 'passwordLost'],
      'both refusals are audited',
    );
  });
});
