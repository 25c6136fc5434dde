import type { Kysely, Transaction } from 'kysely';
import type { Clock } from '../../clock.js';
import type { Database, WhitelistRow } from '../../db/types.js';
import { badRequest, invalidField, whitelistNotFound } from '../../http/errors.js';
import type { TaskDto } from '../../http/schemas.js';
import type { Actor } from '../../http/actor.js';
import { lockService } from '../../db/locks.js';
import { BatchedLookup } from '../../db/batched-lookup.js';
import type { ChangeRecord, ChangeRecorder } from '../tasks/api.js';
import { WHITELIST_TASKS } from './api.js';
import { parseIpBlock, type IpBlockLimits } from '../../security/ip-block.js';
import * as repo from './repository.js';

export interface WhitelistDto {
  id: number;
  ip: string;
  cidrNetmask: number;
  description: string;
  state: WhitelistRow['state'];
}

export interface WhitelistLimits extends IpBlockLimits {
  maxEntries: number;
}

const toWhitelistDto = (row: WhitelistRow): WhitelistDto => ({
  id: row.id,
  ip: row.ip,
  cidrNetmask: row.cidr_netmask,
  description: row.description,
  state: row.state,
});

const isUniqueViolation = (err: unknown) => (err as { code?: string } | null)?.code === '23505';

export class WhitelistService {
  /** `get` reads that arrive together share one query. */
  readonly #entries: BatchedLookup<number, WhitelistRow>;

  constructor(
    private readonly db: Kysely<Database>,
    private readonly clock: Clock,
    private readonly limits: WhitelistLimits,
    private readonly changes: ChangeRecorder,
  ) {
    this.#entries = new BatchedLookup((ids) => repo.findEntries(db, ids));
  }

  /**
   * Whether the address is inside an `enabled` entry of the service: its logins skip the code (never the password).
   * The login reads the same test in its one statement (secure/repository.ts `loginContext`); test/login-context.test.ts
   * holds the two to the same answers.
   */
  bypasses(serviceName: string, ip: string): Promise<boolean> {
    return repo.hasEnabledEntryFor(this.db, serviceName, ip);
  }

  list(serviceName: string): Promise<number[]> {
    return repo.listLiveIds(this.db, serviceName);
  }

  async get(serviceName: string, id: number): Promise<WhitelistDto> {
    const row = await this.#entries.load(id);
    if (!row || row.service_name !== serviceName) throw whitelistNotFound(id);
    return toWhitelistDto(row);
  }

  /**
   * Adds a network that will skip the 2FA code. That is a way around the second factor: on a service with
   * advancedSecurity it waits for a token validator (or an operator) like a password change, and the entry stays
   * `enabling`, bypassing nothing, until its task runs.
   */
  async add(serviceName: string, input: { ip: string; description: string }, actor: Actor): Promise<TaskDto> {
    const block = parseIpBlock(input.ip, this.limits);
    if ('error' in block) throw invalidField('ip', `${input.ip} ${block.error}`);
    const network = `${block.ip}/${block.cidrNetmask}`;
    try {
      return await this.db.transaction().execute(async (trx) => {
        // One writer per service at a time: the count below stays true until commit.
        await lockService(trx, serviceName);
        const existing = await repo.findLiveByNetwork(trx, serviceName, block.ip, block.cidrNetmask);
        if (existing) throw duplicate(network, existing.id);
        if ((await repo.countLive(trx, serviceName)) >= this.limits.maxEntries) {
          throw badRequest(
            `The 2FA whitelist of ${serviceName} already holds ${this.limits.maxEntries} entries, the most allowed`,
          );
        }
        const entry = await repo.insertEntry(trx, {
          serviceName,
          ...block,
          description: input.description,
          now: this.clock.now(),
        });
        return this.record(trx, serviceName, WHITELIST_TASKS.add, `Add ${network} to the 2FA whitelist`, entry, actor, {
          approval: { policy: 'advancedSecurity', tokenTo: null, userId: null, summary: `skip 2FA from ${network}` },
        });
      });
    } catch (err) {
      // Two requests raced past the check above on different instances: the partial unique index decided.
      if (isUniqueViolation(err)) throw duplicate(network);
      throw err;
    }
  }

  /** Narrows the bypass: applies without validation. */
  async remove(serviceName: string, id: number, actor: Actor): Promise<TaskDto> {
    return this.db.transaction().execute(async (trx) => {
      const entry = await repo.lockEntry(trx, serviceName, id);
      if (!entry || entry.state === 'removed') throw whitelistNotFound(id);
      if (entry.state === 'removing') throw badRequest(`The 2FA whitelist entry ${id} is already being removed`);
      await repo.updateEntry(trx, id, { state: 'removing', now: this.clock.now() });
      const network = `${entry.ip}/${entry.cidr_netmask}`;
      return this.record(trx, serviceName, WHITELIST_TASKS.remove, `Remove ${network} from the 2FA whitelist`, entry, actor);
    });
  }

  async changeProperties(serviceName: string, id: number, input: { description?: string | undefined }, actor: Actor) {
    return this.db.transaction().execute(async (trx) => {
      const entry = await repo.lockEntry(trx, serviceName, id);
      if (!entry || entry.state === 'removed') throw whitelistNotFound(id);
      if (entry.state === 'removing') throw badRequest(`The 2FA whitelist entry ${id} is being removed and cannot be changed`);
      if (input.description !== undefined)
        await repo.updateEntry(trx, id, { description: input.description, now: this.clock.now() });
      const network = `${entry.ip}/${entry.cidr_netmask}`;
      return this.record(
        trx,
        serviceName,
        WHITELIST_TASKS.change,
        `Change the properties of ${network} in the 2FA whitelist`,
        entry,
        actor,
        { auditData: { description: { from: entry.description, to: input.description ?? entry.description } } },
      );
    });
  }

  private async record(
    trx: Transaction<Database>,
    serviceName: string,
    name: string,
    description: string,
    entry: WhitelistRow,
    actor: Actor,
    extra: { approval?: ChangeRecord['approval']; auditData?: Record<string, unknown> } = {},
  ): Promise<TaskDto> {
    const network = `${entry.ip}/${entry.cidr_netmask}`;
    const { task } = await this.changes.record(trx, {
      serviceName,
      task: {
        name,
        type: 'twoFAWhitelist',
        description,
        createdBy: actor.login,
        createdFrom: 'api',
        network,
        payload: { whitelistId: entry.id },
      },
      audit: {
        type: AUDIT_TYPES[name]!,
        actor,
        data: { whitelistId: entry.id, network, ...extra.auditData },
      },
      ...(extra.approval ? { approval: extra.approval } : {}),
    });
    return task;
  }
}

const AUDIT_TYPES: Record<string, string> = {
  [WHITELIST_TASKS.add]: 'twoFAWhitelist.add',
  [WHITELIST_TASKS.remove]: 'twoFAWhitelist.remove',
  [WHITELIST_TASKS.change]: 'twoFAWhitelist.changeProperties',
};

function duplicate(network: string, id?: number) {
  const which = id === undefined ? '' : ` (id ${id})`;
  return invalidField('ip', `${network} is already in the 2FA whitelist${which}`);
}
