import ipaddr from 'ipaddr.js';
import { Type, type Static } from '@sinclair/typebox';
import { Value } from '@sinclair/typebox/value';

/** An audit purge, the operator's or the retention's, keeps at least this many days of events. */
export const MIN_AUDIT_DAYS = 30;

/**
 * Every setting the process reads from its environment. Validated once at start; nothing else in the code reads
 * `process.env`. The README lists the same variables.
 */
export const ConfigSchema = Type.Object({
  /** `production` refuses what only suits a developer's machine: the `log` SMS sender and the demo seed. */
  NODE_ENV: Type.Optional(Type.String({ minLength: 1 })),
  PORT: Type.Integer({ minimum: 0, maximum: 65535, default: 3000 }),
  HOST: Type.String({ minLength: 1, default: '127.0.0.1' }),
  DATABASE_URL: Type.Optional(Type.String({ pattern: '^postgres(ql)?://' })),
  /**
   * Connections an instance opens to PostgreSQL (plus one for LISTEN). Near the database's cores when it is small: on 2
   * cores, 2 instead of 10 cut its CPU per login from 5.5 to 3.2–4.0 ms (bench). Requests and the worker's lanes share
   * them; nothing holds one connection while waiting for another (the test suite passes with 1).
   */
  DATABASE_POOL_SIZE: Type.Integer({ minimum: 1, maximum: 1000, default: 10 }),
  DATA_DIR: Type.String({ minLength: 1, default: './data' }),
  LOG_LEVEL: Type.Union(
    ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'].map((l) => Type.Literal(l)),
    { default: 'info' },
  ),
  /** Largest request body accepted, in bytes. */
  BODY_LIMIT: Type.Integer({ minimum: 1024, maximum: 10_485_760, default: 65_536 }),
  /**
   * Longest time a client may take to send its request headers, then the whole request, in milliseconds: a client
   * that drips bytes (slowloris) is answered 408 and cut off instead of holding a connection for ever.
   */
  HEADERS_TIMEOUT_MS: Type.Integer({ minimum: 100, maximum: 300_000, default: 10_000 }),
  REQUEST_TIMEOUT_MS: Type.Integer({ minimum: 100, maximum: 600_000, default: 30_000 }),
  /** How long a claimed task stays with the instance that claimed it before another may take it over. */
  TASK_LEASE_SECONDS: Type.Integer({ minimum: 5, maximum: 3600, default: 60 }),
  /** Lanes of tasks an instance applies at once, each lane's claimed tasks in one transaction (their commits share flushes). */
  TASK_CONCURRENCY: Type.Integer({ minimum: 1, maximum: 32, default: 4 }),
  /** Polling fallback of the task worker when no NOTIFY arrives. */
  TASK_POLL_MS: Type.Integer({ minimum: 50, maximum: 60_000, default: 2000 }),
  /** `false` runs an API-only instance that never claims tasks. */
  WORKER_ENABLED: Type.Boolean({ default: true }),
  /**
   * Comma-separated addresses or networks of reverse proxies whose X-Forwarded-For is believed (also `loopback`,
   * `linklocal`, `uniquelocal`). Their X-Forwarded-For is walked from the right; nobody else's is read.
   */
  TRUSTED_PROXIES: Type.String({ default: '' }),
  /** Base URL clients use to reach this service (behind a proxy); defaults to http://HOST:PORT. */
  PUBLIC_URL: Type.Optional(Type.String({ pattern: '^https?://[^/]+$' })),
  /** Requests per minute and client IP on the API, per instance. */
  RATE_LIMIT_PER_MINUTE: Type.Integer({ minimum: 1, maximum: 1_000_000, default: 1200 }),
  /**
   * API calls that hash a password (a user created, a password changed: argon2id up to six times each) per minute and
   * account, per instance; 429 beyond. Operators (the CLI) are not counted.
   */
  API_PASSWORD_CHANGES_PER_MINUTE: Type.Integer({ minimum: 1, maximum: 100_000, default: 30 }),
  /**
   * Most live certified-interface sessions one user holds: a login beyond it ends the user's oldest (audited as
   * `session.ended`, reason `userSessionLimit`). Bounds what one password logged in again and again keeps open, which
   * every login of the service counts when it checks `userLimitConcurrentSession`.
   */
  USER_SESSIONS_MAX: Type.Integer({ minimum: 1, maximum: 1000, default: 10 }),
  /** Most live entries in one service's 2FA whitelist. */
  WHITELIST_MAX_ENTRIES: Type.Integer({ minimum: 1, maximum: 100_000, default: 256 }),
  /** Widest networks that may skip 2FA: shortest prefix accepted for IPv4 and for IPv6. */
  WHITELIST_MIN_PREFIX_V4: Type.Integer({ minimum: 0, maximum: 32, default: 24 }),
  WHITELIST_MIN_PREFIX_V6: Type.Integer({ minimum: 0, maximum: 128, default: 48 }),
  /**
   * Keys that seal stored secrets (AES-256-GCM): `id:base64(32 bytes)[,id:base64…]`, the first seals, all open.
   * Required with DATABASE_URL; on the embedded database a key is made once in DATA_DIR when unset.
   */
  SECRET_KEYS: Type.Optional(Type.String({ minLength: 1 })),
  /** Accepted clock difference of a signed call's X-Ovh-Timestamp, in seconds. */
  AUTH_TIME_WINDOW_SECONDS: Type.Integer({ minimum: 1, maximum: 3600, default: 180 }),
  /**
   * How long an instance trusts what it read of a credential, a bearer token or a service's owner, in ms. At most
   * one second, so that a revocation made anywhere is refused everywhere within a second; 0 reads them on every call.
   */
  AUTH_CACHE_MS: Type.Integer({ minimum: 0, maximum: 1000, default: 1000 }),
  /** Lifetime of an OAuth2 bearer token. */
  OAUTH2_TOKEN_TTL_SECONDS: Type.Integer({ minimum: 60, maximum: 86_400, default: 3600 }),
  /** How long a requested consumer key waits for validation before it expires. */
  CREDENTIAL_VALIDATION_SECONDS: Type.Integer({ minimum: 60, maximum: 604_800, default: 86_400 }),
  /**
   * Days of audit events the worker keeps: older ones are deleted, in bounded batches, each run recorded
   * (`audit.purged`). 0, the default, keeps every event until the operator's `audit purge`; otherwise at least 30.
   */
  AUDIT_RETENTION_DAYS: Type.Integer({ minimum: 0, maximum: 36_500, default: 0 }),
  /** PEM certificate and key files: both set, the server speaks HTTPS only. */
  TLS_CERT: Type.Optional(Type.String({ minLength: 1 })),
  TLS_KEY: Type.Optional(Type.String({ minLength: 1 })),
  /** Create the demo account, service and OAuth2 client on a database with no account (default: on the embedded database only). */
  SEED_DEMO: Type.Optional(Type.Boolean()),
  /** Where SMS and e-mails go: `log` (standard output, development), `webhook` (POST JSON), `ovh` (OVH's SMS API). */
  SMS_PROVIDER: Type.Optional(Type.Union([Type.Literal('log'), Type.Literal('webhook'), Type.Literal('ovh')])),
  SMS_WEBHOOK_URL: Type.Optional(Type.String({ pattern: '^https?://' })),
  /** HMAC-SHA256 key of the webhook's X-Pcc-Signature header; 16 characters at least. */
  SMS_WEBHOOK_SECRET: Type.Optional(Type.String({ minLength: 16 })),
  OVH_SMS_ENDPOINT: Type.String({ pattern: '^https?://', default: 'https://eu.api.ovh.com/1.0' }),
  OVH_SMS_APPLICATION_KEY: Type.Optional(Type.String({ minLength: 1 })),
  OVH_SMS_APPLICATION_SECRET: Type.Optional(Type.String({ minLength: 1 })),
  OVH_SMS_CONSUMER_KEY: Type.Optional(Type.String({ minLength: 1 })),
  /** The OVH SMS account, e.g. sms-ab12345-1. */
  OVH_SMS_SERVICE_NAME: Type.Optional(Type.String({ minLength: 1 })),
  OVH_SMS_SENDER: Type.Optional(Type.String({ minLength: 1, maxLength: 11 })),
  /**
   * argon2id's cost for new password hashes: OWASP's baseline by default (19 MiB, 2 iterations, 1 lane). Lower it only
   * for tests; a hash keeps its own cost, so changing it never breaks an existing password.
   */
  ARGON2_MEMORY_KIB: Type.Integer({ minimum: 8, maximum: 4_194_304, default: 19_456 }),
  ARGON2_ITERATIONS: Type.Integer({ minimum: 1, maximum: 100, default: 2 }),
  ARGON2_PARALLELISM: Type.Integer({ minimum: 1, maximum: 16, default: 1 }),
  /**
   * /metrics (Prometheus): on a listener of its own at METRICS_PORT (0: any free port), on METRICS_HOST (loopback by
   * default), and/or on the API's port behind `Authorization: Bearer <METRICS_TOKEN>`. With neither, no /metrics.
   */
  METRICS_PORT: Type.Optional(Type.Integer({ minimum: 0, maximum: 65535 })),
  METRICS_HOST: Type.Optional(Type.String({ minLength: 1 })),
  /** The bearer token of /metrics: 16 to 512 visible ASCII characters. */
  METRICS_TOKEN: Type.Optional(Type.String({ minLength: 16, maxLength: 512, pattern: '^[\\x21-\\x7e]+$' })),
  /** Longest wait for in-flight requests and the current task on SIGTERM, in milliseconds. */
  SHUTDOWN_TIMEOUT_MS: Type.Integer({ minimum: 1000, maximum: 600_000, default: 25_000 }),
});
export type Config = Static<typeof ConfigSchema>;

