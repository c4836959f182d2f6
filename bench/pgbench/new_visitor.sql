-- The library's guest creation (GUEST__CREATE_GUEST_SQL in
-- src/store/store.h, no abuse limits), with
-- a random name and token. The library hashes the token itself and sends
-- the 32 bytes; here sha256() makes them from the random number.
\set r random(1, 9000000000000000000)
\set age 1209600
WITH u AS (INSERT INTO guestuser.users (username) VALUES ('pgbench-' || :r)
  ON CONFLICT (username) DO NOTHING RETURNING id, username),
 g AS (INSERT INTO guestuser.guests (user_id) SELECT id FROM u
  RETURNING user_id),
 s AS (INSERT INTO guestuser.sessions (token_hash, user_id, expires_at)
  SELECT sha256(int8send(:r)), user_id, now() + make_interval(secs => :age)
  FROM g RETURNING user_id)
SELECT u.id, u.username, floor(extract(epoch FROM now()))::bigint
FROM u JOIN s ON s.user_id = u.id;
