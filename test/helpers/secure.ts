import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { generate } from 'otplib';
import type { LightMyRequestResponse } from 'fastify';
import type { Logger } from 'pino';
import type { Test } from 'tap';
import { webhookSender, type Sender } from '../../src/notify/senders.js';
import { buildWorker } from '../../src/composition.js';
import type { TaskWorker } from '../../src/worker/worker.js';
import { silentLog, type TestContext } from './app.js';

/** One POST the webhook received, as the sender wrote it. */
export interface ReceivedMessage {
  raw: string;
  body: { channel: 'sms' | 'email'; to: string; message: string; operationId: number | null };
  timestamp: string;
  signature: string;
  /** `X-Pcc-Signature` is `sha256=` + HMAC-SHA256(`<X-Pcc-Timestamp>.<body>`) keyed by the shared secret. */
  signatureValid: boolean;
}

/**
 * A real SMS webhook receiver on 127.0.0.1: records each POST and checks its signature, computed here independently of
 * src/notify/senders.ts. A badly signed POST is answered 401 (the message is not delivered).
 */
export class WebhookReceiver {
  readonly messages: ReceivedMessage[] = [];
  /** Every request, delivered or not (retries of a failing message show here). */
  hits = 0;
  /** The status the receiver answers with; set 500 to make the sender fail. */
  status = 200;
  readonly secret = randomBytes(24).toString('base64url');
  url = '';
  private readonly server: http.Server;

  private constructor() {
    this.server = http.createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        this.hits++;
        const raw = Buffer.concat(chunks).toString('utf8');
        const timestamp = String(req.headers['x-pcc-timestamp'] ?? '');
        const signature = String(req.headers['x-pcc-signature'] ?? '');
        const expected = `sha256=${createHmac('sha256', this.secret).update(`${timestamp}.${raw}`).digest('hex')}`;
        const signatureValid =
          req.method === 'POST' &&
          expected.length === signature.length &&
          timingSafeEqual(Buffer.from(expected), Buffer.from(signature));
        if (!signatureValid) {
          res.writeHead(401).end();
          return;
        }
        if (this.status >= 300) {
          res.writeHead(this.status).end();
          return;
        }
        this.messages.push({ raw, body: JSON.parse(raw) as ReceivedMessage['body'], timestamp, signature, signatureValid });
        res.writeHead(this.status).end();
      });
    });
  }

  static async start(t: Test): Promise<WebhookReceiver> {
    const receiver = new WebhookReceiver();
    await new Promise<void>((resolve) => receiver.server.listen(0, '127.0.0.1', resolve));
    receiver.url = `http://127.0.0.1:${(receiver.server.address() as AddressInfo).port}/sms`;
    // A keep-alive connection of the sender must not hold the test's end: every connection goes with the server.
    t.teardown(
      () =>
        new Promise<void>((resolve) => {
          receiver.server.close(() => resolve());
          receiver.server.closeAllConnections();
        }),
    );
    return receiver;
  }

  sender(): Sender {
    return webhookSender(this.url, this.secret);
  }

  /** Messages delivered to one phone number (or e-mail address), oldest first. */
  to(recipient: string): ReceivedMessage[] {
    return this.messages.filter((m) => m.body.to === recipient);
  }

  latest(recipient: string): ReceivedMessage {
    const all = this.to(recipient);
    const last = all[all.length - 1];
    if (!last) throw new Error(`no message was sent to ${recipient}`);
    return last;
  }

  /** The 8-digit token of the latest operation SMS sent to the number. */
  latestToken(recipient: string): string {
    const match = /Token: (\d{8})\b/.exec(this.latest(recipient).body.message);
    if (!match) throw new Error(`the latest message to ${recipient} holds no token: ${this.latest(recipient).body.message}`);
    return match[1]!;
  }

  /** The token sent for one operation to the number. */
  tokenFor(recipient: string, operationId: number): string {
    const messages = this.to(recipient).filter((m) => m.body.operationId === operationId);
    const last = messages[messages.length - 1];
    const match = last && /Token: (\d{8})\b/.exec(last.body.message);
    if (!match) throw new Error(`no token for operation ${operationId} was sent to ${recipient}`);
    return match[1]!;
  }

  /** The code of the latest "password lost" message sent to the number. */
  latestResetCode(recipient: string): string {
    const match = /password reset code for \S+: (\d{8})\b/.exec(this.latest(recipient).body.message);
    if (!match) throw new Error(`the latest message to ${recipient} holds no reset code`);
    return match[1]!;
  }
}