const booleans = new Set(['WORKER_ENABLED', 'SEED_DEMO']);

/** Reads and validates the configuration; throws one error that lists every bad variable. */
export function loadConfig(env: NodeJS.ProcessEnv = process.env): Config {
  const raw: Record<string, unknown> = {};
  for (const key of Object.keys(ConfigSchema.properties)) {
    const value = env[key];
    if (value === undefined || value === '') continue;
    const schema = ConfigSchema.properties[key as keyof typeof ConfigSchema.properties] as { type?: string };
    // Value.Convert would truncate 80.5 to 80 and read 1e3 as 1: an integer setting must be written as one.
    raw[key] = booleans.has(key) ? parseBoolean(value) : schema.type === 'integer' && /^\d+$/.test(value) ? Number(value) : value;
  }
  // No Value.Convert: integers and booleans were converted above, strictly; anything else stays text.
  const withDefaults = Value.Default(ConfigSchema, raw);
  const errors = [...Value.Errors(ConfigSchema, withDefaults)];
  if (errors.length > 0) {
    const lines = errors.map((e) => `${e.path.slice(1) || '(root)'}: ${e.message}`);
    throw new Error(`Invalid configuration:\n  ${lines.join('\n  ')}`);
  }
  const config = withDefaults as Config;
  const problems: string[] = [];
  if (Boolean(config.TLS_CERT) !== Boolean(config.TLS_KEY))
    problems.push('TLS_CERT and TLS_KEY go together: set both or neither');
  if (config.SMS_PROVIDER === 'webhook' && (!config.SMS_WEBHOOK_URL || !config.SMS_WEBHOOK_SECRET)) {
    problems.push('SMS_PROVIDER=webhook needs SMS_WEBHOOK_URL and SMS_WEBHOOK_SECRET');
  }
  if (
    config.SMS_PROVIDER === 'ovh' &&
    !(
      config.OVH_SMS_APPLICATION_KEY &&
      config.OVH_SMS_APPLICATION_SECRET &&
      config.OVH_SMS_CONSUMER_KEY &&
      config.OVH_SMS_SERVICE_NAME
    )
  ) {
    problems.push(
      'SMS_PROVIDER=ovh needs OVH_SMS_APPLICATION_KEY, OVH_SMS_APPLICATION_SECRET, OVH_SMS_CONSUMER_KEY and OVH_SMS_SERVICE_NAME',
    );
  }
  for (const entry of trustedProxyEntries(config.TRUSTED_PROXIES)) {
    if (!isProxyEntry(entry)) problems.push(`TRUSTED_PROXIES: ${entry} is not an IP address, a network or a proxy-addr name`);
  }
  if (config.METRICS_HOST !== undefined && config.METRICS_PORT === undefined) {
    problems.push('METRICS_HOST needs METRICS_PORT: it is the address of the metrics listener');
  }
  if (config.METRICS_HOST !== undefined && !isListenAddress(config.METRICS_HOST)) {
    problems.push(`METRICS_HOST: ${config.METRICS_HOST} is not an IP address or localhost`);
  }
  if (config.METRICS_PORT !== undefined && config.METRICS_PORT !== 0 && config.METRICS_PORT === config.PORT) {
    problems.push('METRICS_PORT must differ from PORT: the metrics listener is a port of its own');
  }
  const production = config.NODE_ENV === 'production';
  if (config.HEADERS_TIMEOUT_MS > config.REQUEST_TIMEOUT_MS) {
    problems.push('HEADERS_TIMEOUT_MS must not be longer than REQUEST_TIMEOUT_MS');
  }
  if (config.AUDIT_RETENTION_DAYS > 0 && config.AUDIT_RETENTION_DAYS < MIN_AUDIT_DAYS) {
    problems.push(`AUDIT_RETENTION_DAYS must be 0 (keep every event) or at least ${MIN_AUDIT_DAYS}`);
  }
  if (config.ARGON2_MEMORY_KIB < 8 * config.ARGON2_PARALLELISM) {
    problems.push('ARGON2_MEMORY_KIB must be at least 8 KiB per lane (ARGON2_PARALLELISM)');
  }
  if (config.SMS_PROVIDER === 'log' && production) {
    problems.push('SMS_PROVIDER=log prints tokens and reset codes on standard output: refused with NODE_ENV=production');
  }
  if (config.SEED_DEMO && production) {
    problems.push('SEED_DEMO makes an account whose password goes to standard output: refused with NODE_ENV=production');
  }
  if (problems.length > 0) throw new Error(`Invalid configuration:\n  ${problems.join('\n  ')}`);
  return config;
}

