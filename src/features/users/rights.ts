import type { Kysely } from 'kysely';
import type {
  AccessRight,
  Database,
  NetworkRole,
  ObjectRightType,
  UserObjectRightRow,
  UserRightRow,
  VmNetworkRole,
} from '../../db/types.js';
import type { Actor } from '../../http/actor.js';
import { badRequest, invalidField, notFound } from '../../http/errors.js';
import type { TaskDto } from '../../http/schemas.js';
import type { ChangeRecorder } from '../tasks/api.js';
import { USER_TASKS } from './api.js';
import * as repo from './repository.js';
import * as rights from './rights-repository.js';

/** Most object rights one user may hold: a bound on what a caller can make the database keep. */
export const MAX_OBJECT_RIGHTS = 1000;

export interface RightDto {
  canAddRessource: boolean;
  datacenterId: number;
  networkRole: NetworkRole;
  right: AccessRight;
  rightId: number;
  vmNetworkRole: VmNetworkRole;
}

export interface ObjectRightDto {
  name: string;
  objectRightId: number;
  propagate: boolean;
  right: AccessRight;
  type: ObjectRightType;
  vmwareObjectId: string;
}

export const toRightDto = (row: UserRightRow): RightDto => ({
  canAddRessource: row.can_add_ressource,
  datacenterId: row.datacenter_id,
  networkRole: row.network_role,
  right: row.access_right,
  rightId: row.right_id,
  vmNetworkRole: row.vm_network_role,
});

/** `name` is the object's name in vSphere, which this service does not run: its MoRef stands for it. */
export const toObjectRightDto = (row: UserObjectRightRow): ObjectRightDto => ({
  name: row.vmware_object_id,
  objectRightId: row.object_right_id,
  propagate: row.propagate,
  right: row.access_right,
  type: row.type,
  vmwareObjectId: row.vmware_object_id,
});

/**
 * OVH's datacenter rights (`dedicatedCloud.Right`) and object rights (`dedicatedCloud.ObjectRight`) of a user. They
 * are vSphere permissions, not authenticators: like the user's other vSphere properties they are written with the
 * request, never gated, and a task and an audit event record each change.
 */
export class RightsService {
  constructor(
    private readonly db: Kysely<Database>,
    private readonly changes: ChangeRecorder,
  ) {}

  private async user(serviceName: string, userId: number) {
    const user = await repo.findUser(this.db, serviceName, userId);
    if (!user) throw notFound(`The requested object (userId = ${userId}) does not exist`);
    return user;
  }

  async listRights(serviceName: string, userId: number): Promise<number[]> {
    await this.user(serviceName, userId);
    return rights.listRightIds(this.db, userId);
  }

  async getRight(serviceName: string, userId: number, rightId: number): Promise<RightDto> {
    await this.user(serviceName, userId);
    const row = await rights.findRight(this.db, userId, rightId);
    if (!row) throw notFound(`The requested object (rightId = ${rightId}) does not exist`);
    return toRightDto(row);
  }

  /** PUT of the whole `dedicatedCloud.Right`: its read-only fields (`rightId`, `datacenterId`) are ignored, as OVH does. */
  async changeRight(
    serviceName: string,
    userId: number,
    rightId: number,
    input: Partial<RightDto>,
    actor: Actor,
  ): Promise<TaskDto> {
    return this.db.transaction().execute(async (trx) => {
      const user = await repo.lockUser(trx, serviceName, userId);
      if (!user) throw notFound(`The requested object (userId = ${userId}) does not exist`);
      const row = await rights.findRight(trx, userId, rightId);
      if (!row) throw notFound(`The requested object (rightId = ${rightId}) does not exist`);
      const changes = {
        ...(input.right !== undefined ? { access_right: input.right } : {}),
        ...(input.canAddRessource !== undefined ? { can_add_ressource: input.canAddRessource } : {}),
        ...(input.networkRole !== undefined ? { network_role: input.networkRole } : {}),
        ...(input.vmNetworkRole !== undefined ? { vm_network_role: input.vmNetworkRole } : {}),
      };
      const updated = Object.keys(changes).length ? await rights.updateRight(trx, rightId, changes) : row;
      const { task } = await this.changes.record(trx, {
        serviceName,
        task: {
          name: USER_TASKS.changeRight,
          type: 'user',
          description: `Change the rights of user ${user.name} in datacenter ${row.datacenter_id}`,
          createdBy: actor.login,
          createdFrom: 'api',
          userId,
          payload: { userId, rightId },
        },
        audit: {
          type: 'user.changeRight',
          actor,
          userId,
          data: { rightId, before: toRightDto(row), after: toRightDto(updated) },
        },
      });
      return task;
    });
  }

