import type { Kysely, Transaction } from 'kysely';
import type { Clock } from '../../clock.js';
import type { AllowedNetworkRow, Database } from '../../db/types.js';
import { badRequest, invalidField, notFound } from '../../http/errors.js';
import type { TaskDto } from '../../http/schemas.js';
import { lockService } from '../../db/locks.js';
import type { ChangeRecorder } from '../tasks/api.js';
import { ALLOWED_NETWORK_TASKS, type AllowedNetworksApi } from './api.js';
import { parseIpBlock, type Cidr } from '../../security/ip-block.js';
import type { Actor } from '../../http/actor.js';
import * as repo from './repository.js';

const MAX_NETWORKS = 256;

const toAllowedNetworkDto = (row: AllowedNetworkRow) => ({
  description: row.description,
  network: row.network,
  networkAccessId: row.network_access_id,
  state: row.state,
});

const notFoundId = (id: number) => notFound(`The requested object (networkAccessId = ${id}) does not exist`);
const isUniqueViolation = (err: unknown) => (err as { code?: string } | null)?.code === '23505';

/** OVH's allowedNetwork: the main list of networks that may reach the management interface. */
export class AllowedNetworkService implements AllowedNetworksApi {
  constructor(
    private readonly db: Kysely<Database>,
    private readonly clock: Clock,
    private readonly changes: ChangeRecorder,
    /** Reverse proxies: an allowed network may not hold one (see ip-block.ts). */
    private readonly proxies: readonly Cidr[] = [],
  ) {}

  list(serviceName: string) {
    return repo.listIds(this.db, serviceName);
  }

  async get(serviceName: string, id: number) {
    const row = await repo.find(this.db, serviceName, id);
    if (!row) throw notFoundId(id);
    return toAllowedNetworkDto(row);
  }

  isAllowed(serviceName: string, ip: string) {
    return repo.isAllowed(this.db, serviceName, ip);
  }

  async add(serviceName: string, input: { network: string; description?: string | undefined }, actor: Actor): Promise<TaskDto> {
    const network = parseNetwork(input.network, this.proxies);
    try {
      return await this.db.transaction().execute(async (trx) => {
        await lockService(trx, serviceName);
        if ((await repo.listIds(trx, serviceName)).length >= MAX_NETWORKS)
          throw badRequest(`A service holds ${MAX_NETWORKS} allowed networks at most`);
        const row = await repo.insert(trx, {
          serviceName,
          network,
          description: input.description ?? null,
          now: this.clock.now(),
        });
        return this.task(trx, serviceName, ALLOWED_NETWORK_TASKS.add, `Allow ${network}`, row, actor);
      });
    } catch (err) {
      if (isUniqueViolation(err)) throw invalidField('network', `${network} is already allowed`);
      throw err;
    }
  }

  async update(
    serviceName: string,
    id: number,
    input: { network?: string | undefined; description?: string | null | undefined },
    actor: Actor,
  ) {
    const network = input.network === undefined ? undefined : parseNetwork(input.network, this.proxies);
    try {
      return await this.db.transaction().execute(async (trx) => {
        const row = await repo.find(trx, serviceName, id, true);
        if (!row) throw notFoundId(id);
        if (row.state === 'toDelete') throw badRequest(`The allowed network ${id} is being removed`);
        await repo.update(trx, id, {
          state: 'toUpdate',
          updated_at: this.clock.now(),
          ...(network !== undefined ? { network } : {}),
          ...(input.description !== undefined ? { description: input.description } : {}),
        });
        return this.task(
          trx,
          serviceName,
          ALLOWED_NETWORK_TASKS.update,
          `Update allowed network ${network ?? row.network}`,
          row,
          actor,
        );
      });
    } catch (err) {
      if (isUniqueViolation(err)) throw invalidField('network', `${network} is already allowed`);
      throw err;
    }
  }

  async remove(serviceName: string, id: number, actor: Actor) {
    return this.db.transaction().execute(async (trx) => {
      const row = await repo.find(trx, serviceName, id, true);
      if (!row) throw notFoundId(id);
      if (row.state === 'toDelete') throw badRequest(`The allowed network ${id} is already being removed`);
      await repo.update(trx, id, { state: 'toDelete', updated_at: this.clock.now() });
      return this.task(trx, serviceName, ALLOWED_NETWORK_TASKS.remove, `Remove allowed network ${row.network}`, row, actor);
    });
  }

  private async task(
    trx: Transaction<Database>,
    serviceName: string,
    name: string,
    description: string,
    row: AllowedNetworkRow,
    actor: Actor,
  ) {
    // Not held for validation: an allowed network is the first, network layer of access; a login from it still needs
    // the password and the 2FA code (unlike a twoFAWhitelist entry, which skips the code).
    const { task } = await this.changes.record(trx, {
      serviceName,
      task: {
        name,
        type: 'allowedNetwork',
        description,
        createdBy: actor.login,
        createdFrom: 'api',
        networkAccessId: row.network_access_id,
        payload: { networkAccessId: row.network_access_id },
      },
      audit: { type: `allowedNetwork.${name}`, actor, data: { networkAccessId: row.network_access_id } },
    });
    return task;
  }
}

function parseNetwork(text: string, proxies: readonly Cidr[]): string {
  const block = parseIpBlock(text, { minPrefixV4: 0, minPrefixV6: 0, forbidden: proxies });
  if ('error' in block) throw invalidField('network', `${text} ${block.error}`);
  return `${block.ip}/${block.cidrNetmask}`;
}
