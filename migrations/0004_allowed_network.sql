-- The main access list of the management interface (OVH's allowedNetwork, "infrastructure firewall"). When the service's
-- userAccessPolicy is `filtered`, a login is refused unless the client IP is inside an allowed network.
CREATE TABLE allowed_network (
  network_access_id  bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  service_name       text NOT NULL REFERENCES service (service_name),
  network            cidr NOT NULL,
  description        text,
  state              text NOT NULL CHECK (state IN ('allowed', 'toDelete', 'toUpdate')),
  created_at         timestamptz NOT NULL DEFAULT now(),
  updated_at         timestamptz NOT NULL DEFAULT now(),
  deleted_at         timestamptz
);
CREATE UNIQUE INDEX allowed_network_live_uq ON allowed_network (service_name, network) WHERE deleted_at IS NULL;
CREATE INDEX allowed_network_service_idx ON allowed_network (service_name, network_access_id);