/** SMS_PROVIDER, or `log` by default on a developer's embedded database; `undefined` where it must be said. */
export function smsProviderOf(config: Config): 'log' | 'webhook' | 'ovh' | undefined {
  if (config.SMS_PROVIDER) return config.SMS_PROVIDER;
  return config.DATABASE_URL || config.NODE_ENV === 'production' ? undefined : 'log';
}

/** Whether the first start makes the demo account: by default on a developer's embedded database only. */
export const seedsDemo = (config: Config): boolean =>
  config.SEED_DEMO ?? (!config.DATABASE_URL && config.NODE_ENV !== 'production');

export const trustedProxyEntries = (text: string): string[] =>
  text
    .split(',')
    .map((part) => part.trim())
    .filter(Boolean);

const PROXY_NAMES = new Set(['loopback', 'linklocal', 'uniquelocal']);

function isProxyEntry(entry: string): boolean {
  if (PROXY_NAMES.has(entry)) return true;
  try {
    if (entry.includes('/')) ipaddr.parseCIDR(entry);
    else if (!ipaddr.isValid(entry) || (!entry.includes(':') && !ipaddr.IPv4.isValidFourPartDecimal(entry))) return false;
    return true;
  } catch {
    return false;
  }
}

function isListenAddress(host: string): boolean {
  return host === 'localhost' || (ipaddr.isValid(host) && (host.includes(':') || ipaddr.IPv4.isValidFourPartDecimal(host)));
}

