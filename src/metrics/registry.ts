import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from 'prom-client';
import { TASK_STATES } from '../db/types.js';
import type { PoolStats } from '../db/database.js';
import type { SampleRow } from './repository.js';

/** How a login of the certified interface ended, as its audit event says. */
export type LoginResult = 'succeeded' | '2faBypass' | 'failed' | 'locked' | 'refused';
/** Why a login failed (`login.failed`'s `data.reason`). */
export type LoginFailure = 'password' | 'totpMissing' | 'totp' | 'resetToken';

/** What the login counts: handed to the certified interface. */
export interface LoginMetrics {
  login(result: LoginResult, reason?: LoginFailure): void;
}

/** What the outbox counts: handed to the worker's drainer. */
export interface OutboxMetrics {
  messageSent(channel: string): void;
  sendFailed(channel: string, givenUp: boolean): void;
}

export interface MetricsSources {
  /** The database's state at scrape time (src/metrics/repository.ts): one query. */
  sample: () => Promise<SampleRow[]>;
  /** The connection pool's use, when the database has a pool. */
  pool?: (() => PoolStats) | undefined;
  now: () => Date;
  /** Longest wait for the sample: a scrape answers even when the database does not. */
  sampleTimeoutMs?: number;
}

/** Tasks that are still to be applied or looked at: every state but the two final ones. */
const OPEN_TASK_STATES = TASK_STATES.filter((s) => s !== 'done' && s !== 'canceled');
const UNSENT_STATES = ['pending', 'sending', 'failed'] as const;
const LOCK_KINDS = ['account', 'pair', 'network'] as const;
const LOGIN_OUTCOMES: Array<[LoginResult, LoginFailure | '']> = [
  ['succeeded', ''],
  ['2faBypass', ''],
  ['locked', ''],
  ['refused', ''],
  ['failed', 'password'],
  ['failed', 'totpMissing'],
  ['failed', 'totp'],
  ['failed', 'resetToken'],
];
const CHANNELS = ['sms', 'email'];

/**
 * The metrics of one app, in its own prom-client registry (never the global one: several apps in one process, as in
 * the tests, keep apart). Counters and the request histogram move as things happen; the queue, backlog, lockout and
 * pool gauges are read when scraped.
 */
export class Metrics implements LoginMetrics, OutboxMetrics {
  readonly registry = new Registry();
  readonly #requests: Histogram<'method' | 'route' | 'status'>;
  /** Each label set's series, found once: labels are a route's pattern, so the map is bounded by the routes. */
  readonly #requestSeries = new Map<string, ReturnType<Histogram<'method' | 'route' | 'status'>['labels']>>();
  readonly #logins: Counter<'result' | 'reason'>;
  readonly #sent: Counter<'channel'>;
  readonly #sendFailures: Counter<'channel' | 'given_up'>;
  readonly #taskDepth: Gauge<'state'>;
  readonly #taskAge: Gauge<'state'>;
  readonly #outbox: Gauge<'state'>;
  readonly #outboxAge: Gauge<'state'>;
  readonly #lockouts: Gauge<'kind'>;
  readonly #pool: Gauge<'state'>;
  readonly #poolMax: Gauge;
  readonly #sampleUp: Gauge;

