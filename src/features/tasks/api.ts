import type { Transaction } from 'kysely';
import type { Database, TaskState, UserRow } from '../../db/types.js';
import type { Actor } from '../../http/actor.js';
import type { TaskDto } from '../../http/schemas.js';
import type { Approval, ApprovalPolicy } from '../operations/api.js';

/** The OVH task fields a change sets; the rest are the engine's. */
export interface TaskFields {
  name: string;
  type: string;
  description: string;
  createdBy: string | null;
  createdFrom: string | null;
  userId?: number | null;
  networkAccessId?: number | null;
  network?: string | null;
  payload?: Record<string, unknown>;
}

export interface ChangeRecord {
  serviceName: string;
  task: TaskFields;
  /**
   * What the task's handler needs and nobody else may read (a password hash, a TOTP secret): sealed into the task's
   * payload, bound to the task id, erased once applied or canceled.
   */
  secret?: object;
  audit: { type: string; actor: Actor; userId?: number | null; data?: Record<string, unknown> };
  /** Whether the change waits for operation validation first. */
  approval?: {
    policy: ApprovalPolicy;
    /** Who receives the token: this user when he is a reachable token validator, else the service's validators. */
    tokenTo: UserRow | null;
    /** The user the change is about, shown on the operation. */
    userId: number | null;
    /** One line for the SMS. */
    summary: string;
  };
}

export interface RecordedChange {
  task: TaskDto;
  taskId: number;
  state: TaskState;
  operationId: number | null;
  approval: Approval;
}

/** Every change of every feature is written through this: its task, sealed secret, operation and audit event. */
export interface ChangeRecorder {
  record(trx: Transaction<Database>, record: ChangeRecord): Promise<RecordedChange>;
}

/** Tasks as other features read them. */
export interface TasksApi {
  /** The task of the service (of this user, when given); 404 otherwise. */
  get(serviceName: string, taskId: number, scope?: { userId?: number; networkAccessId?: number }): Promise<TaskDto>;
  /** Relaunches a task in `error`; 400 for any other state. */
  resetTaskState(serviceName: string, taskId: number, reason: string): Promise<TaskDto>;
}