/**
 * A worker like src/server.ts builds: runs due tasks, then housekeeping (expires operations, drains the outbox to the
 * webhook), on the test's clock.
 */
export function secureWorker(
  ctx: TestContext,
  receiver: WebhookReceiver,
  options: { id?: string; log?: Logger; sender?: Sender } = {},
): TaskWorker {
  return buildWorker({
    handle: ctx.handle,
    services: ctx.app.services,
    box: ctx.secretBox,
    clock: ctx.clock,
    config: {
      TASK_LEASE_SECONDS: ctx.config.TASK_LEASE_SECONDS,
      TASK_POLL_MS: 60_000,
      TASK_CONCURRENCY: ctx.config.TASK_CONCURRENCY,
    },
    log: options.log ?? silentLog,
    workerId: options.id ?? `secure-worker-${randomBytes(3).toString('hex')}`,
    sender: options.sender ?? receiver.sender(),
  });
}

/** The current TOTP code of a secret on the test's clock, `steps` time steps of 30 s away. */
export const totpCode = (ctx: TestContext, secret: string, steps = 0) =>
  generate({ secret, epoch: Math.floor(ctx.clock.now().getTime() / 1000) + steps * 30 });

let counter = 0;
const unique = () => `${process.pid % 1000}${++counter}`;

/** A client address no other test uses: lockout and rate limits count per IP. */
export const freshIp = () => {
  const n = ++counter + (process.pid % 200) * 1000;
  return `10.${(n >> 16) & 255}.${(n >> 8) & 255}.${n & 255}`;
};
/** A phone number in OVH's form, never given twice. */
export const freshPhone = () => `+33.6${String(10_000_000 + (Number(unique()) % 89_999_999)).padStart(8, '0')}`;
/** A password that fits the default policy, never given twice. */
export const freshPassword = () => `Pw-${randomBytes(9).toString('base64url')}-aZ7!`;
/** A user name, never given twice. */
export const freshName = (prefix = 'user') => `${prefix}${unique()}`;

export interface Person {
  userId: number;
  name: string;
  password: string;
  phone: string | null;
  /** Set once the person has 2FA. */
  secret?: string;
}

export interface SecureKit {
  ctx: TestContext;
  inbox: WebhookReceiver;
  worker: TaskWorker;
  /** Runs due tasks, expires operations, sends queued messages; twice, so a message a task queues leaves too. */
  settle(): Promise<void>;
  api(method: 'GET' | 'POST' | 'DELETE', url: string, payload?: unknown): Promise<LightMyRequestResponse>;
  secure(
    method: 'GET' | 'POST' | 'DELETE',
    serviceName: string,
    path: string,
    options?: { session?: string; payload?: unknown; ip?: string },
  ): Promise<LightMyRequestResponse>;
  login(
    serviceName: string,
    body: { login: string; password?: string; token?: string; resetToken?: string },
    ip?: string,
  ): Promise<LightMyRequestResponse>;
  /** Logs in (with the code of the next time step when the person has 2FA: the clock moves 30 s); throws unless it works. */
  session(serviceName: string, person: Person, ip?: string): Promise<{ sessionToken: string; scope: string }>;
  /**
   * POST …/user; the task is run unless it must wait for validation, which `approver` (a token validator) then gives.
   * Returns the user id and the task as POST answered it.
   */
  createUser(
    serviceName: string,
    body: Record<string, unknown> & { name: string },
    approver?: Person,
  ): Promise<{ userId: number; task: { taskId: number; state: string } }>;
  /** A token validator logs in and validates the operation of a task with the token he received; the task then runs. */
  approve(serviceName: string, approver: Person, taskId: number): Promise<void>;
  /** A delivered token validator whose phone number is confirmed. */
  validator(serviceName: string, options?: { approver?: Person; extra?: Record<string, unknown> }): Promise<Person>;
  /** A delivered user, not a token validator, with a phone number (unconfirmed unless `confirm`) unless `phone: false`. */
  plainUser(serviceName: string, options?: { confirm?: boolean; phone?: boolean; approver?: Person }): Promise<Person>;
  /** The guide's flow for a token validator who validates his own operation; returns him with his new secret. */
  enable2FA(serviceName: string, person: Person, ip?: string): Promise<Person>;
  task(serviceName: string, taskId: number): Promise<{ state: string; [k: string]: unknown }>;
  /** The operation that holds a task back. */
  operationOf(taskId: number): Promise<{ operation_id: number; approval: string; state: string }>;
  userRow(userId: number): Promise<Record<string, unknown>>;
}

