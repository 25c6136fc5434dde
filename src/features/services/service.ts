import type { Kysely } from 'kysely';
import type { Clock } from '../../clock.js';
import { TtlCache } from '../../core/ttl-cache.js';
import type { Database, ServiceRow } from '../../db/types.js';
import { badRequest, serviceNotFound } from '../../http/errors.js';
import * as repo from './repository.js';
import { lockService } from '../../db/locks.js';
import type { Actor } from '../../http/actor.js';
import type { ChangeRecorder } from '../tasks/api.js';
import type { ServicesApi } from './api.js';

/**
 * What OVH's service model says of things this service does not have (billing, a network uplink, vSphere licences):
 * one fixed value each, listed in the README. The rest of the model is the service's own.
 */
export const FIXED_SERVICE_FIELDS = {
  bandwidth: 'none',
  billingType: 'monthly',
  canMigrateToVCD: false,
  commercialRange: 'pcc-2fa',
  generation: '2.0',
  location: 'local',
  managementInterface: 'vsphere',
  productReference: 'EPCC',
  servicePackName: null,
  spla: false,
  iam: null,
} as const;

export type ServiceDto = ReturnType<ServicesService['toDto']>;

/** OVH's `dedicatedCloud.Capabilities`: what this service can do, as it is. */
export const CAPABILITIES = {
  addRessourceRightStatus: 'active',
  backupStatus: 'no',
  canAddUser: true,
  fullAdminRoUserStatus: 'active',
  nexus1000vStatus: 'no',
  upgradable: false,
  userAccessPolicyStatus: 'active',
} as const;

export const SERVICE_STATES = [
  'available', 'delivered', 'disabled', 'disabling', 'error', 'migrating', 'provisionning', 'recycling', 'reserved',
  'toDisable', 'toProvision', 'toRecycle', 'toRemove', 'toUnprovision', 'unprovisionning', 'upgrading',
] as const; // prettier-ignore
export type ServiceState = (typeof SERVICE_STATES)[number];

const SERVICE_NAME_PATTERN = /^[a-z0-9][a-z0-9.-]{1,62}$/;
const LOGIN_PATTERN = /^[a-z0-9][a-z0-9._-]{1,62}$/;

export class ServicesService implements ServicesApi {
  /** Which account owns a service, as this instance read it (AUTH_CACHE_MS): the check every API call makes. */
  readonly #owners: TtlCache<number | null>;

  constructor(
    private readonly db: Kysely<Database>,
    private readonly publicUrl: string,
    private readonly changes: ChangeRecorder,
    private readonly version: string,
    ownership: { clock: Clock; cacheMs: number },
  ) {
    this.#owners = new TtlCache(ownership.clock, ownership.cacheMs);
  }

