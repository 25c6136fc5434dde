import type { Kysely } from 'kysely';
import ipaddr from 'ipaddr.js';
import type { Clock } from '../../clock.js';
import type { Database } from '../../db/types.js';
import type { TtlCache } from '../../core/ttl-cache.js';
import { authErrors } from '../../http/ovh-auth-error.js';
import type { Principal } from '../../http/types.js';
import { contexts } from '../../security/contexts.js';
import type { SecretBox } from '../../security/secret-box.js';
import { sha256 } from '../../security/tokens.js';
import { isGranted } from './access-rules.js';
import * as repo from './repository.js';
import { candidateUrls, ovhSignature, signatureMatches } from './signature.js';

export interface SignedCall {
  applicationKey: string | undefined;
  consumerKey: string | undefined;
  timestamp: string | undefined;
  signature: string | undefined;
  method: string;
  protocol: string;
  host: string | undefined;
  rawUrl: string;
  /** The path below `/1.0` or `/v1`, without query string: what access rules are matched against. */
  apiPath: string;
  body: string;
  ip: string;
}

type SigningRow = NonNullable<Awaited<ReturnType<typeof repo.findSigningContext>>>;

/** A usable credential as read, its application secret opened, and when this instance last recorded its use. */
export interface SigningEntry {
  ctx: SigningRow & { credential_id: number; account_id: number };
  secret: string;
  lastUse: Date | null;
}

/** `last_use` is written at most this often per credential, so a signed call costs no write. */
const LAST_USE_RESOLUTION_MS = 60_000;

/** OVH's signed calls: `X-Ovh-Application`, `X-Ovh-Consumer`, `X-Ovh-Timestamp`, `X-Ovh-Signature`. */
export class SignedCallVerifier {
  constructor(
    private readonly db: Kysely<Database>,
    private readonly box: SecretBox,
    private readonly clock: Clock,
    private readonly settings: { timeWindowSeconds: number; publicUrl?: string | undefined },
    private readonly cache: TtlCache<SigningEntry>,
  ) {}

  /**
   * Checks an OVH-signed call; returns who made it or throws OVH's error. One indexed lookup, or none while `cache`
   * holds the credential (at most AUTH_CACHE_MS); never a write but `last_use`, once a minute.
   */
  async verifySignedCall(call: SignedCall): Promise<Principal> {
    if (!call.applicationKey) throw authErrors.missing();
    if (!call.consumerKey) {
      if (!(await repo.findApplicationByKey(this.db, call.applicationKey))) throw authErrors.invalidKey();
      throw authErrors.notCredential();
    }
    const now = this.clock.now();
    const key = `${call.applicationKey}\n${call.consumerKey}`;
    const { applicationKey, consumerKey } = call;
    const signing = await this.cache.getOrLoad(key, () => this.readSigningContext(applicationKey, consumerKey, now));
    const { ctx, secret } = signing;
    // Read within the cache's time, but expiring in between: checked on every call.
    if (ctx.expires_at !== null && ctx.expires_at <= now) throw authErrors.invalidCredential();
    if (!call.signature || !call.timestamp || !/^\d{1,12}$/.test(call.timestamp)) throw authErrors.invalidSignature();
    const expected = candidateUrls({ ...call, publicUrl: this.settings.publicUrl }).map((url) =>
      ovhSignature({
        applicationSecret: secret,
        consumerKey: call.consumerKey!,
        method: call.method,
        url,
        body: call.body,
        timestamp: call.timestamp!,
      }),
    );
    if (!signatureMatches(expected, call.signature)) throw authErrors.invalidSignature();
    if (Math.abs(Number(call.timestamp) - Math.floor(now.getTime() / 1000)) > this.settings.timeWindowSeconds) {
      throw authErrors.queryTimeOut();
    }
    if (!isGranted(ctx.rules ?? [], call.method, call.apiPath)) throw authErrors.notGranted();
    if (ctx.allowed_ips && !ctx.allowed_ips.some((block) => ipInBlock(call.ip, block))) throw authErrors.notGranted();
    if (!signing.lastUse || now.getTime() - signing.lastUse.getTime() > LAST_USE_RESOLUTION_MS) {
      // Best effort and off the request's path: last use is informative only.
      signing.lastUse = now;
      void repo.touchCredential(this.db, ctx.credential_id, now).catch(() => undefined);
    }
    return { accountId: ctx.account_id, login: ctx.login, credentialId: ctx.credential_id };
  }

  /** The credential of a consumer key, if it may sign calls now; OVH's error otherwise. */
  private async readSigningContext(applicationKey: string, consumerKey: string, now: Date): Promise<SigningEntry> {
    const ctx = await repo.findSigningContext(this.db, applicationKey, sha256(consumerKey));
    if (!ctx || ctx.app_revoked_at) throw authErrors.invalidKey();
    if (ctx.credential_id === null) throw authErrors.notCredential();
    if (
      ctx.state !== 'validated' ||
      ctx.revoked_at !== null ||
      ctx.account_id === null ||
      (ctx.expires_at !== null && ctx.expires_at <= now)
    ) {
      throw authErrors.invalidCredential();
    }
    const secret = this.box.open(ctx.secret_ciphertext, contexts.applicationSecret(ctx.application_key));
    return {
      ctx: { ...ctx, credential_id: ctx.credential_id, account_id: ctx.account_id },
      secret,
      lastUse: ctx.last_use,
    };
  }
}

function ipInBlock(ip: string, block: string): boolean {
  try {
    let addr = ipaddr.parse(ip);
    if (addr.kind() === 'ipv6' && (addr as ipaddr.IPv6).isIPv4MappedAddress()) addr = (addr as ipaddr.IPv6).toIPv4Address();
    const range = block.includes('/')
      ? ipaddr.parseCIDR(block)
      : ([ipaddr.parse(block), addr.kind() === 'ipv4' ? 32 : 128] as const);
    return addr.kind() === range[0].kind() && addr.match(range as [ipaddr.IPv4 | ipaddr.IPv6, number]);
  } catch {
    return false;
  }
}
