import type { Kysely } from 'kysely';
import type { Database } from '../../db/types.js';
import type { Actor } from '../../http/actor.js';
import { badRequest } from '../../http/errors.js';
import type { TaskDto } from '../../http/schemas.js';
import type { ChangeRecorder, TasksApi } from '../tasks/api.js';
import {
  ENABLE_SECURITY_OPTION,
  SECURITY_OPTIONS,
  type SecurityOptionError,
  type SecurityOptionName,
  type SecurityOptionState,
} from './api.js';
import * as repo from './repository.js';

type Security = Awaited<ReturnType<typeof repo.serviceSecurity>>;

interface Managed {
  description: string;
  enabled(s: Security): boolean;
}

/**
 * The options that mean something here, each read from the service's own properties. The others (certifications,
 * kernels, firewalls of OVH's infrastructure) are not this service's to run: reported disabled and incompatible, and
 * listed only with `showInternal`.
 */
const MANAGED: Partial<Record<SecurityOptionName, Managed>> = {
  advancedSecurity: {
    description:
      'Sensitive changes (users, passwords, phone numbers, token validators, 2FA whitelist) wait for a token validator',
    enabled: (s) => s.advanced_security,
  },
  tokenValidation: {
    description: 'Operations validated with an SMS token by a token validator (follows advancedSecurity)',
    enabled: (s) => s.advanced_security,
  },
  twoFa: {
    description: 'Two-factor authentication (TOTP) on the certified interface, enabled once a user sets it up',
    enabled: (s) => s.two_fa_state === 'enabled',
  },
  twoFaFail2ban: {
    description: 'Failed logins lock the login and the client network out for a growing time',
    enabled: () => true,
  },
  accessNetworkFiltered: {
    description: 'Logins only from the allowed networks (userAccessPolicy filtered)',
    enabled: (s) => s.user_access_policy === 'filtered',
  },
  sessionTimeout: {
    description: 'Idle sessions end after userSessionTimeout seconds',
    enabled: (s) => s.user_session_timeout > 0,
  },
  sslV3: {
    description: 'SSL v3 support, recorded (no listener of this service speaks SSLv3)',
    enabled: (s) => s.ssl_v3,
  },
};

/** What each option needs, brings along, or excludes (`dependenciesTree`). */
const TREE: Partial<Record<SecurityOptionName, { requires: SecurityOptionName[]; depends: SecurityOptionName[] }>> = {
  advancedSecurity: { requires: [], depends: ['tokenValidation'] },
  tokenValidation: { requires: ['advancedSecurity'], depends: [] },
  twoFa: { requires: ['advancedSecurity'], depends: [] },
  twoFaFail2ban: { requires: ['twoFa'], depends: [] },
};

/** Options enabled through `resumePendingEnabling` (the others follow the service's properties or its users). */
const ENABLEABLE: SecurityOptionName[] = ['advancedSecurity'];

export interface CompatibilityMatrixEntry {
  compatible: boolean;
  description: string;
  enabled: boolean;
  name: SecurityOptionName;
  reason: { code: SecurityOptionError; message: string } | null;
  state: SecurityOptionState;
}

export class SecurityOptionsService {
  constructor(
    private readonly db: Kysely<Database>,
    private readonly changes: ChangeRecorder,
    private readonly tasks: TasksApi,
  ) {}

  private async stateOf(serviceName: string, option: SecurityOptionName, s: Security): Promise<SecurityOptionState> {
    const managed = MANAGED[option];
    if (!managed) return 'disabled';
    if (managed.enabled(s)) return 'delivered';
    if (!ENABLEABLE.includes(option)) return 'disabled';
    const task = await repo.openEnablingTask(this.db, serviceName, option);
    return task && task.state !== 'error' ? 'creating' : 'pending';
  }

  /** `GET …/securityOptions`: the state of the service's security, that of advancedSecurity. */
  async get(serviceName: string): Promise<{ state: SecurityOptionState }> {
    const s = await repo.serviceSecurity(this.db, serviceName);
    return { state: await this.stateOf(serviceName, 'advancedSecurity', s) };
  }

  async compatibilityMatrix(
    serviceName: string,
    showIncompatible = true,
    showInternal = false,
  ): Promise<CompatibilityMatrixEntry[]> {
    const s = await repo.serviceSecurity(this.db, serviceName);
    const entries: CompatibilityMatrixEntry[] = [];
    for (const name of SECURITY_OPTIONS) {
      const managed = MANAGED[name];
      if (!managed && !showInternal) continue;
      if (!managed && !showIncompatible) continue;
      entries.push({
        name,
        compatible: Boolean(managed),
        description: managed?.description ?? `${name}: an option of OVH's infrastructure, not run by this service`,
        enabled: managed?.enabled(s) ?? false,
        reason: managed ? null : { code: 'NOT_MANAGEABLE_DIRECTLY' as const, message: `${name} is not run by this service` },
        state: await this.stateOf(serviceName, name, s),
      });
    }
    return entries;
  }

  dependenciesTree(option: SecurityOptionName) {
    const tree = TREE[option] ?? { requires: [], depends: [] };
    return { conflicts: [] as SecurityOptionName[], depends: tree.depends, requires: tree.requires };
  }

  async pendingOptions(serviceName: string): Promise<SecurityOptionName[]> {
    const s = await repo.serviceSecurity(this.db, serviceName);
    return ENABLEABLE.filter((option) => !MANAGED[option]!.enabled(s));
  }

  /**
   * Enables a pending option through a task the worker applies (`enableSecurityOption`). An option already being
   * enabled answers the task doing it (one failed is relaunched); enabling one never waits for validation: it only
   * tightens the service.
   */
  async resumePendingEnabling(serviceName: string, option: SecurityOptionName, actor: Actor): Promise<TaskDto> {
    if (!ENABLEABLE.includes(option))
      throw badRequest(`NOT_MANAGEABLE_DIRECTLY: ${option} is not enabled through resumePendingEnabling here`);
    const s = await repo.serviceSecurity(this.db, serviceName);
    if (MANAGED[option]!.enabled(s)) throw badRequest(`ALREADY_ENABLED: ${option} is already enabled`);
    const open = await repo.openEnablingTask(this.db, serviceName, option);
    if (open?.state === 'error') return this.tasks.resetTaskState(serviceName, open.task_id, 'resumePendingEnabling');
    if (open) return this.tasks.get(serviceName, open.task_id);
    // Two requests racing may both write a task: the second applies nothing (the option is on by then).
    return this.db.transaction().execute(async (trx) => {
      const { task } = await this.changes.record(trx, {
        serviceName,
        task: {
          name: ENABLE_SECURITY_OPTION,
          type: 'securityOption',
          description: `Enable the security option ${option}`,
          createdBy: actor.login,
          createdFrom: 'api',
          payload: { option },
        },
        audit: { type: 'securityOption.enable', actor, data: { option } },
      });
      return task;
    });
  }
}
