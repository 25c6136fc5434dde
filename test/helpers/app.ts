import type { Test } from 'tap';
import { randomBytes } from 'node:crypto';
import { buildApp, operatorAccess, type AppDeps } from '../../src/app.js';
import { SecretBox } from '../../src/security/secret-box.js';
import type { Clock } from '../../src/clock.js';
import { loadConfig, type Config } from '../../src/config.js';
import type { DatabaseHandle } from '../../src/db/database.js';
import type { App } from '../../src/http/types.js';
import { buildWorker } from '../../src/composition.js';
import type { TaskWorker } from '../../src/worker/worker.js';
import pino from 'pino';
import { freshDatabase } from './db.js';

/** A clock the test moves by hand. */
export class TestClock implements Clock {
  #ms: number;
  constructor(start = Date.parse('2026-11-28T10:00:00Z')) {
    this.#ms = start;
  }
  now(): Date {
    return new Date(this.#ms);
  }
  advance(ms: number): void {
    this.#ms += ms;
  }
}

export interface TestContext {
  app: App;
  handle: DatabaseHandle;
  /** The PostgreSQL URL of this test's database (`undefined` on PGlite): a second app may open it too. */
  databaseUrl: string | undefined;
  clock: TestClock;
  config: Config;
  /** A worker that is not started: the test calls `drain()` to run due tasks. */
  worker: TaskWorker;
  newWorker(id: string, leaseSeconds?: number): TaskWorker;
  secretBox: SecretBox;
  /** Creates an account (if new) and a service owned by it. */
  newService(serviceName?: string, login?: string): Promise<string>;
}

let serviceCounter = 0;

/**
 * The suite's own settings, in one visible place: argon2id at its cheapest (64 KiB, one pass) instead of the
 * production cost, which test/config.test.ts asserts is the default. Everything else is the production default.
 */
export const TEST_ENV: Record<string, string> = { ARGON2_MEMORY_KIB: '64', ARGON2_ITERATIONS: '1' };
export const silentLog = pino({ level: 'silent' });

/** A fresh app on a fresh database, torn down when the test ends. */
export async function buildTestApp(
  t: Test,
  options: {
    env?: Record<string, string>;
    deps?: Partial<AppDeps>;
    /** real OVH authentication instead of operator access */ auth?: boolean;
  } = {},
): Promise<TestContext> {
  const { handle, url, drop } = await freshDatabase();
  const config = loadConfig({ ...TEST_ENV, ...options.env });
  const clock = new TestClock();
  const secretBox = new SecretBox([{ id: 'test', key: randomBytes(32) }]);
  const app = await buildApp({
    handle,
    config,
    clock,
    secretBox,
    ...(options.auth ? {} : { authenticate: operatorAccess }),
    ...options.deps,
  });
  const newWorker = (id: string, leaseSeconds = config.TASK_LEASE_SECONDS) =>
    buildWorker({
      handle,
      services: app.services,
      box: secretBox,
      clock,
      config: { TASK_LEASE_SECONDS: leaseSeconds, TASK_POLL_MS: 60_000, TASK_CONCURRENCY: config.TASK_CONCURRENCY },
      log: silentLog,
      workerId: id,
    });
  t.teardown(async () => {
    await app.close();
    await handle.close();
    await drop();
  });
  return {
    app,
    handle,
    databaseUrl: url,
    clock,
    config,
    secretBox,
    worker: newWorker('test-worker'),
    newWorker,
    async newService(serviceName = `pcc-test-${++serviceCounter}`, login = 'owner') {
      await app.services.services.create(serviceName, login);
      return serviceName;
    },
  };
}

/** A service's audit events of one type, oldest first. */
export function auditEvents(ctx: { handle: DatabaseHandle }, serviceName: string, type: string) {
  return ctx.handle.db
    .selectFrom('audit_event')
    .select(['id', 'actor', 'user_id', 'data'])
    .where('service_name', '=', serviceName)
    .where('type', '=', type)
    .orderBy('id')
    .execute();
}
