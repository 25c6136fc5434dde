import type { Kysely } from 'kysely';
import type { Logger } from 'pino';
import type { Clock } from './clock.js';
import { publicUrlOf, trustedProxyEntries, type Config } from './config.js';
import type { TaskHandlers } from './core/task-handler.js';
import type { DatabaseHandle } from './db/database.js';
import type { Database } from './db/types.js';
import { AllowedNetworkService } from './features/allowed-network/service.js';
import { AuditService } from './features/audit/service.js';
import { OperationService } from './features/operations/service.js';
import { AuthService } from './features/ovh-auth/service.js';
import { RetentionService } from './features/retention/service.js';
import { HashingBudget } from './security/hashing-budget.js';
import { SecureService } from './features/secure/service.js';
import { ServicesService } from './features/services/service.js';
import { ChangeRecorderService } from './features/tasks/record-change.js';
import { TaskService } from './features/tasks/service.js';
import { tokenRecipients } from './features/users/recipients.js';
import { UsersService } from './features/users/service.js';
import { RightsService } from './features/users/rights.js';
import { SecurityOptionsService } from './features/security-options/service.js';
import { WhitelistService } from './features/whitelist/service.js';
import { OutboxDrainer } from './notify/outbox.js';
import type { Sender } from './notify/senders.js';
import { proxyNetworks } from './security/ip-block.js';
import { Lockout } from './security/lockout.js';
import { configurePasswordHashing } from './security/passwords.js';
import type { SecretBox } from './security/secret-box.js';
import { BackgroundWork } from './core/background.js';
import { Metrics } from './metrics/registry.js';
import { sampleState } from './metrics/repository.js';
import type { PoolStats } from './db/database.js';
import { taskHandlers } from './worker/registry.js';
import { TaskWorker } from './worker/worker.js';
import { serviceVersion } from './version.js';

/** Every service of the app, built once from the same parts for the server, the CLI and the tests. */
export interface AppServices {
  services: ServicesService;
  whitelist: WhitelistService;
  tasks: TaskService;
  auth: AuthService;
  users: UsersService;
  rights: RightsService;
  securityOptions: SecurityOptionsService;
  operations: OperationService;
  secure: SecureService;
  audit: AuditService;
  allowedNetworks: AllowedNetworkService;
  lockout: Lockout;
  retention: RetentionService;
  /** Each API account's budget of calls that hash a password (API_PASSWORD_CHANGES_PER_MINUTE). */
  hashingBudget: HashingBudget;
  /** Work started by requests that answer before it ends; the app waits for it on close. */
  background: BackgroundWork;
  /** This app's metrics, in a registry of its own (/metrics). */
  metrics: Metrics;
  /** The handlers of every task name, handed what they reach in other features. */
  handlers: TaskHandlers;
}

export interface ServiceDeps {
  db: Kysely<Database>;
  box: SecretBox;
  clock: Clock;
  config: Config;
  /** The database's connection use, for the metrics (`DatabaseHandle.poolStats`). */
  pool?: () => PoolStats;
}

/**
 * The composition root: the one place that knows every feature, and hands each the others it needs through their
 * interfaces (a feature imports no other feature's code). The order below is the order of their dependencies; the
 * one late binding (a task's cancel calls its handler, whose features come later) goes through a closure.
 */