  constructor(private readonly sources: MetricsSources) {
    const registers = [this.registry];
    this.#requests = new Histogram({
      name: 'pcc_http_request_duration_seconds',
      help: 'HTTP requests by method, route pattern (never the raw URL) and status code',
      labelNames: ['method', 'route', 'status'],
      buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
      registers,
    });
    this.#logins = new Counter({
      name: 'pcc_login_attempts_total',
      help: 'Logins of the certified interface by result (succeeded, 2faBypass, failed, locked, refused) and, for failed, reason',
      labelNames: ['result', 'reason'],
      registers,
    });
    this.#sent = new Counter({
      name: 'pcc_outbox_sent_total',
      help: 'Messages (SMS, e-mail) handed to the sender',
      labelNames: ['channel'],
      registers,
    });
    this.#sendFailures = new Counter({
      name: 'pcc_outbox_send_failures_total',
      help: 'Failed sending attempts; given_up="true" when the message is abandoned',
      labelNames: ['channel', 'given_up'],
      registers,
    });
    this.#taskDepth = new Gauge({
      name: 'pcc_task_queue_depth',
      help: 'Tasks not done or canceled, by state',
      labelNames: ['state'],
      registers,
    });
    this.#taskAge = new Gauge({
      name: 'pcc_task_queue_oldest_age_seconds',
      help: 'Seconds since the execution date of the oldest task in each state (0 when none)',
      labelNames: ['state'],
      registers,
    });
    this.#outbox = new Gauge({
      name: 'pcc_outbox_backlog',
      help: 'Messages not sent, by state (pending, sending, failed: given up)',
      labelNames: ['state'],
      registers,
    });
    this.#outboxAge = new Gauge({
      name: 'pcc_outbox_oldest_age_seconds',
      help: 'Seconds since the oldest unsent message of each state was queued (0 when none)',
      labelNames: ['state'],
      registers,
    });
    this.#lockouts = new Gauge({
      name: 'pcc_lockouts_active',
      help: 'Failure counters holding a running lock, by kind (account, pair: account from one network, network)',
      labelNames: ['kind'],
      registers,
    });
    this.#pool = new Gauge({
      name: 'pcc_db_pool_connections',
      help: 'Database connections by state (idle, busy) and clients waiting for one (waiting)',
      labelNames: ['state'],
      registers,
    });
    this.#poolMax = new Gauge({
      name: 'pcc_db_pool_max_connections',
      help: 'Most connections the pool opens (1 on the embedded database: one session)',
      registers,
    });
    this.#sampleUp = new Gauge({
      name: 'pcc_metrics_database_sample_ok',
      help: '1 when this scrape read the queue, backlog and lockout gauges from the database, 0 when it failed',
      registers,
    });
    for (const [result, reason] of LOGIN_OUTCOMES) this.#logins.inc({ result, reason }, 0);
    for (const channel of CHANNELS) {
      this.#sent.inc({ channel }, 0);
      for (const givenUp of ['false', 'true']) this.#sendFailures.inc({ channel, given_up: givenUp }, 0);
    }
  }

  /** Process metrics (CPU, memory, event loop, GC): once per process, by the server, never in tests. */
  collectProcessMetrics(): void {
    collectDefaultMetrics({ register: this.registry, prefix: 'pcc_' });
  }

  /** One answered request; `route` is the route's pattern, or `(unmatched)`. */
  request(method: string, route: string, status: number, seconds: number): void {
    const key = `${method} ${status} ${route}`;
    let series = this.#requestSeries.get(key);
    if (series === undefined) {
      series = this.#requests.labels({ method, route, status: String(status) });
      this.#requestSeries.set(key, series);
    }
    series.observe(seconds);
  }

  login(result: LoginResult, reason?: LoginFailure): void {
    this.#logins.inc({ result, reason: reason ?? '' });
  }

  messageSent(channel: string): void {
    this.#sent.inc({ channel });
  }

  sendFailed(channel: string, givenUp: boolean): void {
    this.#sendFailures.inc({ channel, given_up: String(givenUp) });
  }

  get contentType(): string {
    return this.registry.contentType;
  }

  /** The Prometheus text: the gauges are read from the database first (one query, bounded in time). */
  async scrape(): Promise<string> {
    const pool = this.sources.pool?.();
    if (pool) {
      this.#poolMax.set(pool.max);
      this.#pool.set({ state: 'idle' }, pool.idle);
      this.#pool.set({ state: 'busy' }, pool.total - pool.idle);
      this.#pool.set({ state: 'waiting' }, pool.waiting);
    }
    try {
      this.#applySample(await withTimeout(this.sources.sample(), this.sources.sampleTimeoutMs ?? 2000));
      this.#sampleUp.set(1);
    } catch {
      // Stale numbers would look healthy: without a sample, the gauges read from the database are left out.
      for (const gauge of [this.#taskDepth, this.#taskAge, this.#outbox, this.#outboxAge, this.#lockouts]) gauge.reset();
      this.#sampleUp.set(0);
    }
    return this.registry.metrics();
  }

  #applySample(rows: SampleRow[]): void {
    const now = this.sources.now().getTime();
    const age = (oldest: Date | null) => (oldest ? Math.max(0, (now - oldest.getTime()) / 1000) : 0);
    const of = (source: SampleRow['source'], label: string) => rows.find((r) => r.source === source && r.label === label);
    for (const state of OPEN_TASK_STATES) {
      const row = of('task', state);
      this.#taskDepth.set({ state }, row?.n ?? 0);
      this.#taskAge.set({ state }, age(row?.oldest ?? null));
    }
    for (const state of UNSENT_STATES) {
      const row = of('outbox', state);
      this.#outbox.set({ state }, row?.n ?? 0);
      this.#outboxAge.set({ state }, age(row?.oldest ?? null));
    }
    for (const kind of LOCK_KINDS) this.#lockouts.set({ kind }, of('lockout', kind)?.n ?? 0);
  }
}

function withTimeout<T>(promise: Promise<T>, ms: number): Promise<T> {
  let timer: NodeJS.Timeout;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`timed out after ${ms} ms`)), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}