  async listObjectRights(serviceName: string, userId: number): Promise<number[]> {
    await this.user(serviceName, userId);
    return rights.listObjectRightIds(this.db, userId);
  }

  async getObjectRight(serviceName: string, userId: number, objectRightId: number): Promise<ObjectRightDto> {
    await this.user(serviceName, userId);
    const row = await rights.findObjectRight(this.db, userId, objectRightId);
    if (!row) throw notFound(`The requested object (objectRightId = ${objectRightId}) does not exist`);
    return toObjectRightDto(row);
  }

  async addObjectRight(
    serviceName: string,
    userId: number,
    input: { right: AccessRight; type: ObjectRightType; vmwareObjectId: string; propagate?: boolean | undefined },
    actor: Actor,
  ): Promise<TaskDto> {
    return this.db.transaction().execute(async (trx) => {
      const user = await repo.lockUser(trx, serviceName, userId);
      if (!user) throw notFound(`The requested object (userId = ${userId}) does not exist`);
      if (await rights.findObjectRightFor(trx, userId, input.type, input.vmwareObjectId))
        throw invalidField('vmwareObjectId', `${user.name} already has a right on ${input.type} ${input.vmwareObjectId}`);
      if ((await rights.countObjectRights(trx, userId)) >= MAX_OBJECT_RIGHTS)
        throw badRequest(`User ${user.name} already has ${MAX_OBJECT_RIGHTS} object rights`);
      const row = await rights.insertObjectRight(trx, {
        user_id: userId,
        type: input.type,
        vmware_object_id: input.vmwareObjectId,
        access_right: input.right,
        propagate: input.propagate ?? false,
      });
      const { task } = await this.changes.record(trx, {
        serviceName,
        task: {
          name: USER_TASKS.addObjectRight,
          type: 'user',
          description: `Give user ${user.name} ${input.right} on ${input.type} ${input.vmwareObjectId}`,
          createdBy: actor.login,
          createdFrom: 'api',
          userId,
          payload: { userId, objectRightId: row.object_right_id },
        },
        audit: { type: 'user.addObjectRight', actor, userId, data: toObjectRightDto(row) as unknown as Record<string, unknown> },
      });
      return task;
    });
  }

  async removeObjectRight(serviceName: string, userId: number, objectRightId: number, actor: Actor): Promise<TaskDto> {
    return this.db.transaction().execute(async (trx) => {
      const user = await repo.lockUser(trx, serviceName, userId);
      if (!user) throw notFound(`The requested object (userId = ${userId}) does not exist`);
      const row = await rights.findObjectRight(trx, userId, objectRightId);
      if (!row) throw notFound(`The requested object (objectRightId = ${objectRightId}) does not exist`);
      await rights.deleteObjectRight(trx, objectRightId);
      const { task } = await this.changes.record(trx, {
        serviceName,
        task: {
          name: USER_TASKS.removeObjectRight,
          type: 'user',
          description: `Remove the right of user ${user.name} on ${row.type} ${row.vmware_object_id}`,
          createdBy: actor.login,
          createdFrom: 'api',
          userId,
          payload: { userId, objectRightId },
        },
        audit: {
          type: 'user.removeObjectRight',
          actor,
          userId,
          data: toObjectRightDto(row) as unknown as Record<string, unknown>,
        },
      });
      return task;
    });
  }
}
