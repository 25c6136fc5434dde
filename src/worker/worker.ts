import { randomBytes, randomUUID } from 'node:crypto';
import os from 'node:os';
import type { Logger } from 'pino';
import type { Clock } from '../clock.js';
import type { DatabaseHandle } from '../db/database.js';
import type { TaskRow } from '../db/types.js';
import {
  claimDueTask,
  claimDueTasks,
  finishTask,
  finishTasks,
  lockHeldTask,
  lockHeldTasks,
  releaseTasks,
} from '../features/tasks/repository.js';
import type { TaskHandlers } from '../core/task-handler.js';
import { SecretBox } from '../security/secret-box.js';
import { isDatabaseUnavailable } from '../db/unavailable.js';

const TASK_CHANNEL = 'task_due';

/** A task of a group cannot be applied with the others (not held any more, no handler, too many attempts). */
class AloneNeeded extends Error {}
/** What a pass does beyond the due tasks, by what woke it: the housekeeping sends the queued messages too. */
const WANTS = { tasks: 0, messages: 1, housekeeping: 2 } as const;
/** Tasks claimed per lane and pass: few enough to finish well within a lease. */
const BATCH_PER_LANE = 8;

/** What a task is about: tasks about one subject stay in one lane, in their order. */
function subjectOf(task: TaskRow): string {
  const whitelistId = task.payload.whitelistId;
  if (task.user_id !== null) return `${task.service_name}:user:${task.user_id}`;
  if (task.network_access_id !== null) return `${task.service_name}:network:${task.network_access_id}`;
  if (typeof whitelistId === 'number') return `${task.service_name}:whitelist:${whitelistId}`;
  return `${task.service_name}:service`;
}

/** Splits claimed tasks (in queue order) into at most `lanes` lanes, one subject's tasks in one lane. */
function bySubject(tasks: TaskRow[], lanes: number): TaskRow[][] {
  const out: TaskRow[][] = Array.from({ length: Math.min(lanes, tasks.length) }, () => []);
  const laneOf = new Map<string, number>();
  let next = 0;
  for (const task of tasks) {
    const subject = subjectOf(task);
    let lane = laneOf.get(subject);
    if (lane === undefined) {
      lane = next++ % out.length;
      laneOf.set(subject, lane);
    }
    out[lane]!.push(task);
  }
  return out;
}

export interface WorkerOptions {
  handle: DatabaseHandle;
  handlers: TaskHandlers;
  clock: Clock;
  log: Logger;
  box?: SecretBox;
  leaseSeconds: number;
  pollMs: number;
  /**
   * The instance's housekeeping (expiring operations, purges, then sending queued messages): after a pass over the
   * tasks woken by the poll timer (every `pollMs`) or by `drain()`, not after each NOTIFY of a new task.
   */
  housekeeping?: () => Promise<void>;
  /** Sends the queued messages: after a pass woken by a queued message's NOTIFY, and as part of `housekeeping`. */
  sendMessages?: () => Promise<void>;
  /** A task claimed this many times without finishing is given up as `error` (it keeps killing its worker). */
  maxAttempts?: number;
  workerId?: string;
  /**
   * Lanes of tasks applied at once (TASK_CONCURRENCY, default 1), each lane's claimed tasks in one transaction, so that
   * the lanes' commits share the disk's flushes. Tasks about one subject (a whitelist entry, a user, an allowed
   * network) never run at once, and run in their order.
   */
  concurrency?: number;
}

/**
 * Claims due tasks in batches and applies them, `concurrency` at a time per instance. Woken by NOTIFY on `task_due`, with polling as a
 * fallback for lost notifications and for tasks whose execution date or lease comes due.
 */
export class TaskWorker {
  readonly id: string;
  private readonly box: SecretBox;
  #running: Promise<void> | undefined;
  #again = false;
  /** What the next pass does beyond the tasks (the most any wake since the last pass asked for). */
  #wanted: 'tasks' | 'messages' | 'housekeeping' = 'tasks';
  #stopping = false;
  #timer: NodeJS.Timeout | undefined;
  #unlisten: (() => Promise<void>) | undefined;

  constructor(private readonly options: WorkerOptions) {
    this.id = options.workerId ?? `${os.hostname()}:${process.pid}:${randomUUID().slice(0, 8)}`;
    // Without the service's keys, a handler that opens a sealed change fails (the task goes `error`), nothing worse.
    this.box = options.box ?? new SecretBox([{ id: 'none', key: randomBytes(32) }]);
  }

