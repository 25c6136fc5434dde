import t from 'tap';
import type { TaskState } from '../src/db/types.js';
import { insertTask } from '../src/features/tasks/repository.js';
import { TaskWorker } from '../src/worker/worker.js';
import { buildTestApp, silentLog } from './helpers/app.js';
import { OVH_DATE, addEntryOk, assertOvhError, getEntry, getTask, ovhDate, taskUrl, whitelistUrl } from './helpers/api.js';

// One app and database for the file; every test works on its own service. The clock moves forward in some tests,
// so dates are computed from it.
const ctx = await buildTestApp(t);
const { app } = ctx;

const listTasks = async (serviceName: string, query = '') => {
  const res = await app.inject({ method: 'GET', url: `${taskUrl(serviceName)}${query}` });
  if (res.statusCode !== 200) throw new Error(`GET task list answered ${res.statusCode}: ${res.body}`);
  return res.json<number[]>();
};

/** A task row the API did not create, straight through the repository (a name no handler knows, a state…). */
async function insertRawTask(serviceName: string, fields: { name?: string; state?: TaskState } = {}) {
  const row = await ctx.handle.db.transaction().execute((trx) =>
    insertTask(trx, {
      serviceName,
      name: fields.name ?? 'unknownOperation',
      type: 'test',
      description: 'inserted by a test',
      state: fields.state ?? 'todo',
      createdBy: null,
      createdFrom: 'test',
      executionDate: ctx.clock.now(),
    }),
  );
  return row.task_id;
}

/** Runs every due task, so that the test starts from an empty queue and a claim picks the test's own task. */
const flushQueue = () => ctx.worker.drain();

/** A service with two add tasks (done) and one remove task (todo). */
async function serviceWithThreeTasks() {
  const svc = await ctx.newService();
  const a = await addEntryOk(app, svc, '203.0.113.0/24');
  const b = await addEntryOk(app, svc, '198.51.100.0/24');
  await ctx.worker.drain();
  const removal = await app.inject({ method: 'DELETE', url: `${whitelistUrl(svc)}/${a.id}` });
  return { svc, addA: a.taskId, addB: b.taskId, remove: removal.json<{ taskId: number }>().taskId };
}

const post = (url: string, payload?: Record<string, unknown>) => app.inject({ method: 'POST', url, payload: payload ?? {} });

t.test("the task list holds the service's task ids, oldest first", async (t) => {
  const { svc, addA, addB, remove } = await serviceWithThreeTasks();
  t.strictSame(await listTasks(svc), [addA, addB, remove]);
});

t.test("the task list does not show another service's tasks", async (t) => {
  const { svc } = await serviceWithThreeTasks();
  const other = await ctx.newService();
  const own = await addEntryOk(app, other, '192.0.2.0/24');
  t.strictSame(await listTasks(other), [own.taskId]);
  t.notOk((await listTasks(svc)).includes(own.taskId));
});

t.test('the name filter is a LIKE pattern', async (t) => {
  const { svc, addA, addB, remove } = await serviceWithThreeTasks();
  t.strictSame(await listTasks(svc, '?name=addTwoFAWhitelist'), [addA, addB], 'a plain name matches exactly');
  t.strictSame(await listTasks(svc, '?name=remove%25'), [remove], 'a prefix');
  t.strictSame(await listTasks(svc, '?name=%25TwoFAWhitelist'), [addA, addB, remove], 'a suffix');
  t.strictSame(await listTasks(svc, '?name=add'), [], 'no wildcard, no partial match');
});

t.test('the state filter matches the state exactly', async (t) => {
  const { svc, addA, addB, remove } = await serviceWithThreeTasks();
  t.strictSame(await listTasks(svc, '?state=done'), [addA, addB]);
  t.strictSame(await listTasks(svc, '?state=todo'), [remove]);
  t.strictSame(await listTasks(svc, '?state=error'), []);
});

t.test('the name and state filters combine', async (t) => {
  const { svc, remove } = await serviceWithThreeTasks();
  t.strictSame(await listTasks(svc, '?name=remove%25&state=todo'), [remove]);
  t.strictSame(await listTasks(svc, '?name=add%25&state=todo'), []);
});

t.test('an unknown state filter answers 400 naming state', async (t) => {
  const svc = await ctx.newService();
  const res = await app.inject({ method: 'GET', url: `${taskUrl(svc)}?state=finished` });
  assertOvhError(t, res, 400, /^\[state\] .*must be one of .*waitingTodo/);
});

