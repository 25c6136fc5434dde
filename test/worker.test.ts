import t, { type Test } from 'tap';
import { insertTask } from '../src/features/tasks/repository.js';
import type { TaskHandler } from '../src/core/task-handler.js';
import { TaskWorker } from '../src/worker/worker.js';
import { buildTestApp, silentLog } from './helpers/app.js';
import { addEntryOk, getTask } from './helpers/api.js';

// One app and database for the file. Claims race on the whole queue, so every test ends with an empty queue: what it
// left due or claimed is canceled. The clock only moves forward; tests use dates relative to it.
const LEASE_SECONDS = 30;
const ctx = await buildTestApp(t);
const cancelLeftovers = async () => {
  await ctx.handle.db
    .updateTable('task')
    .set({ state: 'canceled', locked_by: null, locked_until: null })
    .where('state', 'in', ['todo', 'doing'])
    .execute();
};
/** A test of this file: its leftovers are canceled when it ends (a root afterEach would reach a suite's other files). */
const workerTest = (name: string, fn: (t: Test) => Promise<void>) =>
  t.test(name, async (t) => {
    t.teardown(cancelLeftovers);
    await fn(t);
  });

/** A service with one new whitelist entry whose add task is due, and two workers sharing the queue. */
async function setup() {
  const svc = await ctx.newService();
  const { id, taskId } = await addEntryOk(ctx.app, svc, '203.0.113.0/24');
  return { svc, id, taskId, a: ctx.newWorker('worker-a', LEASE_SECONDS), b: ctx.newWorker('worker-b', LEASE_SECONDS) };
}

const taskRow = (taskId: number) =>
  ctx.handle.db.selectFrom('task').selectAll().where('task_id', '=', taskId).executeTakeFirstOrThrow();
const entryRow = (id: number) =>
  ctx.handle.db.selectFrom('two_fa_whitelist').selectAll().where('id', '=', id).executeTakeFirstOrThrow();

workerTest('a task claimed by one worker is not claimable by another before its lease ends', async (t) => {
  const { taskId, a, b } = await setup();
  const claimed = await a.claimOne();
  t.equal(claimed?.task_id, taskId);
  t.equal(claimed?.state, 'doing');
  t.equal(claimed?.locked_by, 'worker-a');
  t.equal(await b.claimOne(), undefined, 'right after the claim');
  ctx.clock.advance(LEASE_SECONDS * 1000);
  t.equal(await b.claimOne(), undefined, 'at the very end of the lease');
});

workerTest('after the lease of a dead worker ends, another worker takes the task over and applies it once', async (t) => {
  const { svc, id, taskId, a, b } = await setup();
  await a.claimOne(); // …and worker A dies without running it
  ctx.clock.advance((LEASE_SECONDS + 1) * 1000);
  const claimed = await b.claimOne();
  t.equal(claimed?.task_id, taskId, 'B takes the task over');
  t.equal(claimed?.attempts, 2);
  await b.run(claimed!);
  const task = await taskRow(taskId);
  t.match(task, { state: 'done', attempts: 2, locked_by: null, locked_until: null, progress: 100 });
  const entry = await entryRow(id);
  t.equal(entry.state, 'enabled');
  t.equal(entry.updated_at.getTime(), ctx.clock.now().getTime(), 'enabled by B, now');
  t.equal((await getTask(ctx.app, svc, taskId)).state, 'done');
});

workerTest('a worker whose task was taken over and finished applies and changes nothing when it finally runs it', async (t) => {
  const { id, taskId, a, b } = await setup();
  const claimedByA = await a.claimOne();
  ctx.clock.advance((LEASE_SECONDS + 1) * 1000);
  const claimedByB = await b.claimOne();
  await b.run(claimedByB!);
  const taskAfterB = await taskRow(taskId);
  const entryAfterB = await entryRow(id);

  ctx.clock.advance(10_000);
  await a.run(claimedByA!); // A wakes up from a long pause
  t.strictSame(await taskRow(taskId), taskAfterB, 'the task is untouched');
  t.strictSame(await entryRow(id), entryAfterB, 'the entry is untouched');
});

