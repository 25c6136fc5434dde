import t, { type Test } from 'tap';
import { RULE_PATH_PATTERN, isGranted } from '../src/features/ovh-auth/access-rules.js';
import { apiPathOf } from '../src/features/ovh-auth/authenticate.js';
import type { AccessRule } from '../src/db/types.js';

const GET = (path: string): AccessRule => ({ method: 'GET', path });

function check(t: Test, rules: AccessRule[], granted: string[], refused: string[], method = 'GET') {
  for (const path of granted) t.ok(isGranted(rules, method, path), `${method} ${path} is granted`);
  for (const path of refused) t.notOk(isGranted(rules, method, path), `${method} ${path} is refused`);
}

t.test('/* grants every path of its method', async (t) => {
  check(t, [GET('/*')], ['/', '/dedicatedCloud', '/dedicatedCloud/pcc-1/twoFAWhitelist/3', '/auth/currentCredential'], []);
});

t.test('/dedicatedCloud/* grants what is below /dedicatedCloud/, not /dedicatedCloud itself', async (t) => {
  check(
    t,
    [GET('/dedicatedCloud/*')],
    ['/dedicatedCloud/', '/dedicatedCloud/pcc-1', '/dedicatedCloud/pcc-1/twoFAWhitelist/3'],
    ['/dedicatedCloud', '/dedicatedCloudX/pcc-1', '/me', '/', '/x/dedicatedCloud/pcc-1'],
  );
});

t.test('a path without * grants that path only', async (t) => {
  check(
    t,
    [GET('/dedicatedCloud/pcc-1')],
    ['/dedicatedCloud/pcc-1'],
    [
      '/dedicatedCloud/pcc-10',
      '/dedicatedCloud/pcc-1/',
      '/dedicatedCloud/pcc-1/task',
      '/dedicatedCloud',
      '/dedicatedCloud/PCC-1',
    ],
  );
});

t.test('* in the middle spans any characters, / included, as OVH does', async (t) => {
  check(
    t,
    [GET('/dedicatedCloud/*/twoFAWhitelist')],
    ['/dedicatedCloud/pcc-1/twoFAWhitelist', '/dedicatedCloud/a/b/twoFAWhitelist'],
    ['/dedicatedCloud/pcc-1/twoFAWhitelist/1', '/dedicatedCloud/pcc-1/task'],
  );
  check(t, [GET('/dedicatedCloud/pcc-*')], ['/dedicatedCloud/pcc-1', '/dedicatedCloud/pcc-'], ['/dedicatedCloud/ovh-1']);
});

t.test('a rule grants its own method only', async (t) => {
  const rules: AccessRule[] = [GET('/*'), { method: 'DELETE', path: '/dedicatedCloud/pcc-1/twoFAWhitelist/*' }];
  check(t, rules, [], ['/dedicatedCloud/pcc-1/twoFAWhitelist'], 'POST');
  check(t, rules, ['/dedicatedCloud/pcc-1/twoFAWhitelist/3'], ['/dedicatedCloud/pcc-2/twoFAWhitelist/3'], 'DELETE');
  check(t, rules, [], ['/dedicatedCloud/pcc-1'], 'PUT');
  check(t, rules, [], ['/dedicatedCloud/pcc-1'], 'get');
});

t.test('no rule grants nothing; several rules grant their union', async (t) => {
  check(t, [], [], ['/', '/dedicatedCloud']);
  check(t, [GET('/a'), GET('/b/*')], ['/a', '/b/c'], ['/c', '/b']);
});

t.test('regular-expression characters in a rule path are literal', async (t) => {
  const cases: [string, string[], string[]][] = [
    ['/a.b', ['/a.b'], ['/aXb', '/a/b']],
    ['/a+b', ['/a+b'], ['/aab', '/ab']],
    ['/a(b)', ['/a(b)'], ['/ab']],
    ['/x$', ['/x$'], ['/x']],
    ['/a{2}', ['/a{2}'], ['/aa']],
    ['/a?', ['/a?'], ['/', '/a']],
    ['/a|/b', ['/a|/b'], ['/a', '/b']],
    ['/[ab]', ['/[ab]'], ['/a']],
    ['/a\\d', ['/a\\d'], ['/a1']],
    ['/^a', ['/^a'], ['/a']],
    ['/a.*', ['/a.', '/a.bc'], ['/abc']],
  ];
  for (const [rule, granted, refused] of cases) check(t, [GET(rule)], granted, refused);
});

t.test('the rule path pattern takes OVH-like paths and refuses markup and spaces', async (t) => {
  const pattern = new RegExp(RULE_PATH_PATTERN);
  for (const ok of ['/*', '/dedicatedCloud/*', '/dedicatedCloud/pcc-1/twoFAWhitelist/*', '/sms/*/jobs', '/a/{id}']) {
    t.match(ok, pattern, ok);
  }
  for (const bad of ['', '*', 'dedicatedCloud/*', '/<script>', '/a b', '/a"b', '/a\\b', '/a?x=1', '/a#b', '/a\nb', '/é']) {
    t.notMatch(bad, pattern, JSON.stringify(bad));
  }
});

t.test('rules see the path below /1.0 or /v1, without the query string', async (t) => {
  t.equal(apiPathOf('/1.0/dedicatedCloud/pcc-1?x=1'), '/dedicatedCloud/pcc-1');
  t.equal(apiPathOf('/v1/auth/currentCredential'), '/auth/currentCredential');
  t.equal(apiPathOf('/1.0/'), '/');
  t.equal(apiPathOf('/1x0/dedicatedCloud'), '/1x0/dedicatedCloud', 'the dot is a dot');
  t.equal(apiPathOf('/v10/dedicatedCloud'), '/v10/dedicatedCloud');
  t.equal(apiPathOf('/1.0/1.0/x'), '/1.0/x', 'one prefix only');
});
