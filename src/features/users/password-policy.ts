import type { Kysely } from 'kysely';
import type { Database } from '../../db/types.js';
import { invalidField } from '../../http/errors.js';
import { verifyPassword } from '../../security/passwords.js';
import { passwordPolicyRow, recentPasswordHashes } from './repository.js';

/** OVH's `dedicatedCloud.passwordPolicy`. */
export interface PasswordPolicy {
  deniedChars: string[];
  digitMandatory: boolean;
  letterMandatory: boolean;
  lowercaseLetterMandatory: boolean;
  specialMandatory: boolean;
  uppercaseLetterMandatory: boolean;
  historyCheck: number;
  maxLength: number;
  minLength: number;
  validityPeriod: number;
}

const DEFAULT_POLICY: PasswordPolicy = {
  deniedChars: [],
  digitMandatory: true,
  letterMandatory: true,
  lowercaseLetterMandatory: true,
  specialMandatory: true,
  uppercaseLetterMandatory: true,
  historyCheck: 5,
  maxLength: 64,
  minLength: 12,
  validityPeriod: 0,
};

export async function passwordPolicyOf(db: Kysely<Database>, serviceName: string): Promise<PasswordPolicy> {
  const row = await passwordPolicyRow(db, serviceName);
  if (!row) return DEFAULT_POLICY;
  return {
    deniedChars: row.denied_chars,
    digitMandatory: row.digit_mandatory,
    letterMandatory: row.letter_mandatory,
    lowercaseLetterMandatory: row.lowercase_letter_mandatory,
    specialMandatory: row.special_mandatory,
    uppercaseLetterMandatory: row.uppercase_letter_mandatory,
    historyCheck: row.history_check,
    maxLength: row.max_length,
    minLength: row.min_length,
    validityPeriod: row.validity_period,
  };
}

/** The first rule a password breaks, in words a user can act on; undefined when it fits the policy. */
function policyViolation(password: string, policy: PasswordPolicy): string | undefined {
  const length = [...password].length;
  if (length < policy.minLength) return `must be at least ${policy.minLength} characters long`;
  if (length > policy.maxLength) return `must be at most ${policy.maxLength} characters long`;
  if (policy.digitMandatory && !/\d/.test(password)) return 'must contain a digit';
  if (policy.letterMandatory && !/\p{L}/u.test(password)) return 'must contain a letter';
  if (policy.lowercaseLetterMandatory && !/\p{Ll}/u.test(password)) return 'must contain a lowercase letter';
  if (policy.uppercaseLetterMandatory && !/\p{Lu}/u.test(password)) return 'must contain an uppercase letter';
  if (policy.specialMandatory && !/[\W_]/.test(password)) return 'must contain a special character';
  const denied = policy.deniedChars.find((c) => password.includes(c));
  if (denied !== undefined) return `must not contain ${JSON.stringify(denied)}`;
  // eslint-disable-next-line no-control-regex
  if (/[\u0000-\u001f\u007f]/.test(password)) return 'must not contain control characters';
  return undefined;
}

/** Throws 400 naming `field` when the password breaks the policy or repeats one of the user's last passwords. */
export async function checkNewPassword(
  db: Kysely<Database>,
  serviceName: string,
  userId: number | null,
  password: string,
  field = 'password',
): Promise<void> {
  const policy = await passwordPolicyOf(db, serviceName);
  const violation = policyViolation(password, policy);
  if (violation) throw invalidField(field, violation);
  if (userId === null) return;
  for (const hash of await recentPasswordHashes(db, userId, policy.historyCheck)) {
    if (await verifyPassword(hash, password)) {
      throw invalidField(field, `must differ from the last ${policy.historyCheck} passwords`);
    }
  }
}