t.test('an unknown query parameter answers 400 naming it', async (t) => {
  const svc = await ctx.newService();
  const res = await app.inject({ method: 'GET', url: `${taskUrl(svc)}?userId=3` });
  assertOvhError(t, res, 400, /not described parameters: \(userId\)/);
});

t.test('the task list of an unknown service answers 404', async (t) => {
  const res = await app.inject({ method: 'GET', url: taskUrl('pcc-nowhere') });
  t.equal(res.statusCode, 404);
  t.strictSame(res.json(), { class: 'Client::NotFound', message: 'This service does not exist' });
});

t.test('GET of an unknown task answers 404', async (t) => {
  const svc = await ctx.newService();
  const res = await app.inject({ method: 'GET', url: `${taskUrl(svc)}/99999` });
  assertOvhError(t, res, 404, 'The requested object (taskId = 99999) does not exist');
});

t.test('a task id that is not a positive integer answers 400 naming taskId', async (t) => {
  const svc = await ctx.newService();
  for (const id of ['abc', '2.5', '0']) {
    assertOvhError(t, await app.inject({ method: 'GET', url: `${taskUrl(svc)}/${id}` }), 400, /^\[taskId\] /);
  }
});

t.test('a task of another service answers 404 on every task endpoint and is left alone', async (t) => {
  const owner = await ctx.newService();
  const other = await ctx.newService();
  const taskId = await insertRawTask(owner, { state: 'error' });
  const url = `${taskUrl(other)}/${taskId}`;
  const message = `The requested object (taskId = ${taskId}) does not exist`;
  assertOvhError(t, await app.inject({ method: 'GET', url }), 404, message);
  assertOvhError(t, await post(`${url}/resetTaskState`, { reason: 'not mine' }), 404, message);
  const future = ovhDate(new Date(ctx.clock.now().getTime() + 3600_000));
  assertOvhError(t, await post(`${url}/changeMaintenanceExecutionDate`, { executionDate: future }), 404, message);
  t.equal((await getTask(app, owner, taskId)).state, 'error');
});

t.test('the worker sets lastModificationDate, endDate, progress and description when a task is done', async (t) => {
  const svc = await ctx.newService();
  const created = ovhDate(ctx.clock.now());
  const { taskId } = await addEntryOk(app, svc, '203.0.113.0/24');
  const before = await getTask(app, svc, taskId);
  t.strictSame(
    [before.state, before.progress, before.endDate, before.lastModificationDate],
    ['todo', 0, null, created],
    'a new task',
  );
  ctx.clock.advance(7_000);
  const finished = ovhDate(ctx.clock.now());
  await ctx.worker.drain();
  const after = await getTask(app, svc, taskId);
  t.equal(after.state, 'done');
  t.equal(after.progress, 100);
  t.equal(after.description, 'Done');
  t.equal(after.endDate, finished);
  t.equal(after.lastModificationDate, finished);
  t.equal(after.executionDate, created, 'the execution date is kept');
  for (const field of ['endDate', 'lastModificationDate', 'executionDate']) t.match(after[field], OVH_DATE, field);
});

t.test('a task no handler knows ends in error with a fixed description; the cause stays out of the API', async (t) => {
  const svc = await ctx.newService();
  const taskId = await insertRawTask(svc, { name: 'mysteryOperation' });
  await ctx.worker.drain();
  const task = await getTask(app, svc, taskId);
  t.equal(task.state, 'error');
  t.equal(task.description, 'Task failed');
  t.match(task.endDate, OVH_DATE);
  t.notMatch(JSON.stringify(task), /handler/);
  const row = await ctx.handle.db.selectFrom('task').select('last_error').where('task_id', '=', taskId).executeTakeFirstOrThrow();
  t.match(row.last_error, /no handler for task mysteryOperation/);
});

t.test('resetTaskState puts a task in error back to todo, as of now', async (t) => {
  const svc = await ctx.newService();
  const taskId = await insertRawTask(svc, { name: 'mysteryOperation' });
  await ctx.worker.drain();
  ctx.clock.advance(60_000);
  const now = ovhDate(ctx.clock.now());
  const res = await post(`${taskUrl(svc)}/${taskId}/resetTaskState`, { reason: 'operator fixed the cause' });
  t.equal(res.statusCode, 200);
  t.strictSame(res.json(), {
    createdBy: null,
    createdFrom: 'test',
    datacenterId: null,
    description: 'Relaunched: operator fixed the cause',
    endDate: null,
    executionDate: now,
    filerId: null,
    hostId: null,
    lastModificationDate: now,
    maintenanceDateFrom: null,
    maintenanceDateTo: null,
    name: 'mysteryOperation',
    network: null,
    networkAccessId: null,
    orderId: null,
    parentTaskId: null,
    progress: 0,
    state: 'todo',
    taskId,
    type: 'test',
    userId: null,
    vlanId: null,
  });
});

