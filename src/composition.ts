import type { Kysely } from 'kysely';
import { AuthService } from './auth/service.js';
import type { Clock } from './clock.js';
import { publicUrlOf, trustedProxyEntries, type Config } from './config.js';
import { proxyNetworks } from './modules/whitelist/ip-block.js';
import type { Database } from './db/types.js';
import { AllowedNetworkService } from './modules/allowed-network/service.js';
import { AuditService } from './modules/audit/service.js';
import { OperationService } from './modules/operations/service.js';
import { ServicesService } from './modules/services/service.js';
import { TaskService } from './modules/tasks/service.js';
import { UsersService } from './modules/users/service.js';
import { WhitelistService } from './modules/whitelist/service.js';
import { SecureService } from './secure/service.js';
import { Lockout } from './security/lockout.js';
import { RetentionService } from './modules/retention/service.js';
import type { SecretBox } from './security/secret-box.js';
import { taskHandlers } from './tasks/registry.js';
import { TaskWorker } from './tasks/worker.js';
import type { DatabaseHandle } from './db/database.js';
import { OutboxDrainer } from './notify/outbox.js';
import type { Sender } from './notify/senders.js';
import type { Logger } from 'pino';

/** Every service of the app, built once from the same parts for the server, the CLI and the tests. */
export interface AppServices {
  services: ServicesService;
  whitelist: WhitelistService;
  tasks: TaskService;
  auth: AuthService;
  users: UsersService;
  operations: OperationService;
  secure: SecureService;
  audit: AuditService;
  allowedNetworks: AllowedNetworkService;
  lockout: Lockout;
  retention: RetentionService;
}

export interface ServiceDeps {
  db: Kysely<Database>;
  box: SecretBox;
  clock: Clock;
  config: Config;
}

/** The composition root: the one place that knows every feature and hands each the parts it needs. */
export function buildServices({ db, box, clock, config }: ServiceDeps): AppServices {
  const handlers = taskHandlers();
  const lockout = new Lockout(db, clock);
  const operations = new OperationService(db, box, clock, async (trx, task, now) =>
    handlers.get(task.name)?.onCancel?.(trx, task, { now }),
  );
  const proxies = proxyNetworks(trustedProxyEntries(config.TRUSTED_PROXIES));
  const allowedNetworks = new AllowedNetworkService(db, clock, box, proxies);
  const users = new UsersService(db, box, clock, operations);
  return {
    users,
    operations,
    lockout,
    allowedNetworks,
    retention: new RetentionService(db, clock),
    audit: new AuditService(db),
    secure: new SecureService(db, box, clock, lockout, users, operations, allowedNetworks),
    services: new ServicesService(db, publicUrlOf(config), box),
    whitelist: new WhitelistService(
      db,
      clock,
      {
        maxEntries: config.WHITELIST_MAX_ENTRIES,
        minPrefixV4: config.WHITELIST_MIN_PREFIX_V4,
        minPrefixV6: config.WHITELIST_MIN_PREFIX_V6,
        forbidden: proxies,
      },
      box,
    ),
    tasks: new TaskService(db, clock),
    auth: new AuthService(
      db,
      box,
      clock,
      {
        timeWindowSeconds: config.AUTH_TIME_WINDOW_SECONDS,
        oauthTokenTtlSeconds: config.OAUTH2_TOKEN_TTL_SECONDS,
        credentialValidationSeconds: config.CREDENTIAL_VALIDATION_SECONDS,
        publicUrl: config.PUBLIC_URL,
      },
      lockout,
    ),
  };
}

export interface WorkerDeps {
  handle: DatabaseHandle;
  services: AppServices;
  box: SecretBox;
  clock: Clock;
  config: Pick<Config, 'TASK_LEASE_SECONDS' | 'TASK_POLL_MS'>;
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
  const outbox = sender ? new OutboxDrainer(handle.db, box, sender, log, workerId) : undefined;
  return new TaskWorker({
    handle,
    handlers: taskHandlers(),
    clock,
    box,
    workerId,
    log,
    housekeeping: async () => {
      await services.operations.expireDue();
      await services.operations.purgeUsedTotpSteps();
      const purged = await services.retention.purgeIfDue();
      if (purged && Object.values(purged).some((n) => n > 0)) log.info({ purged }, 'retention: stale rows purged');
      await outbox?.drain(() => clock.now());
    },
    leaseSeconds: config.TASK_LEASE_SECONDS,
    pollMs: config.TASK_POLL_MS,
  });
}
