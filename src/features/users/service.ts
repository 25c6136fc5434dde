import type { Kysely, Transaction } from 'kysely';
import type { Clock } from '../../clock.js';
import type { AccessRight, Database, NetworkRole, UserRow, VmNetworkRole } from '../../db/types.js';
import { lockService } from '../../db/locks.js';
import type { Actor } from '../../http/actor.js';
import { badRequest, invalidField, notFound } from '../../http/errors.js';
import type { TaskDto } from '../../http/schemas.js';
import { hashPassword } from '../../security/passwords.js';
import { randomAlphanumeric } from '../../security/tokens.js';
import type { AuditLog } from '../audit/api.js';
import type { Operations } from '../operations/api.js';
import type { ChangeRecorder } from '../tasks/api.js';
import { USER_TASKS, type PendingChange, type UserTaskRequest, type UsersApi } from './api.js';
import { toUserDto, type UserDto } from './dto.js';
import { checkNewPassword, passwordPolicyOf, type PasswordPolicy } from './password-policy.js';
import { PhoneConfirmation } from './phone-confirmation.js';
import * as repo from './repository.js';
import { tokenRecipients } from './recipients.js';
import { normalizePhoneNumber } from './phone-number.js';
import { insertRight } from './rights-repository.js';

export interface NewUserInput {
  name: string;
  password?: string | undefined;
  email?: string | undefined;
  phoneNumber?: string | undefined;
  tokenValidator?: boolean | undefined;
  firstName?: string | undefined;
  lastName?: string | undefined;
  canManageRights?: boolean | undefined;
  encryptionRight?: boolean | undefined;
  nsxRight?: boolean | undefined;
  receiveAlerts?: boolean | undefined;
  right?: AccessRight | undefined;
  canAddRessource?: boolean | undefined;
  networkRole?: NetworkRole | undefined;
  vmNetworkRole?: VmNetworkRole | undefined;
  expirationDate?: string | undefined;
}

/** A phone number in either spelling, as OVH's dotted form; 400 naming the field otherwise. */
export function phoneNumberOf(input: string | undefined): string | undefined {
  if (input === undefined) return undefined;
  const result = normalizePhoneNumber(input);
  if (!result.ok) throw invalidField('phoneNumber', result.reason);
  return result.value;
}

export interface UserPropertiesInput {
  canManageIpFailOvers?: boolean | undefined;
  canManageNetwork?: boolean | undefined;
  canManageRights?: boolean | undefined;
  encryptionRight?: boolean | undefined;
  fullAdminRo?: boolean | undefined;
  nsxRight?: boolean | undefined;
  receiveAlerts?: boolean | undefined;
  tokenValidator?: boolean | undefined;
  email?: string | undefined;
  firstName?: string | undefined;
  lastName?: string | undefined;
  phoneNumber?: string | undefined;
}

export class UsersService implements UsersApi {
  readonly #phone: PhoneConfirmation;

  constructor(
    private readonly db: Kysely<Database>,
    private readonly changes: ChangeRecorder,
    private readonly audit: AuditLog,
    operations: Operations,
    private readonly clock: Clock,
  ) {
    this.#phone = new PhoneConfirmation(db, operations, changes);
  }

  findByName(serviceName: string, name: string): Promise<UserRow | undefined> {
    return repo.findUserByName(this.db, serviceName, name);
  }

  findById(userId: number): Promise<UserRow | undefined> {
    return repo.findUserById(this.db, userId);
  }

  checkNewPassword(serviceName: string, userId: number | null, password: string, field = 'password'): Promise<void> {
    return checkNewPassword(this.db, serviceName, userId, password, field);
  }

  tokenRecipients = tokenRecipients;

  list(serviceName: string, name?: string): Promise<number[]> {
    return repo.listUserIds(this.db, serviceName, name);
  }

  async require(serviceName: string, userId: number): Promise<UserRow> {
    const row = await repo.findUser(this.db, serviceName, userId);
    if (!row) throw notFound(`The requested object (userId = ${userId}) does not exist`);
    return row;
  }

  async get(serviceName: string, userId: number): Promise<UserDto> {
    return toUserDto(await this.require(serviceName, userId));
  }

  passwordPolicy(serviceName: string): Promise<PasswordPolicy> {
    return passwordPolicyOf(this.db, serviceName);
  }