export function buildServices({ db, box, clock, config, pool }: ServiceDeps): AppServices {
  configurePasswordHashing({
    memoryKib: config.ARGON2_MEMORY_KIB,
    iterations: config.ARGON2_ITERATIONS,
    parallelism: config.ARGON2_PARALLELISM,
  });
  const background = new BackgroundWork();
  const metrics = new Metrics({ sample: () => sampleState(db, clock.now()), pool, now: () => clock.now() });
  const audit = new AuditService(db);
  const lockout = new Lockout(db, clock);
  let handlers: TaskHandlers = new Map();
  const tasks = new TaskService(db, clock, async (trx, task, now) => handlers.get(task.name)?.onCancel?.(trx, task, { now }));
  const publicUrl = publicUrlOf(config);
  const operationPage = (serviceName: string, operationId: number) =>
    `${publicUrl}/secure/${encodeURIComponent(serviceName)}/validation/${operationId}`;
  const operations = new OperationService(db, box, clock, audit, tasks, operationPage);
  const changes = new ChangeRecorderService(box, clock, operations, tokenRecipients, audit);
  const users = new UsersService(db, changes, audit, operations, clock);
  const proxies = proxyNetworks(trustedProxyEntries(config.TRUSTED_PROXIES));
  const allowedNetworks = new AllowedNetworkService(db, clock, changes, proxies);
  const services = new ServicesService(db, publicUrl, changes, serviceVersion(), { clock, cacheMs: config.AUTH_CACHE_MS });
  const whitelist = new WhitelistService(
    db,
    clock,
    {
      maxEntries: config.WHITELIST_MAX_ENTRIES,
      minPrefixV4: config.WHITELIST_MIN_PREFIX_V4,
      minPrefixV6: config.WHITELIST_MIN_PREFIX_V6,
      forbidden: proxies,
    },
    changes,
  );
  const secure = new SecureService({
    db,
    box,
    clock,
    lockout,
    audit,
    users,
    operations,
    allowedNetworks,
    services,
    tasks,
    background,
    metrics,
    userSessionsMax: config.USER_SESSIONS_MAX,
  });
  handlers = taskHandlers({ approvals: operations, sessions: secure, audit });
  const auth = new AuthService(
    db,
    box,
    clock,
    {
      timeWindowSeconds: config.AUTH_TIME_WINDOW_SECONDS,
      oauthTokenTtlSeconds: config.OAUTH2_TOKEN_TTL_SECONDS,
      credentialValidationSeconds: config.CREDENTIAL_VALIDATION_SECONDS,
      publicUrl: config.PUBLIC_URL,
      cacheMs: config.AUTH_CACHE_MS,
    },
    lockout,
    audit,
  );
  return {
    audit,
    lockout,
    tasks,
    operations,
    users,
    rights: new RightsService(db, changes),
    securityOptions: new SecurityOptionsService(db, changes, tasks),
    allowedNetworks,
    services,
    whitelist,
    secure,
    auth,
    handlers,
    retention: new RetentionService(db, clock, { expiry: audit, days: config.AUDIT_RETENTION_DAYS }),
    hashingBudget: new HashingBudget(clock, config.API_PASSWORD_CHANGES_PER_MINUTE),
    background,
    metrics,
  };
}

export interface WorkerDeps {
  handle: DatabaseHandle;
  services: AppServices;
  box: SecretBox;
  clock: Clock;
  config: Pick<Config, 'TASK_LEASE_SECONDS' | 'TASK_POLL_MS'> & Partial<Pick<Config, 'TASK_CONCURRENCY'>>;
  log: Logger;
  workerId: string;
  /** Where queued SMS and e-mails go; without one, the worker leaves them queued (an instance that sends nothing). */
  sender?: Sender;
}

/**
 * The worker of an instance: applies due tasks, then its housekeeping: expired operations cancel their tasks, used
 * TOTP steps and stale rows are purged, and queued messages leave.
 */
export function buildWorker({ handle, services, box, clock, config, log, workerId, sender }: WorkerDeps): TaskWorker {
  const outbox = sender ? new OutboxDrainer(handle.db, box, sender, log, workerId, services.metrics) : undefined;
  return new TaskWorker({
    handle,
    handlers: services.handlers,
    clock,
    box,
    workerId,
    log,
    // Each step runs whatever befell the ones before it (a retention the database role may not run must not stop the
    // expiries or the messages); the first failure is then the pass's, and logged as such.
    housekeeping: async () => {
      const failures: unknown[] = [];
      const step = async (work: () => Promise<unknown>) => {
        try {
          await work();
        } catch (err) {
          failures.push(err);
        }
      };
      await step(() => services.operations.expireDue());
      await step(() => services.users.expireDue());
      await step(async () => {
        const purged = await services.retention.purgeIfDue();
        if (purged && Object.values(purged).some((n) => n > 0)) log.info({ purged }, 'retention: stale rows purged');
      });
      await step(async () => outbox?.drain(() => clock.now()));
      if (failures.length > 0) throw failures.length === 1 ? failures[0] : new AggregateError(failures, 'housekeeping');
    },
    sendMessages: async () => {
      await outbox?.drain(() => clock.now());
    },
    leaseSeconds: config.TASK_LEASE_SECONDS,
    pollMs: config.TASK_POLL_MS,
    concurrency: config.TASK_CONCURRENCY ?? 1,
  });
}