t.test('a whitelist task relaunched after an error reaches done and enables its entry', async (t) => {
  await flushQueue();
  const svc = await ctx.newService();
  const { id, taskId } = await addEntryOk(app, svc, '203.0.113.0/24');
  // A worker of an instance that did not know the task's name yet (a rolling upgrade): the task fails there.
  const outdated = new TaskWorker({
    handle: ctx.handle,
    handlers: new Map(),
    clock: ctx.clock,
    log: silentLog,
    leaseSeconds: 60,
    pollMs: 60_000,
    workerId: 'outdated',
  });
  const claimed = await outdated.claimOne();
  t.equal(claimed?.task_id, taskId);
  await outdated.run(claimed!);
  t.equal((await getTask(app, svc, taskId)).state, 'error');

  t.equal((await post(`${taskUrl(svc)}/${taskId}/resetTaskState`, { reason: 'upgraded' })).statusCode, 200);
  await ctx.worker.drain();
  t.equal((await getTask(app, svc, taskId)).state, 'done');
  t.equal((await getEntry(app, svc, id)).json().state, 'enabled');
});

t.test('a task given up after too many interrupted attempts can be relaunched and reaches done', async (t) => {
  await flushQueue();
  const svc = await ctx.newService();
  const { id, taskId } = await addEntryOk(app, svc, '198.51.100.0/24');
  // Each claim "dies" before running the task; the lease runs out and the next claim counts one more attempt.
  const dying = ctx.newWorker('dying', 5);
  let claimed;
  for (let attempt = 1; attempt <= 6; attempt++) {
    claimed = await dying.claimOne();
    t.equal(claimed?.task_id, taskId, `claim ${attempt}`);
    ctx.clock.advance(6_000);
  }
  await dying.run(claimed!);
  t.equal((await getTask(app, svc, taskId)).state, 'error', 'given up');
  t.equal((await getEntry(app, svc, id)).json().state, 'error', 'the entry is marked');

  t.equal((await post(`${taskUrl(svc)}/${taskId}/resetTaskState`, { reason: 'the crash is fixed' })).statusCode, 200);
  await ctx.worker.drain();
  t.equal((await getTask(app, svc, taskId)).state, 'done');
  t.equal((await getEntry(app, svc, id)).json().state, 'enabled');
});

for (const state of ['todo', 'done'] as const) {
  t.test(`resetTaskState of a task in ${state} answers 400 and changes nothing`, async (t) => {
    const svc = await ctx.newService();
    const taskId = await insertRawTask(svc, { state });
    const before = await getTask(app, svc, taskId);
    const res = await post(`${taskUrl(svc)}/${taskId}/resetTaskState`, { reason: 'why not' });
    assertOvhError(t, res, 400, new RegExp(`Task ${taskId} is in state ${state}: only a task in error`));
    t.strictSame(await getTask(app, svc, taskId), before);
  });
}

t.test('resetTaskState without a reason answers 400 naming reason', async (t) => {
  const svc = await ctx.newService();
  const taskId = await insertRawTask(svc, { state: 'error' });
  assertOvhError(t, await post(`${taskUrl(svc)}/${taskId}/resetTaskState`, {}), 400, /^\[reason\] Property is mandatory/);
  t.equal((await getTask(app, svc, taskId)).state, 'error');
});

t.test('changeMaintenanceExecutionDate moves a todo task to the new date', async (t) => {
  const svc = await ctx.newService();
  const { taskId } = await addEntryOk(app, svc, '203.0.113.0/24');
  const now = ovhDate(ctx.clock.now());
  const later = ovhDate(new Date(ctx.clock.now().getTime() + 2 * 3600_000));
  const res = await post(`${taskUrl(svc)}/${taskId}/changeMaintenanceExecutionDate`, { executionDate: later });
  t.equal(res.statusCode, 200);
  t.match(res.json(), { taskId, state: 'todo', executionDate: later, lastModificationDate: now });
  t.equal((await getTask(app, svc, taskId)).executionDate, later);
});

t.test('a rescheduled task is not run before its new date', async (t) => {
  await flushQueue();
  const svc = await ctx.newService();
  const { id, taskId } = await addEntryOk(app, svc, '203.0.113.0/24');
  const later = new Date(ctx.clock.now().getTime() + 3600_000);
  await post(`${taskUrl(svc)}/${taskId}/changeMaintenanceExecutionDate`, { executionDate: later.toISOString() });
  await ctx.worker.drain();
  t.equal((await getTask(app, svc, taskId)).state, 'todo', 'not yet');
  ctx.clock.advance(3600_000);
  await ctx.worker.drain();
  t.equal((await getTask(app, svc, taskId)).state, 'done', 'at its date');
  t.equal((await getEntry(app, svc, id)).json().state, 'enabled');
});