workerTest('a worker whose lease was taken over does not apply the task while the new holder has it', async (t) => {
  const { id, taskId, a, b } = await setup();
  const claimedByA = await a.claimOne();
  ctx.clock.advance((LEASE_SECONDS + 1) * 1000);
  const claimedByB = await b.claimOne();
  const taskHeldByB = await taskRow(taskId);

  await a.run(claimedByA!);
  t.strictSame(await taskRow(taskId), taskHeldByB, 'still doing, held by B');
  t.equal((await entryRow(id)).state, 'enabling', 'not applied by A');

  await b.run(claimedByB!);
  t.equal((await taskRow(taskId)).state, 'done', 'B still finishes it');
  t.equal((await entryRow(id)).state, 'enabled');
});

workerTest('a task claimed again and again past maxAttempts ends in error, and so does its entry', async (t) => {
  const { svc, id, taskId, a } = await setup();
  // Default maxAttempts is 5: five claims die, the sixth gives up instead of applying.
  let claimed;
  for (let attempt = 1; attempt <= 6; attempt++) {
    if (attempt > 1) ctx.clock.advance((LEASE_SECONDS + 1) * 1000);
    claimed = await a.claimOne();
    t.equal(claimed?.attempts, attempt, `claim ${attempt}`);
  }
  await a.run(claimed!);
  const task = await taskRow(taskId);
  t.match(task, { state: 'error', description: 'Task failed', last_error: /given up after 5 interrupted attempts/ });
  t.equal((await entryRow(id)).state, 'error');
  t.equal((await getTask(ctx.app, svc, taskId)).state, 'error');
});

workerTest('a task is claimed only once its execution date has come', async (t) => {
  const svc = await ctx.newService();
  const later = new Date(ctx.clock.now().getTime() + 3600_000);
  const row = await ctx.handle.db.transaction().execute((trx) =>
    insertTask(trx, {
      serviceName: svc,
      name: 'addTwoFAWhitelist',
      type: 'twoFAWhitelist',
      description: 'scheduled',
      createdBy: null,
      createdFrom: 'test',
      executionDate: later,
    }),
  );
  t.equal(await ctx.worker.claimOne(), undefined, 'not before');
  ctx.clock.advance(3600_000);
  t.equal((await ctx.worker.claimOne())?.task_id, row.task_id, 'at its date');
});

workerTest('a task whose error hook fails still ends in error, and the worker goes on with the queue', async (t) => {
  const svc = await ctx.newService();
  const explode: TaskHandler = {
    apply: async () => {
      throw new Error('apply exploded');
    },
    onError: async () => {
      throw new Error('onError exploded too');
    },
  };
  const worker = new TaskWorker({
    handle: ctx.handle,
    handlers: new Map([...ctx.app.services.handlers, ['explode', explode]]),
    clock: ctx.clock,
    log: silentLog,
    leaseSeconds: LEASE_SECONDS,
    pollMs: 60_000,
  });
  const bad = await ctx.handle.db.transaction().execute((trx) =>
    insertTask(trx, {
      serviceName: svc,
      name: 'explode',
      type: 'test',
      description: 'explodes',
      createdBy: null,
      createdFrom: 'test',
      executionDate: ctx.clock.now(),
    }),
  );
  ctx.clock.advance(1000); // the entry's task comes after the bad one
  const { id, taskId } = await addEntryOk(ctx.app, svc, '203.0.113.0/24');

  t.equal(await worker.drain(), 2, 'both tasks processed in one pass');
  t.match(await taskRow(bad.task_id), { state: 'error', last_error: 'apply exploded', locked_by: null });
  t.equal((await taskRow(taskId)).state, 'done');
  t.equal((await entryRow(id)).state, 'enabled');
});

workerTest('a started worker runs a new task as soon as it is notified, without polling', async (t) => {
  const svc = await ctx.newService();
  const worker = ctx.newWorker('listener'); // polls every 60 s: only NOTIFY can wake it within the test
  await worker.start();
  t.teardown(() => worker.stop());
  await new Promise((resolve) => setTimeout(resolve, 300)); // let its first pass over the empty queue end

  const { id, taskId } = await addEntryOk(ctx.app, svc, '203.0.113.0/24');
  const deadline = Date.now() + 5000;
  let state = (await getTask(ctx.app, svc, taskId)).state;
  while (state !== 'done' && Date.now() < deadline) {
    await new Promise((resolve) => setTimeout(resolve, 50));
    state = (await getTask(ctx.app, svc, taskId)).state;
  }
  t.equal(state, 'done', 'done within 5 s');
  t.equal((await entryRow(id)).state, 'enabled');
  await worker.stop();
});

