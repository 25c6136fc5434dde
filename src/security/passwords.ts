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
