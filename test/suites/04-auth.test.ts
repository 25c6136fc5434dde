// OVH authentication: signed calls, OAuth2, the consumer-key validation page, the official client, access rules, the
// secret box and address blocks.
// One test process for these files (see scripts/test.mjs); each file still runs alone: npm test -- test/<file>.test.ts
import '../auth-signature.test.js';
import '../auth-oauth2.test.js';
import '../auth-cache.test.js';
import '../auth-validation-page.test.js';
import '../auth-node-client.test.js';
import '../access-rules.test.js';
import '../secret-box.test.js';
import '../ip-block.test.js';
import '../client-address.test.js';
