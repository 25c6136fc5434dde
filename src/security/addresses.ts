import ipaddr from 'ipaddr.js';

/**
 * One spelling per client address, or `undefined` when the text is not an address. An IPv4 client of a dual-stack
 * listener shows as `::ffff:a.b.c.d` and must match its IPv4 whitelist entry and share its lockout counter; an IPv6
 * zone id (`fe80::1%eth0`) names an interface of this host, not a client, and PostgreSQL's `inet` refuses it.
 */
/** A dotted-quad IPv4 address without leading zeros: its own canonical form. */
const OCTET = '(25[0-5]|2[0-4]\\d|1\\d\\d|[1-9]?\\d)';
const PLAIN_IPV4 = new RegExp(`^${OCTET}(\\.${OCTET}){3}$`);

export function canonicalIp(text: string): string | undefined {
  // Every request asks, nearly always with a plain IPv4 address: that one is already canonical.
  if (PLAIN_IPV4.test(text)) return text;
  const bare = text.trim().replace(/%[^%]*$/, '');
  if (!ipaddr.isValid(bare)) return undefined;
  // isValid also takes the loose IPv4 forms (`1`, `0x7f.1`, `127.1`): a client address is never written so.
  if (!bare.includes(':') && !ipaddr.IPv4.isValidFourPartDecimal(bare)) return undefined;
  return ipaddr.process(bare).toString();
}

/**
 * The key that counts a client's attempts (lockout, rate limits): its IPv4 address, or the /64 of its IPv6 address.
 * One IPv6 host holds a whole /64 and can change its address at will; counting per /128 would let it try again from
 * 2^64 addresses.
 */
export function clientNetworkKey(ip: string): string {
  const canonical = canonicalIp(ip) ?? ip;
  if (!canonical.includes(':')) return canonical;
  const parts = ipaddr.IPv6.parse(canonical).parts.slice(0, 4);
  return `${new ipaddr.IPv6([...parts, 0, 0, 0, 0]).toString()}/64`;
}
