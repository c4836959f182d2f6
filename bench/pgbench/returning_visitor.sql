-- The library's session lookup (GUEST__RESOLVE_SESSION_SQL in
-- src/store/store.h) for one of the 500
-- sessions bench/run.sh made beforehand, whose tokens hash to
-- sha256(int8send(-i)).
\set i random(1, 500)
SELECT u.id, u.username, g.user_id IS NOT NULL,
  floor(extract(epoch FROM g.created_at))::bigint,
  floor(extract(epoch FROM s.expires_at - now()) * 1000)::bigint
FROM guestuser.sessions s
JOIN guestuser.users u ON u.id = s.user_id
LEFT JOIN guestuser.guests g ON g.user_id = u.id
WHERE s.token_hash = sha256(int8send(-(:i)::bigint))
  AND s.expires_at > now() AND u.is_active;