workerTest(
  "a task's NOTIFY wakes the worker for the tasks only, a queued message's to send messages, its timer for the housekeeping",
  async (t) => {
    const svc = await ctx.newService();
    const calls: string[] = [];
    const signal = () => {
      let done: () => void = () => {};
      return { promise: new Promise<void>((resolve) => (done = resolve)), done: () => done() };
    };
    let ran = signal();
    const worker = new TaskWorker({
      handle: ctx.handle,
      handlers: new Map([['probe', { apply: async () => void calls.push('task') }]]),
      clock: ctx.clock,
      log: silentLog,
      leaseSeconds: LEASE_SECONDS,
      pollMs: 60_000, // the timer does not fire within the test: only its start's pass stands for it
      housekeeping: async () => {
        calls.push('housekeeping');
        ran.done();
      },
      sendMessages: async () => {
        calls.push('messages');
        ran.done();
      },
    });
    await worker.start();
    t.teardown(() => worker.stop());
    await ran.promise;
    await worker.idle();
    t.strictSame(calls, ['housekeeping'], 'the start runs the housekeeping');

    calls.length = 0;
    await probeTask(svc, 1, 0);
    const deadline = Date.now() + 5000;
    while (calls.length === 0 && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 20));
    await worker.idle();
    t.strictSame(calls, ['task'], "a task's NOTIFY: the task, no housekeeping after it");

    calls.length = 0;
    ran = signal();
    await ctx.handle.db
      .insertInto('outbox')
      .values({
        service_name: svc,
        channel: 'sms',
        recipient: '+1.5550100',
        body_ciphertext: null,
        operation_id: null,
        state: 'pending',
        next_attempt_at: ctx.clock.now(),
        created_at: ctx.clock.now(),
        locked_by: null,
        locked_until: null,
        sent_at: null,
        last_error: null,
      })
      .execute();
    await ran.promise;
    await worker.idle();
    t.strictSame(calls, ['messages'], "a queued message's NOTIFY: the messages are sent, no other housekeeping");

    calls.length = 0;
    worker.wake('tasks');
    worker.wake('housekeeping');
    worker.wake('messages');
    await worker.idle();
    t.strictSame(calls, ['housekeeping'], 'wakes during a pass: one more pass, doing the most any of them asked for');
    await ctx.handle.db.deleteFrom('outbox').where('service_name', '=', svc).execute();
  },
);

/** A task of a test handler `probe` about a whitelist entry `subject`, due now. */
const probeTask = (svc: string, subject: number, step: number) =>
  ctx.handle.db.transaction().execute((trx) =>
    insertTask(trx, {
      serviceName: svc,
      name: 'probe',
      type: 'test',
      description: `subject ${subject}, step ${step}`,
      createdBy: null,
      createdFrom: 'test',
      executionDate: ctx.clock.now(),
      payload: { whitelistId: subject, step },
    }),
  );

workerTest(
  "with TASK_CONCURRENCY, tasks run side by side, but one subject's tasks one at a time and in their order",
  async (t) => {
    const svc = await ctx.newService();
    const running = new Set<number>();
    const seen: Array<[number, number]> = [];
    let overlap = 0;
    let release: () => void = () => {};
    const together = new Promise<void>((resolve) => (release = resolve));
    const probe: TaskHandler = {
      apply: async (_trx, task) => {
        const { whitelistId: subject, step } = task.payload as { whitelistId: number; step: number };
        if (running.has(subject)) throw new Error(`subject ${subject} ran twice at once`);
        running.add(subject);
        overlap = Math.max(overlap, running.size);
        // The first tasks wait (a second at most) for another lane to join them: side by side, whatever the load.
        if (running.size >= 2 || ctx.handle.kind !== 'pg') release();
        await Promise.race([together, new Promise((resolve) => setTimeout(resolve, 1000))]);
        seen.push([subject, step]);
        running.delete(subject);
      },
    };
    const worker = new TaskWorker({
      handle: ctx.handle,
      handlers: new Map([['probe', probe]]),
      clock: ctx.clock,
      log: silentLog,
      leaseSeconds: LEASE_SECONDS,
      pollMs: 60_000,
      concurrency: 4,
    });
    // Four subjects, three steps each, queued step by step.
    for (let step = 0; step < 3; step++) for (let subject = 1; subject <= 4; subject++) await probeTask(svc, subject, step);
    t.equal(await worker.drain(), 12);
    // The embedded database runs one transaction at a time: there, the lanes take turns.
    if (ctx.handle.kind === 'pg') t.ok(overlap > 1, `tasks of different subjects ran side by side (up to ${overlap} at once)`);
    for (let subject = 1; subject <= 4; subject++) {
      t.strictSame(
        seen.filter(([s]) => s === subject).map(([, step]) => step),
        [0, 1, 2],
        `subject ${subject}: its steps in their order`,
      );
    }
    const states = await ctx.handle.db.selectFrom('task').select('state').where('service_name', '=', svc).execute();
    t.ok(
      states.every((r) => r.state === 'done'),
      'every task done',
    );
  },
);

