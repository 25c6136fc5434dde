import t from 'tap';
import { countryCodeLength, normalizePhoneNumber } from '../src/features/users/phone-number.js';

t.test('both spellings OVH clients send become the dotted form OVH answers', async (t) => {
  const cases: [string, string][] = [
    ['+33612345678', '+33.612345678'],
    ['+33.612345678', '+33.612345678'],
    ['+14155550123', '+1.4155550123'],
    ['+447700900123', '+44.7700900123'],
    ['+352621123456', '+352.621123456'],
    ['+79161234567', '+7.9161234567'],
    ['+4915123456789', '+49.15123456789'],
    ['+2348031234567', '+234.8031234567'],
  ];
  for (const [input, expected] of cases) t.strictSame(normalizePhoneNumber(input), { ok: true, value: expected }, input);
});

t.test('anything else is refused with a reason', async (t) => {
  for (const input of ['0612345678', '+33 612345678', '+33-612-345-678', '+0612345678', '+33.12', '+331', '', '+33612345678x'])
    t.equal(normalizePhoneNumber(input).ok, false, JSON.stringify(input));
});

t.test('the country code lengths follow E.164', async (t) => {
  t.equal(countryCodeLength('1415'), 1);
  t.equal(countryCodeLength('7916'), 1);
  t.equal(countryCodeLength('3361'), 2);
  t.equal(countryCodeLength('3526'), 3);
  t.equal(countryCodeLength('2126'), 3);
  t.equal(countryCodeLength('9715'), 3);
});
