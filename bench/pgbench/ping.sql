-- What /healthz sends (guest_ping).
SELECT 1;
