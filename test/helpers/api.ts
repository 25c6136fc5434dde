import type { Test } from 'tap';
import type { Db } from '../../src/db/database.js';
import type { App } from '../../src/http/types.js';

/** OVH's datetime: seconds precision and an explicit offset. */
export const OVH_DATE = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\+00:00$/;

/** The TestClock's start, in OVH's format. */
export const T0 = '2026-11-28T10:00:00+00:00';

/** `date` in OVH's format, computed independently of the code under test. */
export const ovhDate = (date: Date) => `${date.toISOString().slice(0, 19)}+00:00`;

export const whitelistUrl = (serviceName: string, prefix = '/1.0') => `${prefix}/dedicatedCloud/${serviceName}/twoFAWhitelist`;
export const taskUrl = (serviceName: string, prefix = '/1.0') => `${prefix}/dedicatedCloud/${serviceName}/task`;

export async function addEntry(app: App, serviceName: string, body: Record<string, unknown>, prefix = '/1.0') {
  return app.inject({ method: 'POST', url: whitelistUrl(serviceName, prefix), payload: body });
}

/** Adds an entry that must succeed; returns its id and the id of its task. */
export async function addEntryOk(app: App, serviceName: string, ip: string, description = 'backup appliance') {
  const before = await listIds(app, serviceName);
  const res = await addEntry(app, serviceName, { ip, description });
  if (res.statusCode !== 200) throw new Error(`POST ${ip} answered ${res.statusCode}: ${res.body}`);
  const after = await listIds(app, serviceName);
  const id = after.find((i) => !before.includes(i));
  if (id === undefined) throw new Error(`POST ${ip} did not list a new entry`);
  return { id, taskId: res.json<{ taskId: number }>().taskId };
}

export async function listIds(app: App, serviceName: string): Promise<number[]> {
  const res = await app.inject({ method: 'GET', url: whitelistUrl(serviceName) });
  if (res.statusCode !== 200) throw new Error(`GET list answered ${res.statusCode}: ${res.body}`);
  return res.json<number[]>();
}

export async function getEntry(app: App, serviceName: string, id: number) {
  return app.inject({ method: 'GET', url: `${whitelistUrl(serviceName)}/${id}` });
}

export async function getTask(app: App, serviceName: string, taskId: number) {
  const res = await app.inject({ method: 'GET', url: `${taskUrl(serviceName)}/${taskId}` });
  if (res.statusCode !== 200) throw new Error(`GET task answered ${res.statusCode}: ${res.body}`);
  return res.json<Record<string, unknown>>();
}

/** Rows one service owns in each table a mutation writes to. */
export async function rowCounts(db: Db, serviceName: string) {
  const count = async (table: 'task' | 'two_fa_whitelist' | 'audit_event') => {
    const row = await db
      .selectFrom(table)
      .select((eb) => eb.fn.countAll<number>().as('n'))
      .where('service_name', '=', serviceName)
      .executeTakeFirstOrThrow();
    return Number(row.n);
  };
  return { tasks: await count('task'), entries: await count('two_fa_whitelist'), auditEvents: await count('audit_event') };
}

/** Asserts an OVH business error: status, class, and a message that contains `mentions`. */
export function assertOvhError(
  t: Test,
  res: { statusCode: number; json: () => unknown },
  status: number,
  mentions: string | RegExp,
): void {
  t.equal(res.statusCode, status, 'status');
  const body = res.json() as { class?: unknown; message?: unknown };
  const expectedClass = status === 404 ? 'Client::NotFound' : 'Client::BadRequest';
  t.strictSame(Object.keys(body).sort(), ['class', 'message'], 'body is {class, message}');
  t.equal(body.class, expectedClass, 'class');
  t.match(body.message, mentions, 'message');
}