  async create(serviceName: string, input: NewUserInput, actor: Actor): Promise<TaskDto> {
    const phoneNumber = phoneNumberOf(input.phoneNumber);
    const expirationDate = input.expirationDate === undefined ? null : new Date(input.expirationDate);
    if (expirationDate && expirationDate.getTime() <= this.clock.now().getTime())
      throw invalidField('expirationDate', 'is not in the future');
    // A name taken already is refused before argon2id runs (and again under the service's lock below).
    if (await repo.findUserByName(this.db, serviceName, input.name)) throw invalidField('name', `${input.name} already exists`);
    if (input.password !== undefined) await this.checkNewPassword(serviceName, null, input.password);
    const generated = input.password === undefined ? generatePassword() : undefined;
    const passwordHash = await hashPassword(input.password ?? generated!);
    try {
      return await this.db.transaction().execute(async (trx) => {
        await lockService(trx, serviceName);
        if (await repo.findUserByName(trx, serviceName, input.name)) throw invalidField('name', `${input.name} already exists`);
        const user = await repo.insertUser(trx, {
          service_name: serviceName,
          name: input.name,
          email: input.email ?? null,
          first_name: input.firstName ?? null,
          last_name: input.lastName ?? null,
          phone_number: phoneNumber ?? null,
          is_token_validator: input.tokenValidator ?? false,
          can_manage_rights: input.canManageRights ?? false,
          encryption_right: input.encryptionRight ?? false,
          nsx_right: input.nsxRight ?? false,
          receive_alerts: input.receiveAlerts ?? false,
          state: 'creating',
          password_hash: null,
          password_changed_at: null,
          totp_secret_ciphertext: null,
          totp_enabled_at: null,
          deleted_at: null,
          expiration_date: expirationDate,
        });
        // "Determine what kind of access the User will have in all Datacenters" (OVH): the service has one.
        await insertRight(trx, {
          user_id: user.user_id,
          datacenter_id: await repo.serviceDatacenterId(trx, serviceName),
          access_right: input.right ?? 'disabled',
          can_add_ressource: input.canAddRessource ?? false,
          network_role: input.networkRole ?? 'noAccess',
          vm_network_role: input.vmNetworkRole ?? 'noAccess',
        });
        // The number receives its confirmation token when the creation applies (a creation waiting for validation
        // sends nothing), and operation tokens only once confirmed.
        return this.createTask(trx, {
          serviceName,
          user,
          name: USER_TASKS.create,
          description: `Create user ${user.name}`,
          change: { passwordHash, ...(generated ? { sendPassword: generated } : {}) },
          actor,
          requester: null,
          // What a token validator approves must say what it grants: the right to validate, and the number.
          summary: [
            `create user ${user.name}`,
            ...(user.is_token_validator ? ['as a token validator'] : []),
            ...(user.phone_number ? [`with phone ${user.phone_number}`] : []),
          ].join(' '),
        });
      });
    } catch (err) {
      if ((err as { code?: string }).code === '23505') throw invalidField('name', `${input.name} already exists`);
      throw err;
    }
  }

  async remove(serviceName: string, userId: number, actor: Actor): Promise<TaskDto> {
    return this.db.transaction().execute(async (trx) => {
      const user = await this.lock(trx, serviceName, userId);
      if (user.state === 'deleting') throw badRequest(`User ${user.name} is already being removed`);
      // A user still being created has no account to remove yet: cancel the creation's task instead. Marking him
      // `deleting` would make him active (a removal waiting for validation leaves the user as he is).
      if (user.state === 'creating') throw badRequest(`User ${user.name} is still being created`);
      // A user in `error` stays so (inactive) until the removal applies; only a delivered user is marked.
      if (user.state === 'delivered') await repo.updateUser(trx, userId, { state: 'deleting' });
      return this.createTask(trx, {
        serviceName,
        user,
        name: USER_TASKS.remove,
        description: `Remove user ${user.name}`,
        actor,
        requester: null,
        summary: `remove user ${user.name}`,
      });
    });
  }

