import t from 'tap';
import { auditEvents, buildTestApp } from './helpers/app.js';
import { T0, assertOvhError, ovhDate } from './helpers/api.js';
import { callSigned, newCredential } from './helpers/ovh-sign.js';
import { freshName, freshPassword, secureKit } from './helpers/secure.js';

// The routes OVH's schema has and issue 12 added: task filters, globalTasks, allowedNetwork tasks, securityOptions,
// capabilities, the service model's fields, /auth/details.
const ctx = await buildTestApp(t);
const kit = await secureKit(t, ctx);
const { app } = ctx;
const dc = (svc: string, rest = '') => `/1.0/dedicatedCloud/${svc}${rest}`;
const HOUR = 3600_000;

t.test('GET task filters on executionDate (>=) besides name and state', async (t) => {
  const svc = await ctx.newService();
  const first = await kit.api('POST', dc(svc, '/changeProperties'), { description: 'one' });
  ctx.clock.advance(HOUR);
  const second = await kit.api('POST', dc(svc, '/changeProperties'), { description: 'two' });
  const later = ovhDate(ctx.clock.now());
  t.strictSame((await kit.api('GET', dc(svc, `/task?executionDate=${encodeURIComponent(T0)}`))).json(), [
    first.json().taskId,
    second.json().taskId,
  ]);
  t.strictSame((await kit.api('GET', dc(svc, `/task?executionDate=${encodeURIComponent(later)}`))).json(), [
    second.json().taskId,
  ]);
  assertOvhError(t, await kit.api('GET', dc(svc, '/task?executionDate=yesterday')), 400, /executionDate/);
});

t.test('globalTasks filters by user, state (one or several), dates and name', async (t) => {
  const svc = await ctx.newService();
  const start = ovhDate(ctx.clock.now());
  const { userId, task: userTask } = await kit.createUser(svc, { name: freshName(), password: freshPassword() });
  ctx.clock.advance(HOUR);
  const props = (await kit.api('POST', dc(svc, '/changeProperties'), { description: 'x' })).json();
  const all = (await kit.api('GET', dc(svc, '/globalTasks'))).json<number[]>();
  t.strictSame(all, [userTask.taskId, props.taskId]);
  t.strictSame((await kit.api('GET', dc(svc, `/globalTasks?userId=${userId}`))).json(), [userTask.taskId]);
  t.strictSame((await kit.api('GET', dc(svc, '/globalTasks?state=todo'))).json(), [props.taskId]);
  t.strictSame((await kit.api('GET', dc(svc, '/globalTasks?state=todo&state=done'))).json(), all);
  t.strictSame((await kit.api('GET', dc(svc, '/globalTasks?name=addUser'))).json(), [userTask.taskId]);
  const at = encodeURIComponent(ovhDate(ctx.clock.now()));
  t.strictSame((await kit.api('GET', dc(svc, `/globalTasks?executionDate.from=${at}`))).json(), [props.taskId]);
  t.strictSame((await kit.api('GET', dc(svc, `/globalTasks?executionDate.to=${encodeURIComponent(start)}`))).json(), [
    userTask.taskId,
  ]);
  const day = start.slice(0, 10);
  t.strictSame((await kit.api('GET', dc(svc, `/globalTasks?endDate.to=${day}`))).json(), [userTask.taskId], 'ended that day');
  t.strictSame((await kit.api('GET', dc(svc, '/globalTasks?endDate.from=2099-01-01'))).json(), []);
  t.strictSame((await kit.api('GET', dc(svc, '/globalTasks?datacenterId=1&hostId=2'))).json(), []);
  assertOvhError(t, await kit.api('GET', dc(svc, '/globalTasks?state=sleeping')), 400, /state/);
  assertOvhError(t, await kit.api('GET', dc(svc, '/globalTasks?colour=red')), 400, /colour/);
});

t.test('an allowed network lists, reads, relaunches and reschedules its own tasks only', async (t) => {
  const svc = await ctx.newService();
  const add = async (network: string) => {
    const res = await kit.api('POST', dc(svc, '/allowedNetwork'), { network });
    t.equal(res.statusCode, 200, res.body);
    return res.json<{ taskId: number; networkAccessId: number }>();
  };
  const a = await add('198.51.100.0/24');
  const b = await add('203.0.113.0/24');
  const base = (id: number) => dc(svc, `/allowedNetwork/${id}/task`);
  t.strictSame((await kit.api('GET', base(a.networkAccessId))).json(), [a.taskId]);
  t.strictSame((await kit.api('GET', `${base(a.networkAccessId)}?state=done`)).json(), []);
  t.match((await kit.api('GET', `${base(a.networkAccessId)}/${a.taskId}`)).json(), {
    taskId: a.taskId,
    networkAccessId: a.networkAccessId,
  });
  assertOvhError(t, await kit.api('GET', `${base(b.networkAccessId)}/${a.taskId}`), 404, /taskId/);
  const later = ovhDate(new Date(ctx.clock.now().getTime() + HOUR));
  const moved = await kit.api('POST', `${base(a.networkAccessId)}/${a.taskId}/changeMaintenanceExecutionDate`, {
    executionDate: later,
  });
  t.equal(moved.json().executionDate, later);
  await kit.settle();
  t.equal((await kit.api('GET', `${base(a.networkAccessId)}/${a.taskId}`)).json().state, 'todo', 'rescheduled: not run yet');
  await ctx.handle.db.updateTable('task').set({ state: 'error' }).where('task_id', '=', b.taskId).execute();
  const reset = await kit.api('POST', `${base(b.networkAccessId)}/${b.taskId}/resetTaskState`, { reason: 'again' });
  t.match(reset.json(), { state: 'todo', description: 'Relaunched: again' });
  assertOvhError(t, await kit.api('GET', base(999_999)), 404, /networkAccessId/);
});