t.test('changeMaintenanceExecutionDate moves a task waiting for validation', async (t) => {
  const svc = await ctx.newService();
  const taskId = await insertRawTask(svc, { state: 'waitingTodo' });
  const later = ovhDate(new Date(ctx.clock.now().getTime() + 3600_000));
  const res = await post(`${taskUrl(svc)}/${taskId}/changeMaintenanceExecutionDate`, { executionDate: later });
  t.equal(res.statusCode, 200);
  t.match(res.json(), { state: 'waitingTodo', executionDate: later });
});

for (const state of ['done', 'error', 'doing'] as const) {
  t.test(`changeMaintenanceExecutionDate of a task in ${state} answers 400 and changes nothing`, async (t) => {
    const svc = await ctx.newService();
    const taskId = await insertRawTask(svc, { state });
    const before = await getTask(app, svc, taskId);
    const later = ovhDate(new Date(ctx.clock.now().getTime() + 3600_000));
    const res = await post(`${taskUrl(svc)}/${taskId}/changeMaintenanceExecutionDate`, { executionDate: later });
    assertOvhError(t, res, 400, new RegExp(`Task ${taskId} is in state ${state}: only a task that has not started`));
    t.strictSame(await getTask(app, svc, taskId), before);
  });
}

t.test('changeMaintenanceExecutionDate to a past date answers 400 naming executionDate', async (t) => {
  const svc = await ctx.newService();
  const taskId = await insertRawTask(svc, { state: 'waitingTodo' });
  const before = await getTask(app, svc, taskId);
  const past = ovhDate(new Date(ctx.clock.now().getTime() - 3600_000));
  const res = await post(`${taskUrl(svc)}/${taskId}/changeMaintenanceExecutionDate`, { executionDate: past });
  assertOvhError(t, res, 400, '[executionDate] is in the past');
  t.strictSame(await getTask(app, svc, taskId), before);
});

for (const executionDate of ['tomorrow', '2026-02-30T10:00:00+00:00', '2027-01-01', '2027-01-01T10:00:00']) {
  t.test(`changeMaintenanceExecutionDate to "${executionDate}" answers 400 naming executionDate`, async (t) => {
    const svc = await ctx.newService();
    const taskId = await insertRawTask(svc, { state: 'waitingTodo' });
    const res = await post(`${taskUrl(svc)}/${taskId}/changeMaintenanceExecutionDate`, { executionDate });
    assertOvhError(t, res, 400, /^\[executionDate\] /);
  });
}

t.test('changeMaintenanceExecutionDate without a date answers 400 naming executionDate', async (t) => {
  const svc = await ctx.newService();
  const taskId = await insertRawTask(svc, { state: 'waitingTodo' });
  const res = await post(`${taskUrl(svc)}/${taskId}/changeMaintenanceExecutionDate`, {});
  assertOvhError(t, res, 400, /^\[executionDate\] Property is mandatory/);
});

t.test("a date outside the task's maintenance window answers 400 and changes nothing", async (t) => {
  const svc = await ctx.newService();
  const taskId = await insertRawTask(svc, { state: 'waitingTodo' });
  const from = new Date(ctx.clock.now().getTime() + 3600_000);
  const to = new Date(ctx.clock.now().getTime() + 4 * 3600_000);
  await ctx.handle.db
    .updateTable('task')
    .set({ maintenance_date_from: from, maintenance_date_to: to })
    .where('task_id', '=', taskId)
    .execute();
  const before = await getTask(app, svc, taskId);
  t.equal(before.maintenanceDateFrom, ovhDate(from));
  for (const outside of [new Date(from.getTime() - 60_000), new Date(to.getTime() + 60_000)]) {
    const res = await post(`${taskUrl(svc)}/${taskId}/changeMaintenanceExecutionDate`, { executionDate: ovhDate(outside) });
    assertOvhError(t, res, 400, '[executionDate] is outside the maintenance window');
  }
  t.strictSame(await getTask(app, svc, taskId), before);
  const inside = ovhDate(new Date(from.getTime() + 60_000));
  const res = await post(`${taskUrl(svc)}/${taskId}/changeMaintenanceExecutionDate`, { executionDate: inside });
  t.equal(res.statusCode, 200);
});