  /**
   * Passes when the account owns the service (`null`: an operator); 404 otherwise, exactly as for a service that does
   * not exist. Read once per AUTH_CACHE_MS by each instance: a service moved to another account is refused everywhere
   * within that time.
   */
  async requireOwner(serviceName: string, accountId: number | null): Promise<void> {
    const owner = await this.#owners.getOrLoad(serviceName, async () => {
      const row = await repo.findService(this.db, serviceName, null);
      if (!row) throw serviceNotFound();
      return row.account_id;
    });
    if (accountId !== null && owner !== accountId) throw serviceNotFound();
  }

  /** The service, whoever owns it (the certified interface: its users are not API accounts). */
  async find(serviceName: string): Promise<ServiceRow> {
    return this.require(serviceName, null);
  }

  list(accountId: number | null): Promise<string[]> {
    return repo.listServiceNames(this.db, accountId);
  }

  /** The service if the account owns it; 404 otherwise, exactly as for a service that does not exist. */
  async require(serviceName: string, accountId: number | null): Promise<ServiceRow> {
    const row = await repo.findService(this.db, serviceName, accountId);
    if (!row) throw serviceNotFound();
    return row;
  }

  toDto(row: ServiceRow) {
    const secure = `${this.publicUrl}/secure/${encodeURIComponent(row.service_name)}/`;
    const [major = '0', minor = '0', build = '0'] = this.version.split(/[.+-]/);
    return {
      ...FIXED_SERVICE_FIELDS,
      serviceName: row.service_name,
      description: row.description,
      state: row.state as ServiceState,
      advancedSecurity: row.advanced_security,
      sslV3: row.ssl_v3,
      userAccessPolicy: row.user_access_policy,
      userLimitConcurrentSession: row.user_limit_concurrent_session,
      userLogoutPolicy: row.user_logout_policy,
      userSessionTimeout: row.user_session_timeout,
      certifiedInterfaceUrl: secure,
      // The "web client" the guide logs in to with password and code: the certified interface's login page.
      webInterfaceUrl: `${secure}login`,
      vScopeUrl: `${this.publicUrl}/docs`,
      version: { major, minor, build },
      twoFAState: row.two_fa_state,
    };
  }

  /** OVH's `changeProperties` of the service: written at once, with a task that records it. */
  async changeProperties(
    serviceName: string,
    input: {
      description?: string | undefined;
      userAccessPolicy?: 'filtered' | 'open' | undefined;
      userLimitConcurrentSession?: number | undefined;
      userLogoutPolicy?: 'first' | 'last' | undefined;
      userSessionTimeout?: number | undefined;
      sslV3?: boolean | undefined;
    },
    actor: Actor,
  ) {
    return this.db.transaction().execute(async (trx) => {
      await lockService(trx, serviceName);
      await repo.updateService(trx, serviceName, {
        ...(input.description !== undefined ? { description: input.description } : {}),
        ...(input.userAccessPolicy !== undefined ? { user_access_policy: input.userAccessPolicy } : {}),
        ...(input.userLimitConcurrentSession !== undefined
          ? { user_limit_concurrent_session: input.userLimitConcurrentSession }
          : {}),
        ...(input.userLogoutPolicy !== undefined ? { user_logout_policy: input.userLogoutPolicy } : {}),
        ...(input.userSessionTimeout !== undefined ? { user_session_timeout: input.userSessionTimeout } : {}),
        ...(input.sslV3 !== undefined ? { ssl_v3: input.sslV3 } : {}),
      });
      const { task } = await this.changes.record(trx, {
        serviceName,
        task: {
          name: 'changePropertiesDedicatedCloud',
          type: 'dedicatedCloud',
          description: 'Change the properties of the service',
          createdBy: actor.login,
          createdFrom: 'api',
        },
        audit: { type: 'service.changeProperties', actor, data: { ...input } },
      });
      return task;
    });
  }

  /** Operator command: creates the account if it is new. */
  async ensureAccount(login: string): Promise<void> {
    if (!LOGIN_PATTERN.test(login))
      throw badRequest('[account] must be 2 to 63 lowercase letters, digits, dots, dashes or underscores');
    await this.db.transaction().execute((trx) => repo.findOrCreateAccount(trx, login));
  }

  /** Operator command: creates the account if it is new, then the service. */
  async create(serviceName: string, login: string, description = ''): Promise<{ created: boolean; service: ServiceRow }> {
    if (!SERVICE_NAME_PATTERN.test(serviceName)) {
      throw badRequest('[serviceName] must be 2 to 63 lowercase letters, digits, dots or dashes');
    }
    if (!LOGIN_PATTERN.test(login))
      throw badRequest('[account] must be 2 to 63 lowercase letters, digits, dots, dashes or underscores');
    return this.db.transaction().execute(async (trx) => {
      const account = await repo.findOrCreateAccount(trx, login);
      const inserted = await repo.insertService(trx, serviceName, account.account_id, description);
      if (inserted) return { created: true, service: inserted };
      const existing = await repo.findService(trx, serviceName, null);
      if (!existing || existing.account_id !== account.account_id) {
        throw badRequest(`[serviceName] ${serviceName} already exists and belongs to another account`);
      }
      return { created: false, service: existing };
    });
  }
}
