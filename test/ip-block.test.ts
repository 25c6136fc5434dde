import t from 'tap';
import { parseIpBlock } from '../src/security/ip-block.js';

const limits = { minPrefixV4: 8, minPrefixV6: 32 };
const parse = (input: string) => parseIpBlock(input, limits);
const errorOf = (input: string) => {
  const result = parse(input);
  return 'error' in result ? result.error : undefined;
};

t.test('an IPv4 host is a /32', async (t) => {
  t.strictSame(parse('203.0.113.7'), { ip: '203.0.113.7', cidrNetmask: 32, family: 4 });
});

t.test('an IPv4 network keeps its prefix', async (t) => {
  t.strictSame(parse('203.0.113.0/24'), { ip: '203.0.113.0', cidrNetmask: 24, family: 4 });
  t.strictSame(parse('10.0.0.0/8'), { ip: '10.0.0.0', cidrNetmask: 8, family: 4 });
  t.strictSame(parse('203.0.113.7/32'), { ip: '203.0.113.7', cidrNetmask: 32, family: 4 });
});

t.test('an IPv6 host is a /128 in canonical (RFC 5952) spelling', async (t) => {
  t.strictSame(parse('2001:db8::1'), { ip: '2001:db8::1', cidrNetmask: 128, family: 6 });
  t.strictSame(parse('2001:0DB8:0000:0000:0000:0000:0000:0001'), { ip: '2001:db8::1', cidrNetmask: 128, family: 6 });
  t.strictSame(parse('2001:db8::01'), { ip: '2001:db8::1', cidrNetmask: 128, family: 6 });
});

t.test('an IPv6 network keeps its prefix', async (t) => {
  t.strictSame(parse('2001:db8:abcd::/48'), { ip: '2001:db8:abcd::', cidrNetmask: 48, family: 6 });
  t.strictSame(parse('2001:DB8::/32'), { ip: '2001:db8::', cidrNetmask: 32, family: 6 });
});

t.test('surrounding whitespace is ignored', async (t) => {
  t.strictSame(parse(' 203.0.113.7 '), { ip: '203.0.113.7', cidrNetmask: 32, family: 4 });
});

t.test('an IPv4-mapped IPv6 host is the IPv4 host', async (t) => {
  t.strictSame(parse('::ffff:203.0.113.7'), { ip: '203.0.113.7', cidrNetmask: 32, family: 4 });
  t.strictSame(parse('::FFFF:cb00:7107'), { ip: '203.0.113.7', cidrNetmask: 32, family: 4 });
  t.strictSame(parse('::ffff:203.0.113.7/128'), { ip: '203.0.113.7', cidrNetmask: 32, family: 4 });
});

t.test('the prefix of an IPv4-mapped network is an IPv6 prefix, translated to IPv4', async (t) => {
  t.strictSame(parse('::ffff:203.0.113.0/120'), { ip: '203.0.113.0', cidrNetmask: 24, family: 4 });
});

t.test('an IPv4-mapped network with a prefix shorter than /96 is refused, not read as an IPv4 prefix', async (t) => {
  t.match(errorOf('::ffff:203.0.113.0/24'), /invalid prefix length \(96 to 128 for an IPv4-mapped address\)/);
  t.match(errorOf('::ffff:0.0.0.0/0'), /invalid prefix length/);
});

t.test('an IPv4-mapped network is checked for width and host bits like IPv4', async (t) => {
  t.match(errorOf('::ffff:10.0.0.0/100'), /too wide/);
  t.match(errorOf('::ffff:203.0.113.7/120'), /host bits set: the network is 203\.0\.113\.0\/24/);
});

t.test('a network with host bits set is refused and the error names the network meant', async (t) => {
  t.equal(errorOf('203.0.113.7/24'), 'has host bits set: the network is 203.0.113.0/24');
  t.equal(errorOf('2001:db8::1/64'), 'has host bits set: the network is 2001:db8::/64');
});

t.test('a prefix longer than the address is refused', async (t) => {
  t.match(errorOf('203.0.113.0/33'), /invalid prefix length \(0 to 32 for IPv4\)/);
  t.match(errorOf('2001:db8::/129'), /invalid prefix length \(0 to 128 for IPv6\)/);
});

t.test('a prefix that is not a plain decimal number is refused', async (t) => {
  for (const input of [
    '203.0.113.0/',
    '203.0.113.0/+24',
    '203.0.113.0/ 24',
    '203.0.113.0/24.0',
    '203.0.113.0/0x18',
    '203.0.113.0/1000',
  ]) {
    t.match(errorOf(input), /invalid prefix length/, input);
  }
});

t.test('more than one slash is refused', async (t) => {
  t.match(errorOf('203.0.113.0/24/8'), /not an IP address/);
});

t.test('networks wider than the shortest prefix allowed are refused, /0 included', async (t) => {
  t.match(errorOf('0.0.0.0/0'), /too wide.*IPv4 is \/8/);
  t.match(errorOf('10.0.0.0/7'), /too wide.*IPv4 is \/8/);
  t.match(errorOf('::/0'), /too wide.*IPv6 is \/32/);
  t.match(errorOf('2001:db8::/31'), /too wide.*IPv6 is \/32/);
});

t.test('the shortest prefix allowed comes from the limits', async (t) => {
  t.strictSame(parseIpBlock('10.0.0.0/7', { minPrefixV4: 0, minPrefixV6: 0 }), { ip: '10.0.0.0', cidrNetmask: 7, family: 4 });
  t.match(parseIpBlock('203.0.113.0/24', { minPrefixV4: 28, minPrefixV6: 64 }), { error: /too wide.*\/28/ });
  t.match(parseIpBlock('2001:db8::/48', { minPrefixV4: 28, minPrefixV6: 64 }), { error: /too wide.*\/64/ });
});

t.test('IPv4 with leading zeros is refused (octal or decimal would be ambiguous)', async (t) => {
  for (const input of ['010.0.0.1', '203.0.113.07', '01.2.3.4']) t.match(errorOf(input), /not an IP address/, input);
});

t.test('IPv6 groups of more than four hex digits are refused', async (t) => {
  t.match(errorOf('2001:db8::00001'), /not an IP address/);
});

t.test('shorthand and non-decimal IPv4 forms are refused', async (t) => {
  for (const input of ['127.1', '0x7f.0.0.1', '2130706433', '203.0.113', '203.0.113.256', '203.0.113.7.1']) {
    t.match(errorOf(input), /not an IP address/, input);
  }
});

t.test('an address with a zone id is refused', async (t) => {
  t.match(errorOf('fe80::1%eth0'), /not an IP address/);
  t.match(errorOf('fe80::%1/64'), /not an IP address/);
});

t.test('malformed input is refused', async (t) => {
  for (const input of ['', '/24', 'localhost', '[2001:db8::1]', '2001:db8:0:0:0:0:0:0:1', '2001:db8:::1', '1.2.3.4:80']) {
    t.match(errorOf(input), /not an IP address/, JSON.stringify(input));
  }
});

t.test('unspecified and multicast addresses are refused', async (t) => {
  t.match(errorOf('0.0.0.0'), /unspecified/);
  t.match(errorOf('::'), /unspecified/);
  t.match(errorOf('224.0.0.1'), /multicast/);
  t.match(errorOf('ff02::1'), /multicast/);
});
