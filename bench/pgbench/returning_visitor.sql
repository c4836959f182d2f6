-- The library's session lookup (src/store/guests.c) for one of the 500
-- sessions bench/run.sh made beforehand, whose tokens hash to
-- sha256(int8send(-i)).
\set i random(1, 500)
SELECT u.id, u.username, g.user_id IS NOT NULL,
  floor(extract(epoch FROM g.created_at))::bigint
FROM guestuser.sessions s
JOIN guestuser.users u ON u.id = s.user_id
LEFT JOIN guestuser.guests g ON g.user_id = u.id
WHERE s.token_hash = sha256(int8send(-(:i)::bigint))
  AND s.expires_at > now() AND u.is_active;
