-- Identity attributes policies can read: groups, roles and email of local
-- users (JSON arrays of strings), and the claims an identity provider
-- asserted at sign-in, carried from the authorization code to the refresh
-- token and into every access token of the grant.
ALTER TABLE users ADD COLUMN groups_json TEXT NOT NULL DEFAULT '[]';
ALTER TABLE users ADD COLUMN roles_json TEXT NOT NULL DEFAULT '[]';
ALTER TABLE users ADD COLUMN email TEXT NOT NULL DEFAULT '';
ALTER TABLE auth_codes ADD COLUMN claims TEXT NOT NULL DEFAULT '';
ALTER TABLE refresh_tokens ADD COLUMN claims TEXT NOT NULL DEFAULT '';
