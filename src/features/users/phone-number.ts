/**
 * OVH writes a phone number `+<country code>.<number>` and its API answers it so; its clients also send it without the
 * dot (`+33612345678`). Country calling codes (ITU-T E.164) form a prefix code: no code is the beginning of another,
 * so the digits alone say where the code ends. One digit: 1 (North America) and 7 (Russia, Kazakhstan); two digits:
 * the list below; every other code has three.
 */
const TWO_DIGIT_CODES = new Set([
  '20', '27', '30', '31', '32', '33', '34', '36', '39', '40', '41', '43', '44', '45', '46', '47', '48', '49', '51', '52',
  '53', '54', '55', '56', '57', '58', '60', '61', '62', '63', '64', '65', '66', '81', '82', '84', '86', '90', '91', '92',
  '93', '94', '95', '98',
]); // prettier-ignore

/** Both spellings OVH's clients send, as one pattern for the request schemas. */
export const PHONE_NUMBER_PATTERN = '^\\+[1-9][0-9]{0,3}\\.[0-9]{4,14}$|^\\+[1-9][0-9]{5,17}$';

const DOTTED = /^\+([1-9][0-9]{0,3})\.([0-9]{4,14})$/;
const UNDOTTED = /^\+([1-9][0-9]{5,17})$/;

export function countryCodeLength(digits: string): 1 | 2 | 3 {
  if (digits.startsWith('1') || digits.startsWith('7')) return 1;
  return TWO_DIGIT_CODES.has(digits.slice(0, 2)) ? 2 : 3;
}

/** The number in OVH's dotted form, or a reason it is not a phone number. */
export function normalizePhoneNumber(input: string): { ok: true; value: string } | { ok: false; reason: string } {
  if (DOTTED.test(input)) return { ok: true, value: input };
  const match = UNDOTTED.exec(input);
  if (!match) return { ok: false, reason: 'must be in international format: +33.612345678 or +33612345678' };
  const digits = match[1]!;
  const split = countryCodeLength(digits);
  const normalized = `+${digits.slice(0, split)}.${digits.slice(split)}`;
  if (!DOTTED.test(normalized)) return { ok: false, reason: `has too few or too many digits after +${digits.slice(0, split)}` };
  return { ok: true, value: normalized };
}