t.test('securityOptions: a service without advancedSecurity has it pending, enabled through a task', async (t) => {
  const svc = await ctx.newService();
  await ctx.handle.db.updateTable('service').set({ advanced_security: false }).where('service_name', '=', svc).execute();
  t.strictSame((await kit.api('GET', dc(svc, '/securityOptions'))).json(), { state: 'pending' });
  t.strictSame((await kit.api('GET', dc(svc, '/securityOptions/pendingOptions'))).json(), ['advancedSecurity']);
  const matrix = (await kit.api('GET', dc(svc, '/securityOptions/compatibilityMatrix'))).json<Array<{ name: string }>>();
  t.strictSame(
    matrix.map((e) => e.name),
    ['accessNetworkFiltered', 'advancedSecurity', 'sessionTimeout', 'sslV3', 'tokenValidation', 'twoFa', 'twoFaFail2ban'],
    'the options that mean something here',
  );
  t.match(
    matrix.find((e) => e.name === 'advancedSecurity'),
    { enabled: false, compatible: true, state: 'pending', reason: null },
  );
  t.match(
    matrix.find((e) => e.name === 'twoFaFail2ban'),
    { enabled: true, state: 'delivered' },
  );

  const resumed = await kit.api('POST', dc(svc, '/securityOptions/resumePendingEnabling'), { option: 'advancedSecurity' });
  t.equal(resumed.statusCode, 200, resumed.body);
  t.match(resumed.json(), { name: 'enableSecurityOption', state: 'todo' });
  t.strictSame((await kit.api('GET', dc(svc, '/securityOptions'))).json(), { state: 'creating' });
  const again = await kit.api('POST', dc(svc, '/securityOptions/resumePendingEnabling'), { option: 'advancedSecurity' });
  t.equal(again.json().taskId, resumed.json().taskId, 'a second call answers the same task');
  t.equal((await kit.api('GET', dc(svc))).json().advancedSecurity, false, 'nothing changes before the task runs');
  await kit.settle();
  t.equal((await kit.api('GET', dc(svc))).json().advancedSecurity, true);
  t.strictSame((await kit.api('GET', dc(svc, '/securityOptions'))).json(), { state: 'delivered' });
  t.strictSame((await kit.api('GET', dc(svc, '/securityOptions/pendingOptions'))).json(), []);
  t.equal((await auditEvents(ctx, svc, 'securityOption.enabled')).length, 1);
  assertOvhError(
    t,
    await kit.api('POST', dc(svc, '/securityOptions/resumePendingEnabling'), { option: 'advancedSecurity' }),
    400,
    /^ALREADY_ENABLED/,
  );
  assertOvhError(
    t,
    await kit.api('POST', dc(svc, '/securityOptions/resumePendingEnabling'), { option: 'pcidss' }),
    400,
    /^NOT_MANAGEABLE_DIRECTLY/,
  );
});

t.test('the compatibility matrix follows the service and hides what this service does not run unless asked', async (t) => {
  const svc = await ctx.newService();
  await kit.api('POST', dc(svc, '/changeProperties'), { userAccessPolicy: 'filtered', userSessionTimeout: 0, sslV3: true });
  const entries = (await kit.api('GET', dc(svc, '/securityOptions/compatibilityMatrix'))).json<Array<Record<string, unknown>>>();
  const of = (name: string) => entries.find((e) => e.name === name);
  t.match(of('accessNetworkFiltered'), { enabled: true });
  t.match(of('sessionTimeout'), { enabled: false, state: 'disabled' });
  t.match(of('sslV3'), { enabled: true });
  t.match(of('advancedSecurity'), { enabled: true, state: 'delivered' });
  const all = (await kit.api('GET', dc(svc, '/securityOptions/compatibilityMatrix?showInternal=true'))).json<unknown[]>();
  t.equal(all.length, 25, 'every SecurityOptionEnum value');
  t.match(
    (all as Array<Record<string, unknown>>).find((e) => e.name === 'pcidss'),
    { compatible: false, enabled: false, reason: { code: 'NOT_MANAGEABLE_DIRECTLY' } },
  );
  const compatibleOnly = (
    await kit.api('GET', dc(svc, '/securityOptions/compatibilityMatrix?showInternal=true&showIncompatible=false'))
  ).json<unknown[]>();
  t.equal(compatibleOnly.length, 7);
  t.strictSame((await kit.api('GET', dc(svc, '/securityOptions/dependenciesTree?option=twoFaFail2ban'))).json(), {
    conflicts: [],
    depends: [],
    requires: ['twoFa'],
  });
  assertOvhError(t, await kit.api('GET', dc(svc, '/securityOptions/dependenciesTree')), 400, /option/);
});