  async changeProperties(serviceName: string, userId: number, raw: UserPropertiesInput, actor: Actor): Promise<TaskDto> {
    const input = { ...raw, phoneNumber: phoneNumberOf(raw.phoneNumber) };
    return this.db.transaction().execute(async (trx) => {
      const user = await this.lock(trx, serviceName, userId);
      // The number and the address that receive tokens and reset codes are authenticators, and validating operations is
      // a privilege: changing them is sensitive, like a password. The task applies them, so with advancedSecurity only
      // once a token validator agreed; otherwise whoever holds API credentials could point a user's SMS at his own phone.
      const properties: NonNullable<PendingChange['properties']> = {
        ...(input.phoneNumber !== undefined && input.phoneNumber !== user.phone_number ? { phoneNumber: input.phoneNumber } : {}),
        ...(input.email !== undefined && input.email !== user.email ? { email: input.email } : {}),
        // Granting the right, and taking it away: the gate must not be switched off by demoting its validators.
        ...(input.tokenValidator !== undefined && input.tokenValidator !== user.is_token_validator
          ? { tokenValidator: input.tokenValidator }
          : {}),
      };
      const sensitive = Object.keys(properties).length > 0;
      const immediate = {
        ...(input.canManageIpFailOvers !== undefined ? { can_manage_ip_fail_overs: input.canManageIpFailOvers } : {}),
        ...(input.canManageNetwork !== undefined ? { can_manage_network: input.canManageNetwork } : {}),
        ...(input.canManageRights !== undefined ? { can_manage_rights: input.canManageRights } : {}),
        ...(input.encryptionRight !== undefined ? { encryption_right: input.encryptionRight } : {}),
        ...(input.fullAdminRo !== undefined ? { full_admin_ro: input.fullAdminRo } : {}),
        ...(input.nsxRight !== undefined ? { nsx_right: input.nsxRight } : {}),
        ...(input.receiveAlerts !== undefined ? { receive_alerts: input.receiveAlerts } : {}),
        ...(input.firstName !== undefined ? { first_name: input.firstName } : {}),
        ...(input.lastName !== undefined ? { last_name: input.lastName } : {}),
      };
      if (Object.keys(immediate).length > 0) await repo.updateUser(trx, userId, immediate);
      await this.audit.record(trx, {
        serviceName,
        type: 'user.changeProperties',
        actor: actor.login,
        ip: actor.ip,
        userId,
        data: { changed: Object.keys(input).filter((k) => input[k as keyof UserPropertiesInput] !== undefined) },
      });
      return this.createTask(trx, {
        serviceName,
        user,
        name: USER_TASKS.changeProperties,
        description: `Change the properties of user ${user.name}`,
        ...(sensitive ? { change: { properties } } : {}),
        actor,
        requester: null,
        // What the validator agrees to, value by value: the number or address that will receive codes, the right given or taken.
        summary: sensitive
          ? `change user ${user.name}: ${[
              ...(properties.phoneNumber !== undefined ? [`phone number ${properties.phoneNumber}`] : []),
              ...(properties.email !== undefined ? [`e-mail ${properties.email}`] : []),
              ...(properties.tokenValidator !== undefined
                ? [`token validator right ${properties.tokenValidator ? 'granted' : 'revoked'}`]
                : []),
            ].join(', ')}`
          : `change properties of ${user.name}`,
      });
    });
  }

  /** `confirmPhoneNumber`: the token the number received marks it confirmed. */
  async confirmPhoneNumber(serviceName: string, userId: number, token: string, actor: Actor): Promise<TaskDto> {
    return this.#phone.confirm(await this.require(serviceName, userId), token, actor);
  }

  async changePassword(serviceName: string, userId: number, password: string | undefined, actor: Actor): Promise<TaskDto> {
    if (password !== undefined) await this.checkNewPassword(serviceName, userId, password);
    const generated = password === undefined ? generatePassword() : undefined;
    const passwordHash = await hashPassword(password ?? generated!);
    return this.db.transaction().execute(async (trx) => {
      const user = await this.lock(trx, serviceName, userId);
      return this.createTask(trx, {
        serviceName,
        user,
        name: USER_TASKS.changePassword,
        description: `Change the password of user ${user.name}`,
        change: { passwordHash, ...(generated ? { sendPassword: generated } : {}) },
        actor,
        requester: null,
        summary: `change the password of ${user.name}`,
      });
    });
  }

