-- Per-user upstream credentials obtained through Cross App Access
-- ("enterprise"): the identity provider that vouched for the user and the
-- jti of the ID-JAG it issued.
ALTER TABLE inventory_upstream_credentials ADD COLUMN idp TEXT NOT NULL DEFAULT '';
ALTER TABLE inventory_upstream_credentials ADD COLUMN grant_id TEXT NOT NULL DEFAULT '';
