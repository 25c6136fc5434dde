-- A login's whitelist test (is the client in an enabled twoFAWhitelist entry of the service: `ip <<= network`) scanned
-- the service's entries one by one, and with few services the whole table: 2.9 ms of PostgreSQL per login with 10,000
-- entries (bench/run.mjs, whose service has as many), 1.8-2.2 ms more per login than with a small whitelist. No B-tree
-- answers "which networks contain this address"; a GiST index of the enabled entries' networks does (0.07 ms there).
-- The service is then a filter on the few entries that contain the address. `WhitelistService.bypasses` reads the same.
--
-- Built in the migration's transaction (not CONCURRENTLY): writes to the whitelist wait for it. On a large table, build
-- it CONCURRENTLY by hand first; this statement then finds it (IF NOT EXISTS).
CREATE INDEX IF NOT EXISTS two_fa_whitelist_enabled_network_idx ON two_fa_whitelist USING gist (network inet_ops)
  WHERE state = 'enabled';