/** Where the metrics listener binds: METRICS_HOST, loopback by default. */
export const metricsHostOf = (config: Config): string => config.METRICS_HOST ?? '127.0.0.1';

function parseBoolean(value: string): unknown {
  if (/^(1|true|yes|on)$/i.test(value)) return true;
  if (/^(0|false|no|off)$/i.test(value)) return false;
  return value;
}

/** The base URL the service gives out: PUBLIC_URL, or its own listening address. */
export function publicUrlOf(config: Config): string {
  if (config.PUBLIC_URL) return config.PUBLIC_URL;
  const scheme = config.TLS_CERT ? 'https' : 'http';
  // A wildcard address listens everywhere but is no address to give out: this machine's loopback is.
  const host = config.HOST === '0.0.0.0' ? '127.0.0.1' : config.HOST === '::' ? 'localhost' : config.HOST;
  return `${scheme}://${host.includes(':') ? `[${host}]` : host}:${config.PORT}`;
}

/** What a start with this configuration should warn about (not errors: the service works, but not as intended). */
export function startupWarnings(config: Config): string[] {
  const warnings: string[] = [];
  if (config.PUBLIC_URL && config.TRUSTED_PROXIES.trim() === '') {
    warnings.push(
      'PUBLIC_URL is set but TRUSTED_PROXIES is empty: behind a proxy every client shares its address (lockout, rate limits, whitelist)',
    );
  }
  if (config.DATABASE_URL && config.WORKER_ENABLED && config.DATABASE_POOL_SIZE <= config.TASK_CONCURRENCY) {
    warnings.push(
      `DATABASE_POOL_SIZE (${config.DATABASE_POOL_SIZE}) is not above TASK_CONCURRENCY (${config.TASK_CONCURRENCY}): the worker's lanes can hold every connection, and requests then wait for theirs`,
    );
  }
  if (config.METRICS_PORT !== undefined && !config.METRICS_TOKEN && !isLoopback(metricsHostOf(config))) {
    warnings.push(
      `METRICS_HOST is ${metricsHostOf(config)}, not a loopback address, and METRICS_TOKEN is unset: /metrics answers anyone who reaches that address`,
    );
  }
  return warnings;
}

function isLoopback(host: string): boolean {
  if (host === 'localhost') return true;
  try {
    return ipaddr.process(host).range() === 'loopback';
  } catch {
    return false;
  }
}