export async function secureKit(t: Test, ctx: TestContext, options: { log?: Logger } = {}): Promise<SecureKit> {
  const inbox = await WebhookReceiver.start(t);
  const worker = secureWorker(ctx, inbox, options.log ? { log: options.log } : {});
  const { app } = ctx;
  const kit: SecureKit = {
    ctx,
    inbox,
    worker,
    async settle() {
      await worker.drain();
      await worker.drain();
    },
    api: (method, url, payload) =>
      app.inject({ method, url, ...(payload === undefined ? {} : { payload: payload as Record<string, unknown> }) }),
    async secure(method, serviceName, path, o = {}) {
      const res = await app.inject({
        method,
        url: `/secure/${serviceName}${path}`,
        remoteAddress: o.ip ?? '127.0.0.1',
        headers: o.session ? { authorization: `Bearer ${o.session}` } : {},
        ...(o.payload === undefined ? {} : { payload: o.payload as Record<string, unknown> }),
      });
      // What the request left running in the background (a password-lost code) is done before the test reads it.
      await app.services.background.settled();
      return res;
    },
    login: (serviceName, body, ip) => kit.secure('POST', serviceName, '/session', { payload: body, ip: ip ?? freshIp() }),
    async session(serviceName, person, ip) {
      // Each 2FA login in a time step of its own: a code is accepted once.
      if (person.secret) ctx.clock.advance(30_000);
      const body = {
        login: person.name,
        password: person.password,
        ...(person.secret ? { token: await totpCode(ctx, person.secret) } : {}),
      };
      const res = await kit.login(serviceName, body, ip);
      if (res.statusCode !== 200) throw new Error(`login of ${person.name} answered ${res.statusCode}: ${res.body}`);
      return res.json<{ sessionToken: string; scope: string }>();
    },
    async createUser(serviceName, body, approver) {
      const res = await kit.api('POST', `/1.0/dedicatedCloud/${serviceName}/user`, body);
      if (res.statusCode !== 200) throw new Error(`POST user answered ${res.statusCode}: ${res.body}`);
      const task = res.json<{ taskId: number; state: string; userId: number }>();
      await kit.settle();
      if (task.state === 'waitingTodo' && approver) await kit.approve(serviceName, approver, task.taskId);
      return { userId: task.userId, task };
    },
    async approve(serviceName, approver, taskId) {
      await kit.settle(); // the token leaves
      const op = await kit.operationOf(taskId);
      const { sessionToken } = await kit.session(serviceName, approver);
      const res = await kit.secure('POST', serviceName, `/operation/${op.operation_id}/validate`, {
        session: sessionToken,
        payload: { token: inbox.tokenFor(approver.phone!, op.operation_id) },
      });
      if (res.statusCode !== 200) throw new Error(`validate answered ${res.statusCode}: ${res.body}`);
      await kit.settle();
    },
    async validator(serviceName, o = {}) {
      const person: Person = { userId: 0, name: freshName('val'), password: freshPassword(), phone: freshPhone() };
      const { userId, task } = await kit.createUser(
        serviceName,
        { name: person.name, password: person.password, phoneNumber: person.phone, tokenValidator: true, ...o.extra },
        o.approver,
      );
      if (task.state === 'waitingTodo' && !o.approver) throw new Error('validator: the creation waits for validation');
      person.userId = userId;
      const confirm = await kit.api('POST', `/1.0/dedicatedCloud/${serviceName}/user/${userId}/confirmPhoneNumber`, {
        token: inbox.latestToken(person.phone!),
      });
      if (confirm.statusCode !== 200) throw new Error(`confirmPhoneNumber answered ${confirm.statusCode}: ${confirm.body}`);
      await kit.settle();
      return person;
    },
    async plainUser(serviceName, o = {}) {
      const person: Person = {
        userId: 0,
        name: freshName('usr'),
        password: freshPassword(),
        phone: o.phone === false ? null : freshPhone(),
      };
      const { userId, task } = await kit.createUser(
        serviceName,
        { name: person.name, password: person.password, ...(person.phone ? { phoneNumber: person.phone } : {}) },
        o.approver,
      );
      if (task.state === 'waitingTodo' && !o.approver) throw new Error('plainUser: the creation waits for validation');
      person.userId = userId;
      if (o.confirm && person.phone) {
        const res = await kit.api('POST', `/1.0/dedicatedCloud/${serviceName}/user/${userId}/confirmPhoneNumber`, {
          token: inbox.latestToken(person.phone),
        });
        if (res.statusCode !== 200) throw new Error(`confirmPhoneNumber answered ${res.statusCode}: ${res.body}`);
        await kit.settle();
      }
      return person;
    },
    async enable2FA(serviceName, person, ip) {
      const { sessionToken } = await kit.session(serviceName, person, ip);
      const enrollment = await kit.secure('POST', serviceName, '/credentials/enrollment', { session: sessionToken, ip });
      if (enrollment.statusCode !== 200) throw new Error(`enrollment answered ${enrollment.statusCode}: ${enrollment.body}`);
      const { enrollmentId, secret } = enrollment.json<{ enrollmentId: string; secret: string }>();
      const newPassword = freshPassword();
      const change = await kit.secure('POST', serviceName, '/credentials', {
        session: sessionToken,
        ip,
        payload: { enrollmentId, newPassword, code: await totpCode(ctx, secret) },
      });
      if (change.statusCode !== 202) throw new Error(`credentials answered ${change.statusCode}: ${change.body}`);
      const { operationId } = change.json<{ operationId: number }>();
      await kit.settle();
      const validate = await kit.secure('POST', serviceName, `/operation/${operationId}/validate`, {
        session: sessionToken,
        ip,
        payload: { token: inbox.tokenFor(person.phone!, operationId) },
      });
      if (validate.statusCode !== 200) throw new Error(`validate answered ${validate.statusCode}: ${validate.body}`);
      await kit.settle();
      // The next login must not reuse the enrollment code's time step.
      ctx.clock.advance(30_000);
      return { ...person, password: newPassword, secret };
    },
    async task(serviceName, taskId) {
      const res = await kit.api('GET', `/1.0/dedicatedCloud/${serviceName}/task/${taskId}`);
      if (res.statusCode !== 200) throw new Error(`GET task answered ${res.statusCode}: ${res.body}`);
      return res.json();
    },
    operationOf: (taskId) =>
      ctx.handle.db.selectFrom('operation').selectAll().where('task_id', '=', taskId).executeTakeFirstOrThrow(),
    async userRow(userId) {
      return ctx.handle.db.selectFrom('pcc_user').selectAll().where('user_id', '=', userId).executeTakeFirstOrThrow();
    },
  };
  return kit;
}
