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
}

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
  if (range === 'unspecified' || range === 'multicast') return { error: `is a ${range} address` };

  const networkAddress =
    family === 4
      ? ipaddr.IPv4.networkAddressFromCIDR(`${parsed.toString()}/${cidrNetmask}`)
      : ipaddr.IPv6.networkAddressFromCIDR(`${parsed.toString()}/${cidrNetmask}`);
  if (networkAddress.toString() !== parsed.toString()) {
    return { error: `has host bits set: the network is ${networkAddress.toString()}/${cidrNetmask}` };
  }
  return { ip: parsed.toString(), cidrNetmask, family };
}
