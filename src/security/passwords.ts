import { readFileSync } from 'node:fs';
import { Algorithm, hash, verify } from '@node-rs/argon2';

/** argon2id's cost: memory in KiB, iterations, lanes. */
export interface PasswordCost {
  memoryKib: number;
  iterations: number;
  parallelism: number;
}

/** OWASP's argon2id baseline: 19 MiB, 2 iterations, 1 lane. The production default, asserted by a test. */
export const PRODUCTION_COST: PasswordCost = { memoryKib: 19_456, iterations: 2, parallelism: 1 };

let options = optionsOf(PRODUCTION_COST);
// Verified even for unknown logins, against a hash of the same cost, so that timing does not tell which logins exist.
let dummyHash: Promise<string> | undefined;

function optionsOf(cost: PasswordCost) {
  return {
    algorithm: Algorithm.Argon2id,
    memoryCost: cost.memoryKib,
    timeCost: cost.iterations,
    parallelism: cost.parallelism,
  } as const;
}

/**
 * Sets the cost of new hashes, once, from the configuration (ARGON2_*). A hash records its own cost, so changing it
 * never breaks existing passwords; only the test suite lowers it, through its configuration.
 */
export function configurePasswordHashing(cost: PasswordCost): void {
  options = optionsOf(cost);
  dummyHash = undefined;
}

export const hashPassword = (password: string): Promise<string> => hash(password, options);

export async function verifyPassword(passwordHash: string | null | undefined, password: string): Promise<boolean> {
  const target = passwordHash ?? (await (dummyHash ??= hashPassword('pcc-2fa dummy password')));
  try {
    const ok = await verify(target, password);
    return ok && Boolean(passwordHash);
  } catch {
    return false;
  }
}

/** Linux's transparent huge pages setting: `always [madvise] never`, the one in use in brackets. */
export const HUGE_PAGES_SETTING = '/sys/kernel/mm/transparent_hugepage/enabled';

/**
 * What the host does to argon2id's cost, for the start's warnings. With transparent huge pages off, each verification
 * maps its 19 MiB in 4 KiB pages (about 4,900 page faults, and a TLB miss at most block reads): measured on 2 cores,
 * 87 ms of CPU per verification instead of 19 ms, 23 verifications per second instead of 104. Advice written for some
 * databases (Redis, MongoDB) sets `never`; `madvise`, most distributions' default, is enough here. Nothing is said
 * where the setting cannot be read (another system, a sandbox).
 */
export function hashingWarnings(read: (path: string) => string = (path) => readFileSync(path, 'utf8')): string[] {
  let setting: string | undefined;
  try {
    setting = /\[(\w+)\]/.exec(read(HUGE_PAGES_SETTING))?.[1];
  } catch {
    return [];
  }
  if (setting !== 'never') return [];
  return [
    `transparent huge pages are off on this host (${HUGE_PAGES_SETTING} is never): each argon2id verification then ` +
      'costs about 4 times the CPU (87 ms instead of 19 ms measured on 2 cores), so a core checks 4 times fewer logins ' +
      'and each guessed password weighs 4 times more; set it to madvise',
  ];
}
