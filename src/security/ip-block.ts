import ipaddr from 'ipaddr.js';

export interface IpBlock {
  ip: string;
  cidrNetmask: number;
  family: 4 | 6;
}

export interface IpBlockLimits {
  /** Shortest IPv4 prefix accepted: a wider 2FA bypass is refused. */
  minPrefixV4: number;
  minPrefixV6: number;
  /**
   * Networks an entry may not touch: the reverse proxies whose X-Forwarded-For is believed. A request that reaches
   * the service without a forwarded address shows the proxy's own address, so listing a proxy would list everyone
   * behind it.
   */
  forbidden?: readonly Cidr[];
}

export type Cidr = [ipaddr.IPv4 | ipaddr.IPv6, number];

/** Ranges no entry may hold: they name this host or nobody, never a client. */
const REFUSED_RANGES: Record<string, string> = {
  loopback: 'a loopback address (this host)',
  broadcast: 'the broadcast address',
  unspecified: 'the unspecified address',
  multicast: 'a multicast address',
  rfc6052: 'a NAT64 address (64:ff9b::/96): it stands for an IPv4 host, list that one',
};
const LOOPBACK: Cidr[] = [ipaddr.parseCIDR('127.0.0.0/8'), ipaddr.parseCIDR('::1/128')];

/**
 * Parses OVH's `ipBlock`: an address (`203.0.113.7`, a host: /32 or /128) or a network (`203.0.113.0/24`).
 * Returns a reason instead of throwing so the caller can name the field.
 */
export function parseIpBlock(input: string, limits: IpBlockLimits): IpBlock | { error: string } {
  const text = input.trim();
  const [address = '', prefixText, ...rest] = text.split('/');
  if (rest.length > 0 || address.includes('%')) return { error: 'is not an IP address or network' };

  let parsed: ipaddr.IPv4 | ipaddr.IPv6;
  if (ipaddr.IPv4.isValidFourPartDecimal(address)) parsed = ipaddr.IPv4.parse(address);
  else if (address.includes(':') && ipaddr.IPv6.isValid(address)) parsed = ipaddr.IPv6.parse(address);
  else return { error: 'is not an IP address or network' };
  // ::ffff:a.b.c.d is an IPv4 address: store it as one so that one host has one spelling. Its prefix, if any, is an
  // IPv6 prefix: /120 is the IPv4 /24, and one shorter than /96 reaches beyond the IPv4-mapped range.
  const mapped = parsed.kind() === 'ipv6' && (parsed as ipaddr.IPv6).isIPv4MappedAddress();
  if (mapped) parsed = (parsed as ipaddr.IPv6).toIPv4Address();
  const family = parsed.kind() === 'ipv4' ? 4 : 6;
  const maxPrefix = family === 4 ? 32 : 128;

  let cidrNetmask = maxPrefix;
  if (prefixText !== undefined) {
    const [low, high] = mapped ? [96, 128] : [0, maxPrefix];
    if (!/^\d{1,3}$/.test(prefixText) || Number(prefixText) < low || Number(prefixText) > high) {
      return {
        error: `has an invalid prefix length (${low} to ${high} for ${mapped ? 'an IPv4-mapped address' : `IPv${family}`})`,
      };
    }
    cidrNetmask = Number(prefixText) - (mapped ? 96 : 0);
  }
  const minPrefix = family === 4 ? limits.minPrefixV4 : limits.minPrefixV6;
  if (cidrNetmask < minPrefix) {
    return { error: `is too wide a network to skip 2FA (the shortest prefix allowed for IPv${family} is /${minPrefix})` };
  }
  const range = parsed.range();
  const refused = REFUSED_RANGES[range];
  if (refused) return { error: `is ${refused}` };

  const networkAddress =
    family === 4
      ? ipaddr.IPv4.networkAddressFromCIDR(`${parsed.toString()}/${cidrNetmask}`)
      : ipaddr.IPv6.networkAddressFromCIDR(`${parsed.toString()}/${cidrNetmask}`);
  if (networkAddress.toString() !== parsed.toString()) {
    return { error: `has host bits set: the network is ${networkAddress.toString()}/${cidrNetmask}` };
  }
  const block: Cidr = [parsed, cidrNetmask];
  if (LOOPBACK.some((r) => overlaps(block, r))) return { error: 'reaches a loopback address (this host)' };
  if ((limits.forbidden ?? []).some((r) => overlaps(block, r))) {
    return { error: 'holds a trusted proxy (TRUSTED_PROXIES): every client behind it would be listed' };
  }
  return { ip: parsed.toString(), cidrNetmask, family };
}

/** Whether two networks share an address: one of them holds the other's first address. */
export function overlaps(a: Cidr, b: Cidr): boolean {
  if (a[0].kind() !== b[0].kind()) return false;
  return a[1] <= b[1] ? b[0].match(a as never) : a[0].match(b as never);
}

const NAMED_RANGES: Record<string, string[]> = {
  loopback: ['127.0.0.0/8', '::1/128'],
  linklocal: ['169.254.0.0/16', 'fe80::/10'],
  uniquelocal: ['10.0.0.0/8', '172.16.0.0/12', '192.168.0.0/16', 'fc00::/7'],
};

/** TRUSTED_PROXIES as networks (its names, as proxy-addr reads them, included). */
export function proxyNetworks(entries: readonly string[]): Cidr[] {
  return entries.flatMap((entry) =>
    (NAMED_RANGES[entry] ?? [entry.includes('/') ? entry : `${entry}/${entry.includes(':') ? 128 : 32}`]).map((text) => {
      const [address, prefix] = ipaddr.parseCIDR(text);
      const mapped = address.kind() === 'ipv6' && (address as ipaddr.IPv6).isIPv4MappedAddress();
      return (mapped ? [(address as ipaddr.IPv6).toIPv4Address(), Math.max(prefix - 96, 0)] : [address, prefix]) as Cidr;
    }),
  );
}