/** A worker of one lane, polled by the test only, with handlers the test sets. */
function singleLaneWorker() {
  const handlers = new Map<string, TaskHandler>();
  const worker = new TaskWorker({
    handle: ctx.handle,
    handlers,
    clock: ctx.clock,
    log: silentLog,
    leaseSeconds: LEASE_SECONDS,
    pollMs: 60_000,
    concurrency: 1,
  });
  return { handlers, worker };
}

workerTest('a worker that stops mid-batch finishes what it started and gives the rest back at once', async (t) => {
  const svc = await ctx.newService();
  const { handlers, worker } = singleLaneWorker();
  // The stop comes while the first task runs.
  handlers.set('probe', { apply: async () => void worker.stop() });
  const ids: number[] = [];
  for (let i = 0; i < 3; i++) ids.push((await probeTask(svc, 1, i)).task_id);
  t.equal(await worker.drain(), 1, 'the task under way finished');
  const rows = await Promise.all(ids.map(taskRow));
  t.match(rows[0], { state: 'done' });
  for (const row of rows.slice(1)) {
    t.match(row, { state: 'todo', locked_by: null, locked_until: null, attempts: 0 }, 'due again, as if never claimed');
  }
  const next = ctx.newWorker('next', LEASE_SECONDS);
  t.equal((await next.claimOne())?.task_id, ids[1], 'another worker takes them over without waiting for a lease');
});

workerTest("a lane's tasks commit together, and a task that fails fails alone: the others are applied once", async (t) => {
  const svc = await ctx.newService();
  const audit = ctx.handle.db;
  const { handlers, worker } = singleLaneWorker();
  const transactions = new Set<unknown>();
  // Each applied task leaves a row, in the task's own transaction: a rolled-back attempt leaves none.
  handlers.set('probe', {
    apply: async (trx, task) => {
      transactions.add(trx);
      await trx
        .insertInto('audit_event')
        .values({
          service_name: svc,
          type: 'probe.applied',
          actor: 'test',
          ip: null,
          user_id: null,
          data: JSON.stringify(task.payload),
        })
        .execute();
      if (task.payload.step === 2) throw new Error('step 2 fails');
    },
  });
  const ids: number[] = [];
  for (let i = 0; i < 4; i++) ids.push((await probeTask(svc, 1, i)).task_id);
  t.equal(await worker.drain(), 4, 'every task was taken');
  const rows = await Promise.all(ids.map(taskRow));
  t.same(
    rows.map((r) => r.state),
    ['done', 'done', 'error', 'done'],
    'the failing task is in error, the others done',
  );
  t.match(rows[2], { last_error: 'step 2 fails' });
  const applied = await audit
    .selectFrom('audit_event')
    .select('data')
    .where('service_name', '=', svc)
    .where('type', '=', 'probe.applied')
    .execute();
  const steps = applied.map((r) => (r.data as { step: number }).step).sort();
  t.same(steps, [0, 1, 3], 'each task that succeeded committed once; the failed one committed nothing');
  t.ok(transactions.size >= 2, 'the group was tried in one transaction, then its tasks one by one');

  // Without a failure, the whole lane commits in one transaction.
  transactions.clear();
  const more: number[] = [];
  for (let i = 10; i < 14; i++) more.push((await probeTask(svc, 1, i)).task_id);
  t.equal(await worker.drain(), 4);
  t.equal(transactions.size, 1, 'four tasks, one transaction');
  t.same(
    (await Promise.all(more.map(taskRow))).map((r) => r.state),
    ['done', 'done', 'done', 'done'],
  );
});