  async setActivation(serviceName: string, userId: number, enable: boolean, actor: Actor): Promise<TaskDto> {
    return this.db.transaction().execute(async (trx) => {
      const user = await this.lock(trx, serviceName, userId);
      // Only a real change is asked for, and only one at a time: `enable` of an enabled user would mark him `toEnable`
      // (inactive) at once, and a cancel must find the state the request left.
      const from = enable ? 'disabled' : 'enabled';
      if (user.activation_state !== from) {
        throw badRequest(
          user.activation_state === (enable ? 'enabled' : 'disabled')
            ? `User ${user.name} is already ${user.activation_state}`
            : `User ${user.name} has an activation change pending (${user.activation_state})`,
        );
      }
      await repo.updateUser(trx, userId, { activation_state: enable ? 'toEnable' : 'toDisable' });
      return this.createTask(trx, {
        serviceName,
        user,
        name: enable ? USER_TASKS.enable : USER_TASKS.disable,
        description: `${enable ? 'Enable' : 'Disable'} user ${user.name}`,
        actor,
        requester: null,
        summary: `${enable ? 'enable' : 'disable'} ${user.name}`,
      });
    });
  }

  /**
   * The worker's step for OVH's `expirationDate`: each enabled user whose date has passed is disabled through a
   * `disableUser` task (applied by the worker: his sessions end), audited as `user.expired`. Logins already refuse him
   * from the moment the date passes. An `enable` afterwards lifts the expiration.
   */
  async expireDue(limit = 100): Promise<number> {
    const now = this.clock.now();
    const due = await repo.dueExpirations(this.db, now, limit);
    let expired = 0;
    for (const { user_id, service_name } of due) {
      await this.db.transaction().execute(async (trx) => {
        const user = await repo.lockUser(trx, service_name, user_id);
        // Checked again under the lock: another instance, or an admin, may have acted meanwhile.
        if (!user || user.activation_state !== 'enabled' || !user.expiration_date || user.expiration_date > now) return;
        await repo.updateUser(trx, user_id, { activation_state: 'toDisable' });
        await this.audit.record(trx, {
          serviceName: service_name,
          type: 'user.expired',
          actor: 'expiration',
          ip: null,
          userId: user_id,
          data: { expirationDate: user.expiration_date.toISOString() },
        });
        await this.changes.record(trx, {
          serviceName: service_name,
          task: {
            name: USER_TASKS.disable,
            type: 'user',
            description: `Disable user ${user.name}: his expiration date has passed`,
            createdBy: 'expiration',
            createdFrom: 'expiration',
            userId: user_id,
            payload: { userId: user_id },
          },
          audit: { type: `user.${USER_TASKS.disable}`, actor: { login: 'expiration', ip: null }, userId: user_id },
        });
        expired++;
      });
    }
    return expired;
  }

  private async lock(trx: Transaction<Database>, serviceName: string, userId: number): Promise<UserRow> {
    const user = await repo.lockUser(trx, serviceName, userId);
    if (!user) throw notFound(`The requested object (userId = ${userId}) does not exist`);
    return user;
  }

  /**
   * Writes the task of a user change. A sensitive change waits in `waitingTodo` for operation validation when asked
   * from the certified interface, or from the API on a service with advancedSecurity (see `Approval`).
   */
  async createTask(trx: Transaction<Database>, req: UserTaskRequest): Promise<TaskDto & { operationId: number | null }> {
    const sensitive = req.change !== undefined || SENSITIVE_TASKS.has(req.name);
    const policy = req.forceValidation ? 'always' : sensitive ? 'advancedSecurity' : undefined;
    const { task, operationId } = await this.changes.record(trx, {
      serviceName: req.serviceName,
      task: {
        name: req.name,
        type: 'user',
        description: req.description,
        createdBy: req.actor.login,
        createdFrom: req.requester ? 'secure' : 'api',
        userId: req.user.user_id,
        payload: { userId: req.user.user_id },
      },
      ...(req.change ? { secret: req.change } : {}),
      audit: { type: `user.${req.name}`, actor: req.actor, userId: req.user.user_id },
      ...(policy
        ? {
            approval: {
              policy,
              tokenTo: req.tokenToRequester === false ? null : req.requester,
              userId: req.user.user_id,
              summary: req.summary,
            },
          }
        : {}),
    });
    return Object.assign(task, { operationId });
  }
}

/** User changes that wait for a token validator under advancedSecurity even without a sealed change. */
const SENSITIVE_TASKS = new Set<string>([USER_TASKS.create, USER_TASKS.remove, USER_TASKS.enable, USER_TASKS.disable]);

/** A random password that fits the default policy: letters of both cases, digits and a special character. */
function generatePassword(): string {
  return `${randomAlphanumeric(16)}a7Z-${randomAlphanumeric(4)}`;
}
