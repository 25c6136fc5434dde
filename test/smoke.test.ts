import t from 'tap';
import { buildTestApp } from './helpers/app.js';

t.test('a service created for an account is listed and readable', async (t) => {
  const ctx = await buildTestApp(t);
  const name = await ctx.newService('pcc-smoke');
  const list = await ctx.app.inject({ method: 'GET', url: '/1.0/dedicatedCloud' });
  t.equal(list.statusCode, 200);
  t.same(list.json(), [name]);
  const one = await ctx.app.inject({ method: 'GET', url: `/v1/dedicatedCloud/${name}` });
  t.equal(one.json().serviceName, name);
});
