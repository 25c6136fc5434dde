// OVH's official Node client ships no types; the tests use it through a narrow local type.
declare module '@ovhcloud/node-ovh' {
  const ovh: (params: Record<string, unknown>) => unknown;
  export default ovh;
}
