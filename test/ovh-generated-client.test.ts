import t from 'tap';
import { buildTestApp } from './helpers/app.js';
import { readFixture, type OvhOperation, type OvhSchema } from './helpers/ovh-schema.js';
import { freshName, freshPassword, secureKit } from './helpers/secure.js';

/**
 * A client generated from OVH's schema, as third-party tools are: for every operation of the fixture it sends every
 * parameter OVH declares, optional ones included, with a value of OVH's type, and the call must succeed. Identifiers
 * come from what earlier calls created; a few calls need the state OVH requires first (a task in error to relaunch).
 */
const ctx = await buildTestApp(t);
const kit = await secureKit(t, ctx);
const schema = readFixture<OvhSchema>('dedicatedCloud.json');
const FUTURE = '2027-03-01T12:00:00+00:00';
const PHONE = '+33612345678';

/** Values by parameter name where OVH's type alone does not make a valid one. */
const byName = (): Record<string, unknown> => ({
  name: freshName('gen'),
  password: freshPassword(),
  email: 'generated@example.com',
  phoneNumber: PHONE,
  firstName: 'Ada',
  lastName: 'Lovelace',
  description: 'generated client',
  network: '198.51.100.0/24',
  ip: '203.0.113.0/24',
  vmwareObjectId: 'vm-42',
  reason: 'generated client',
  option: 'advancedSecurity',
  iamTags: '{}',
  // A token validator would arm the validation gate, and the calls after would wait for one: not this test's subject.
  tokenValidator: false,
});

function sample(type: string, name: string | undefined, samples: Record<string, unknown>): unknown {
  if (name !== undefined && name in samples) return samples[name];
  if (type.endsWith('[]')) return [sample(type.slice(0, -2), undefined, samples)];
  if (type === 'long') return 1;
  if (type === 'boolean') return true;
  if (type === 'datetime') return FUTURE;
  if (type === 'date') return '2026-11-28';
  if (['string', 'password', 'text'].includes(type)) return 'generated';
  const model = schema.models[type];
  if (model?.enum) return model.enum[0];
  if (model?.properties)
    return Object.fromEntries(Object.entries(model.properties).map(([k, p]) => [k, sample(p.type, k, samples)]));
  throw new Error(`no sample for ${type}`);
}

t.test('every operation of OVH schema answers 200 to a generated client sending every parameter', async (t) => {
  const svc = await ctx.newService();
  // advancedSecurity off, so that resumePendingEnabling has an option to enable.
  await ctx.handle.db.updateTable('service').set({ advanced_security: false }).where('service_name', '=', svc).execute();
  const ids: Record<string, number | string> = { serviceName: svc };
  const task = (taskId: number) => ctx.handle.db.updateTable('task').where('task_id', '=', taskId);

  const call = async (path: string, op: OvhOperation, overrides: Record<string, unknown> = {}) => {
    const samples = { ...byName(), ...overrides };
    const url = path.replace(/\{(\w+)\}/g, (_, p: string) => String(ids[p]));
    const query = new URLSearchParams();
    let body: Record<string, unknown> | undefined;
    for (const p of op.parameters) {
      const value = sample(p.dataType, p.name, samples);
      if (p.paramType === 'query') {
        for (const v of Array.isArray(value) ? value : [value])
          query.append(p.name!, typeof v === 'string' ? v : JSON.stringify(v));
      } else if (p.paramType === 'body') body = p.name ? { ...body, [p.name]: value } : (value as Record<string, unknown>);
    }
    const res = await ctx.app.inject({
      method: op.httpMethod as 'GET',
      url: `/1.0${url}${query.size ? `?${query}` : ''}`,
      ...(body ? { payload: body } : {}),
    });
    t.equal(res.statusCode, 200, `${op.httpMethod} ${path}: ${res.body.slice(0, 300)}`);
    await kit.settle();
    return res.json<Record<string, unknown>>();
  };
  const operations = schema.apis.flatMap((a) => a.operations.map((op) => ({ path: a.path, op })));
  const find = (method: string, path: string) => {
    const found = operations.find((o) => o.op.httpMethod === method && o.path === path);
    if (!found) throw new Error(`${method} ${path} is not in the fixture`);
    return found;
  };
  const done = new Set<string>();
  const run = async (method: string, path: string, overrides?: Record<string, unknown>) => {
    done.add(`${method} ${path}`);
    const { op } = find(method, path);
    return call(path, op, overrides);
  };
  const D = '/dedicatedCloud/{serviceName}';

  // What the other calls work on, created by the generated calls themselves.
  ids.userId = (await run('POST', `${D}/user`)).userId as number;
  ids.networkAccessId = (await run('POST', `${D}/allowedNetwork`)).networkAccessId as number;
  await run('POST', `${D}/twoFAWhitelist`);
  ids.id = (await kit.api('GET', `/1.0/dedicatedCloud/${svc}/twoFAWhitelist`)).json<number[]>()[0]!;
  await run('POST', `${D}/user/{userId}/objectRight`);
  ids.objectRightId = (await kit.api('GET', `/1.0/dedicatedCloud/${svc}/user/${ids.userId}/objectRight`)).json<number[]>()[0]!;
  ids.rightId = (await kit.api('GET', `/1.0/dedicatedCloud/${svc}/user/${ids.userId}/right`)).json<number[]>()[0]!;
  const userTask = (await run('POST', `${D}/user/{userId}/changePassword`)).taskId as number;
  const networkTask = (await run('PUT', `${D}/allowedNetwork/{networkAccessId}`, { network: '192.0.2.0/24' })).taskId as number;
  const serviceTask = (await run('POST', `${D}/changeProperties`, { userAccessPolicy: 'open' })).taskId as number;

  // The task routes act on a task in the state OVH requires: `error` to relaunch, not started to reschedule.
  const scopes: Array<[string, number]> = [
    [D, serviceTask],
    [`${D}/user/{userId}`, userTask],
    [`${D}/allowedNetwork/{networkAccessId}`, networkTask],
  ];
  for (const [base, taskId] of scopes) {
    ids.taskId = taskId;
    await task(taskId).set({ state: 'error' }).execute();
    await run('POST', `${base}/task/{taskId}/resetTaskState`);
    await task(taskId).set({ state: 'todo' }).execute();
    await run('POST', `${base}/task/{taskId}/changeMaintenanceExecutionDate`);
    await task(taskId).set({ execution_date: ctx.clock.now() }).execute();
  }
  // The token the new number received.
  await run('POST', `${D}/user/{userId}/confirmPhoneNumber`, { token: kit.inbox.latestToken('+33.612345678') });

  // Everything else; the removals last, the deepest first (an object right before its user).
  const rest = operations.filter(({ op, path }) => !done.has(`${op.httpMethod} ${path}`));
  const removals = rest.filter((o) => o.op.httpMethod === 'DELETE').sort((a, b) => b.path.length - a.path.length);
  for (const { op, path } of [...rest.filter((o) => o.op.httpMethod !== 'DELETE'), ...removals]) {
    done.add(`${op.httpMethod} ${path}`);
    ids.taskId = path.includes('/user/') ? userTask : path.includes('/allowedNetwork/') ? networkTask : serviceTask;
    await call(path, op);
  }
  t.equal(done.size, operations.length, `all ${operations.length} operations called`);
  t.equal((await kit.api('GET', `/1.0/dedicatedCloud/${svc}`)).json().advancedSecurity, true, 'resumePendingEnabling applied');
});