t.test('the service model carries every OVH field; sslV3 is changed by changeProperties', async (t) => {
  const svc = await ctx.newService();
  const before = (await kit.api('GET', dc(svc))).json();
  t.match(before, {
    serviceName: svc,
    state: 'delivered',
    advancedSecurity: true,
    sslV3: false,
    bandwidth: 'none',
    billingType: 'monthly',
    canMigrateToVCD: false,
    generation: '2.0',
    managementInterface: 'vsphere',
    productReference: 'EPCC',
    servicePackName: null,
    spla: false,
    iam: null,
    version: { major: '0', minor: '1', build: '0' },
  });
  const change = await kit.api('POST', dc(svc, '/changeProperties'), { sslV3: true });
  t.equal(change.statusCode, 200, change.body);
  t.equal((await kit.api('GET', dc(svc))).json().sslV3, true);
  t.match((await auditEvents(ctx, svc, 'service.changeProperties'))[0]?.data, { sslV3: true });
  assertOvhError(t, await kit.api('POST', dc(svc, '/changeProperties'), { sslV3: 'yes' }), 400, /sslV3/);
});

t.test('certifiedInterfaceUrl and webInterfaceUrl answer', async (t) => {
  const svc = await ctx.newService();
  const { certifiedInterfaceUrl, webInterfaceUrl, vScopeUrl } = (await kit.api('GET', dc(svc))).json();
  // Each leads to a page: at once, or after the redirections a visitor without a session gets (to the login page).
  for (const url of [certifiedInterfaceUrl, webInterfaceUrl, vScopeUrl]) {
    let path = new URL(url).pathname;
    let res = await app.inject({ method: 'GET', url: path });
    for (let hops = 0; hops < 3 && res.statusCode >= 300 && res.statusCode < 400; hops++) {
      path = new URL(String(res.headers.location), url).pathname;
      res = await app.inject({ method: 'GET', url: path });
    }
    t.equal(res.statusCode, 200, `${url} → ${path}`);
    t.match(res.headers['content-type'], /text\/html/, `${url}: a page`);
  }
  t.equal(new URL(webInterfaceUrl).pathname, `/secure/${svc}/login`, 'the web interface is the login page');
});

t.test('capabilities are what this service does', async (t) => {
  const svc = await ctx.newService();
  t.strictSame((await kit.api('GET', dc(svc, '/capabilities'))).json(), {
    addRessourceRightStatus: 'active',
    backupStatus: 'no',
    canAddUser: true,
    fullAdminRoUserStatus: 'active',
    nexus1000vStatus: 'no',
    upgradable: false,
    userAccessPolicyStatus: 'active',
  });
});

t.test('GET /dedicatedCloud takes iamTags: services carry no tag, so only absence filters match', async (t) => {
  const svc = await ctx.newService();
  const q = (filter: unknown) => kit.api('GET', `/1.0/dedicatedCloud?iamTags=${encodeURIComponent(JSON.stringify(filter))}`);
  t.ok((await q({ env: [{ operator: 'NEXISTS' }] })).json().includes(svc));
  t.strictSame((await q({ env: [{ operator: 'EQ', value: 'prod' }] })).json(), []);
  assertOvhError(t, await q({ env: [{ operator: 'ALMOST', value: 'x' }] }), 400, /^\[iamTags\]/);
  assertOvhError(t, await kit.api('GET', '/1.0/dedicatedCloud?iamTags=notjson'), 400, /^\[iamTags\]/);
});

t.test('/auth/details describes a signed call and a bearer token', async (t) => {
  const auth = await buildTestApp(t, { auth: true });
  await auth.newService(undefined, 'carol');
  const keys = await newCredential(auth.app, 'carol', { rules: [{ method: 'GET', path: '/auth/*' }] });
  const signed = await callSigned(auth.app, keys, { method: 'GET', url: '/1.0/auth/details' });
  t.equal(signed.statusCode, 200, signed.body);
  t.match(signed.json(), {
    account: 'carol',
    method: 'account',
    allowedRoutes: [{ method: 'GET', path: '/auth/*' }],
    identities: ['urn:v1:eu:identity:account:carol'],
    roles: null,
    user: null,
  });
  const client = await auth.app.services.auth.createOauthClient('carol', 'tool');
  const token = await auth.app.inject({
    method: 'POST',
    url: '/1.0/auth/oauth2/token',
    payload: { grant_type: 'client_credentials', client_id: client.clientId, client_secret: client.clientSecret },
  });
  const bearer = await auth.app.inject({
    method: 'GET',
    url: '/1.0/auth/details',
    headers: { authorization: `Bearer ${token.json().access_token}` },
  });
  t.match(bearer.json(), { account: 'carol', method: 'oauth2_client_credentials', allowedRoutes: null });
  t.equal((await auth.app.inject({ method: 'GET', url: '/1.0/auth/details' })).statusCode, 403, 'no caller, no details');
});