  async start(): Promise<void> {
    // A task's NOTIFY carries its id, a queued message's `outbox` (migrations/0001, 0003).
    this.#unlisten = await this.options.handle.listen(TASK_CHANNEL, (payload) =>
      this.wake(payload === 'outbox' ? 'messages' : 'tasks'),
    );
    this.#timer = setInterval(() => this.wake('housekeeping'), this.options.pollMs);
    this.#timer.unref();
    this.wake('housekeeping');
  }

  /**
   * Runs a pass now, or once more after the current one: the due tasks, then what woke it asks for beyond them: the
   * queued messages, or the whole housekeeping (the poll timer). A burst of NOTIFYs runs the tasks, not the
   * housekeeping's statements after each one.
   */
  wake(reason: 'tasks' | 'messages' | 'housekeeping' = 'housekeeping'): void {
    if (this.#stopping) return;
    this.#wanted = WANTS[reason] > WANTS[this.#wanted] ? reason : this.#wanted;
    if (this.#running) {
      this.#again = true;
      return;
    }
    const wanted = this.#wanted;
    this.#wanted = 'tasks';
    this.#running = this.pass(wanted)
      .then(() => undefined)
      .catch((err: unknown) => this.options.log.error({ err }, 'task worker pass failed'))
      .finally(() => {
        this.#running = undefined;
        if (this.#again && !this.#stopping) {
          this.#again = false;
          this.wake(this.#wanted);
        }
      });
  }

  /** Resolves once no pass is under way (one asked for during the current pass included). */
  async idle(): Promise<void> {
    while (this.#running) await this.#running;
  }

  /** Processes due tasks until none is left, then the whole housekeeping. Resolves when done (tests await it). */
  drain(): Promise<number> {
    return this.pass('housekeeping');
  }

  private async pass(wanted: 'tasks' | 'messages' | 'housekeeping'): Promise<number> {
    const lanes = Math.max(1, this.options.concurrency ?? 1);
    let count = 0;
    while (!this.#stopping) {
      const now = this.options.clock.now();
      const leaseUntil = new Date(now.getTime() + this.options.leaseSeconds * 1000);
      const batch = await claimDueTasks(this.options.handle.db, this.id, now, leaseUntil, lanes * BATCH_PER_LANE);
      if (batch.length === 0) break;
      const unstarted: number[] = [];
      await Promise.all(
        bySubject(batch, lanes).map(async (lane) => {
          // A stop lets the tasks under way finish and gives the others back at once, not when their lease ends.
          if (this.#stopping) {
            unstarted.push(...lane.map((t) => t.task_id));
            return;
          }
          const left = await this.runTogether(lane);
          unstarted.push(...left.map((t) => t.task_id));
          count += lane.length - left.length;
        }),
      );
      await releaseTasks(this.options.handle.db, this.id, unstarted, this.options.clock.now());
    }
    const work =
      wanted === 'housekeeping' ? this.options.housekeeping : wanted === 'messages' ? this.options.sendMessages : undefined;
    if (work) {
      try {
        await work();
      } catch (err) {
        this.options.log.error({ err }, `worker ${wanted === 'messages' ? 'sending messages' : 'housekeeping'} failed`);
      }
    }
    return count;
  }

  /** Claims one due task and marks it `doing` for this worker, without applying it. */
  async claimOne(): Promise<TaskRow | undefined> {
    const now = this.options.clock.now();
    const leaseUntil = new Date(now.getTime() + this.options.leaseSeconds * 1000);
    return claimDueTask(this.options.handle.db, this.id, now, leaseUntil);
  }

  /**
   * Applies a lane's claimed tasks, in their order, in one transaction: their changes and their `done` commit together
   * (one commit, one flush, a few statements fewer per task). If any of them fails, or one is no longer held by this
   * worker, nothing of that transaction stays and each task is applied alone (`run`), so that a task's failure is its
   * own. A stop ends the group after the task under way: returns the tasks it did not start, for the caller to give
   * back.
   */
  async runTogether(tasks: TaskRow[]): Promise<TaskRow[]> {
    const { handle, handlers, clock, log } = this.options;
    if (tasks.length === 1) {
      await this.run(tasks[0]!);
      return [];
    }
    const maxAttempts = this.options.maxAttempts ?? 5;
    let started = 0;
    try {
      const ids = tasks.map((t) => t.task_id);
      await handle.db.transaction().execute(async (trx) => {
        const held = new Map((await lockHeldTasks(trx, ids, this.id)).map((t) => [t.task_id, t]));
        const ctx = { now: clock.now(), box: this.box };
        for (const task of tasks) {
          if (this.#stopping && started > 0) break;
          const row = held.get(task.task_id);
          const handler = handlers.get(task.name);
          if (!row || !handler || row.attempts > maxAttempts) throw new AloneNeeded();
          started++;
          await handler.apply(trx, row, ctx);
        }
        await finishTasks(trx, ids.slice(0, started), { state: 'done', description: 'Done', lastError: null, now: clock.now() });
      });
      for (const task of tasks.slice(0, started)) {
        log.info({ taskId: task.task_id, taskName: task.name, attempt: task.attempts }, 'task done');
      }
      return tasks.slice(started);
    } catch (err) {
      if (isDatabaseUnavailable(err)) throw err;
      if (!(err instanceof AloneNeeded)) log.debug({ err }, 'a task of a group failed: applying them one by one');
      // Nothing of the group was committed: after a stop, none of it starts again here.
      const left: TaskRow[] = [];
      for (const task of tasks) {
        if (this.#stopping) left.push(task);
        else await this.run(task);
      }
      return left;
    }
  }

  /** Applies a claimed task: its change and its `done` commit together, only while this worker still holds it. */
  async run(task: TaskRow): Promise<void> {
    const { handle, handlers, clock, log } = this.options;
    const taskLog = log.child({ taskId: task.task_id, taskName: task.name, attempt: task.attempts });
    const handler = handlers.get(task.name);
    const maxAttempts = this.options.maxAttempts ?? 5;
    try {
      const outcome = await handle.db.transaction().execute(async (trx) => {
        const held = await lockHeldTask(trx, task.task_id, this.id);
        if (!held) return 'lost' as const;
        const ctx = { now: clock.now(), box: this.box };
        if (!handler) throw new Error(`no handler for task ${task.name}`);
        if (held.attempts > maxAttempts) throw new Error(`given up after ${held.attempts - 1} interrupted attempts`);
        await handler.apply(trx, held, ctx);
        await finishTask(trx, held.task_id, { state: 'done', description: 'Done', lastError: null, now: clock.now() });
        return 'done' as const;
      });
      if (outcome === 'lost') taskLog.warn('task lease lost to another worker; not applied here');
      else taskLog.info('task done');
    } catch (err) {
      if (isDatabaseUnavailable(err)) {
        // Nothing was applied (the transaction did not commit): the task stays `doing` under this worker's lease and is
        // claimed again once the lease ends. Marking it `error` would lose it to an outage.
        taskLog.warn({ err }, 'database unavailable: the task will be claimed again when its lease ends');
        throw err;
      }
      taskLog.error({ err }, 'task failed');
      await this.markError(task, err);
    }
  }

  private async markError(task: TaskRow, err: unknown): Promise<void> {
    const message = err instanceof Error ? err.message : String(err);
    try {
      await this.finishAsError(task, message, true);
    } catch (hookErr) {
      // A failing onError hook must not leave the task `doing`, to be claimed and failed again forever.
      this.options.log.error({ err: hookErr, taskId: task.task_id }, 'onError hook failed; marking the task error without it');
      await this.finishAsError(task, message, false);
    }
  }

  private async finishAsError(task: TaskRow, message: string, withHook: boolean): Promise<void> {
    const { handle, handlers, clock } = this.options;
    await handle.db.transaction().execute(async (trx) => {
      const held = await lockHeldTask(trx, task.task_id, this.id);
      if (!held) return;
      const now = clock.now();
      if (withHook) await handlers.get(task.name)?.onError?.(trx, held, { now, box: this.box });
      // The description is shown to API callers: a fixed text, the details stay in last_error and the logs.
      await finishTask(trx, held.task_id, { state: 'error', description: 'Task failed', lastError: message.slice(0, 2000), now });
    });
  }

  /** Stops claiming, lets the current task finish, and stops listening. */
  async stop(): Promise<void> {
    this.#stopping = true;
    if (this.#timer) clearInterval(this.#timer);
    await this.#running;
    await this.#unlisten?.().catch(() => undefined);
  }
}
