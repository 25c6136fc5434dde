import type { Kysely, Transaction } from 'kysely';
import type { Database, OperationRow, UserRow } from '../../db/types.js';
import { ApiError } from '../../http/errors.js';

/** A wrong operation token (400): the one failure of a validation that counts against the validator's lockout. */
export class WrongOperationToken extends ApiError {
  constructor(message: string) {
    super(400, 'Client::BadRequest', message);
  }
}

/**
 * How a change is approved before it applies:
 * - `none`: at once (advancedSecurity is off);
 * - `bootstrap`: at once, because the service never had a token validator who could receive a token (audited);
 * - `sms`: a token validator types the token sent by SMS;
 * - `operator`: no token validator can be reached any more on a service that had one; an operator approves with the
 *   CLI. The gate fails closed: removing, disabling or demoting the last validator never switches it off.
 */
export type Approval = 'none' | 'bootstrap' | 'sms' | 'operator';

/** `always`: the certified interface, every change waits for a token. `advancedSecurity`: the API, as the service says. */
export type ApprovalPolicy = 'always' | 'advancedSecurity';

export interface NewOperation {
  serviceName: string;
  /** The task the operation holds back, if any (a phone confirmation holds none). */
  taskId: number | null;
  kind: string;
  /** The user the change is about. */
  userId: number | null;
  /** Login of who asked (a user or an API account), for the SMS and the audit log. */
  requestedBy: string;
  /** One line for the SMS: what is being validated. */
  summary: string;
  /** The numbers that receive the token; none for an operator's approval. */
  recipients: string[];
  /** The user the token was addressed to, if any: a new token goes to the same people (`tokenRecipients`). */
  tokenToUserId?: number | null;
  approval?: 'sms' | 'operator';
}

/** Who validates: a token validator's user, or an API account confirming a phone number (no user). */
export interface OperationValidator {
  userId: number | null;
  actor: string;
}

type Executor = Kysely<Database> | Transaction<Database>;

/** The gate every change goes through: decides, and opens the operation that holds a task back. */
export interface Approvals {
  decide(
    trx: Transaction<Database>,
    input: { serviceName: string; policy: ApprovalPolicy; recipients: string[] },
  ): Promise<Approval>;
  open(trx: Transaction<Database>, input: NewOperation): Promise<OperationRow>;
  /** A token validator can now receive tokens: from now on the service's gate fails closed. */
  arm(trx: Transaction<Database>, serviceName: string): Promise<void>;
}

/** Operations as the certified interface and the users feature use them. */
export interface Operations extends Approvals {
  find(serviceName: string, operationId: number): Promise<OperationRow>;
  latestPending(serviceName: string, userId: number, kind: string): Promise<OperationRow | undefined>;
  validate(
    serviceName: string,
    operationId: number,
    token: string,
    validator: OperationValidator,
    ip: string,
    onValidated?: (trx: Transaction<Database>, op: OperationRow) => Promise<void>,
  ): Promise<OperationRow>;
  /** Sends a new token to `recipients`; audited as `operation.resent`, naming who asked. */
  resend(
    serviceName: string,
    operationId: number,
    recipients: string[],
    summary: string,
    asker?: { actor: string; userId: number | null; ip: string | null },
  ): Promise<void>;
}

/** What happens to the task an operation holds; the composition root wires it to the tasks feature. */
export interface HeldTasks {
  /** Validated: the task may run. */
  release(trx: Transaction<Database>, taskId: number, description: string, now: Date): Promise<void>;
  /** Expired or blocked: the task is canceled and its handler undoes what the request marked. */
  cancel(trx: Transaction<Database>, taskId: number, description: string, now: Date): Promise<void>;
}

/** The phone numbers that receive a token: `tokenTo` when he is a reachable token validator, else the validators. */
export type RecipientResolver = (db: Executor, serviceName: string, tokenTo: UserRow | null) => Promise<string[]>;
